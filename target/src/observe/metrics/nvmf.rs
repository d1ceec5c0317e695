//! Subsystem, namespace and controller series, read from a snapshot of the subsystem registry.
//!
//! The snapshot is a list of `Arc<Subsystem>` and, per subsystem, of `Arc<Namespace>`: a
//! namespace removed while the scrape runs is either in the list (its counters stay readable
//! through the `Arc` until the scrape drops it) or not, never half-freed.

use std::collections::BTreeMap;

use prometheus::proto::MetricFamily;

use super::catalog;
use super::family::Family;
use crate::mgmt::context::Target;
use crate::plane::stats::{NsStats, OpClass};
use crate::plane::subsystem::Namespace;

/// Appends the subsystem, namespace and controller families.
pub fn collect(t: &Target, out: &mut Vec<MetricFamily>) {
    let subsystems = t.subsystems.list();
    let controllers = t.controllers.list();
    let mut per_subsystem: BTreeMap<&str, u64> = BTreeMap::new();
    for c in &controllers {
        *per_subsystem.entry(c.subsystem().nqn()).or_default() += 1;
    }

    let mut ns_count = Family::new(catalog::SUBSYSTEM_NAMESPACES);
    let mut ctrls = Family::new(catalog::CONTROLLERS);
    let mut admin = Family::new(catalog::ADMIN_COMMANDS);
    let mut ns = NamespaceFamilies::new();
    for s in &subsystems {
        let nqn = s.nqn();
        let namespaces = s.namespaces();
        ns_count.gauge_u64(&[nqn], namespaces.len() as u64);
        ctrls.gauge_u64(&[nqn], per_subsystem.get(nqn).copied().unwrap_or(0));
        admin.counter(&[nqn], s.stats().admin_commands());
        for n in &namespaces {
            ns.add(nqn, n);
        }
    }
    out.extend([ns_count.finish(), ctrls.finish(), admin.finish()]);
    ns.finish(out);
}

/// The per-namespace families.
struct NamespaceFamilies {
    info: Family,
    size: Family,
    commands: Family,
    duration: Family,
    errors: Family,
    read: Family,
    written: Family,
    in_flight: Family,
}

impl NamespaceFamilies {
    fn new() -> Self {
        Self {
            info: Family::new(catalog::NAMESPACE_INFO),
            size: Family::new(catalog::NAMESPACE_SIZE),
            commands: Family::new(catalog::COMMANDS),
            duration: Family::new(catalog::COMMAND_DURATION),
            errors: Family::new(catalog::COMMAND_ERRORS),
            read: Family::new(catalog::READ_BYTES),
            written: Family::new(catalog::WRITTEN_BYTES),
            in_flight: Family::new(catalog::COMMANDS_IN_FLIGHT),
        }
    }

    fn add(&mut self, nqn: &str, n: &Namespace) {
        let nsid = n.nsid().to_string();
        let id = [nqn, nsid.as_str()];
        let backend = n.backend();
        let uuid = backend.uuid().to_string();
        self.info.gauge(&[nqn, &nsid, n.bdev_name(), &uuid], 1.0);
        self.size.gauge_u64(&id, backend.size_bytes());
        // The gate's count: exact whether or not per-command counting is on.
        self.in_flight.gauge_u64(&id, n.in_flight());
        self.add_counters(&id, n.stats());
    }

    fn add_counters(&mut self, id: &[&str; 2], s: &NsStats) {
        let [nqn, nsid] = *id;
        for class in OpClass::ALL {
            let labels = [nqn, nsid, class.label()];
            if let Some(l) = s.latency(class) {
                // Count and histogram from one snapshot, so they agree within a scrape.
                let snap = l.snapshot();
                self.commands.counter(&labels, snap.count);
                self.duration.histogram(&labels, &snap);
            }
        }
        for (status, n) in s.errors() {
            self.errors.counter(&[nqn, nsid, status], n);
        }
        self.read.counter(id, s.bytes_read());
        self.written.counter(id, s.bytes_written());
    }

    fn finish(self, out: &mut Vec<MetricFamily>) {
        out.extend([
            self.info.finish(),
            self.size.finish(),
            self.commands.finish(),
            self.duration.finish(),
            self.errors.finish(),
            self.read.finish(),
            self.written.finish(),
            self.in_flight.finish(),
        ]);
    }
}
