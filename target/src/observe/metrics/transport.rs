//! Target-wide NVMe/TCP transport series, read from the target's `TransportStats`.

use prometheus::proto::MetricFamily;

use super::catalog;
use super::family::Family;
use crate::plane::stats::TransportStats;
use crate::transport::admission::Admission;

/// Appends the transport families.
pub fn collect(s: &TransportStats, admission: &Admission, out: &mut Vec<MetricFamily>) {
    let mut connections = Family::new(catalog::CONNECTIONS);
    connections.gauge(&[], TransportStats::gauge(&s.connections) as f64);
    let mut accepted = Family::new(catalog::CONNECTIONS_ACCEPTED);
    accepted.counter(&[], load(&s.connections_total));
    let mut queues = Family::new(catalog::QUEUES);
    queues.gauge(&["admin"], TransportStats::gauge(&s.admin_queues) as f64);
    queues.gauge(&["io"], TransportStats::gauge(&s.io_queues) as f64);
    let mut kato = Family::new(catalog::KEEP_ALIVE_EXPIRIES);
    kato.counter(&[], load(&s.kato_expiries));
    let a = &admission.stats;
    let mut refused = Family::new(catalog::CONNECTIONS_REFUSED);
    refused.counter(&["total"], load(&a.refused_total));
    refused.counter(&["per_source"], load(&a.refused_per_source));
    let mut evicted = Family::new(catalog::CONNECTIONS_EVICTED);
    evicted.counter(&[], load(&a.evicted));
    let mut timeouts = Family::new(catalog::CONNECT_TIMEOUTS);
    timeouts.counter(&[], load(&a.connect_timeouts));
    let mut unconnected = Family::new(catalog::CONNECTIONS_UNCONNECTED);
    unconnected.gauge(&[], admission.counts().1 as f64);
    let mut panics = Family::new(catalog::CONNECTION_PANICS);
    panics.counter(&[], load(&s.connection_panics));
    let mut zero_copy = Family::new(catalog::ZERO_COPY_SENDS);
    zero_copy.counter(&["zero_copy"], load(&s.zero_copy_sends));
    zero_copy.counter(&["copied"], load(&s.zero_copy_copied));
    let mut digests = Family::new(catalog::DIGEST_ERRORS);
    digests.counter(&["header"], load(&s.header_digest_errors));
    digests.counter(&["data"], load(&s.data_digest_errors));
    out.extend([
        connections.finish(),
        accepted.finish(),
        queues.finish(),
        kato.finish(),
        refused.finish(),
        evicted.finish(),
        timeouts.finish(),
        unconnected.finish(),
        panics.finish(),
        zero_copy.finish(),
        digests.finish(),
        labelled(catalog::TERM_REQS_SENT, &s.term_reqs()),
        labelled(catalog::AUTHENTICATIONS, &s.authentications()),
        labelled(catalog::TLS_HANDSHAKES, &s.tls_handshakes()),
        labelled(catalog::PDUS_RECEIVED, &s.pdus_received()),
        labelled(catalog::PDUS_SENT, &s.pdus_sent()),
    ]);
}

fn load(c: &std::sync::atomic::AtomicU64) -> u64 {
    c.load(std::sync::atomic::Ordering::Relaxed)
}

/// A counter family with one label whose values come with the counts.
fn labelled(def: catalog::MetricDef, values: &[(&'static str, u64)]) -> MetricFamily {
    let mut f = Family::new(def);
    for (label, n) in values {
        f.counter(&[label], *n);
    }
    f.finish()
}
