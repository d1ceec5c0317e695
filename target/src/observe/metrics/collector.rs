//! The `prometheus` collector that reads Lamina's counters at scrape time.
//!
//! It holds no metric objects of its own: each `collect` takes a snapshot of refcounted handles
//! (subsystems and their namespaces, controllers, lvstores, lvols) and of the target-wide and
//! RPC counters, and builds the families from the catalog. Series of an object deleted before
//! the scrape are simply not built, so nothing has to be unregistered, and nothing a scrape
//! touches can be freed under it.

use std::sync::{Arc, Weak};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;

use super::catalog::{self, CATALOG};
use super::family::Family;
use super::{GIT_COMMIT, MetricsError, nvmf, transport, volumes};
use crate::mgmt::context::Target;
use crate::plane::stats::RpcStats;

/// Lamina's collector.
#[derive(Debug)]
pub struct LaminaCollector {
    /// Weak: the endpoint must not keep a shut-down target alive.
    target: Weak<Target>,
    rpc: Option<Arc<RpcStats>>,
    descs: Vec<Desc>,
}

impl LaminaCollector {
    /// A collector of `target`'s metrics and, if given, of the RPC counters.
    pub fn new(target: &Arc<Target>, rpc: Option<Arc<RpcStats>>) -> Result<Self, MetricsError> {
        let descs = CATALOG
            .iter()
            .map(|d| {
                let labels = d.labels.iter().map(|l| (*l).to_owned()).collect();
                Desc::new(
                    d.name.to_owned(),
                    d.help.to_owned(),
                    labels,
                    std::collections::HashMap::new(),
                )
                .map_err(MetricsError::from)
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            target: Arc::downgrade(target),
            rpc,
            descs,
        })
    }
}

impl Collector for LaminaCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut out = Vec::with_capacity(CATALOG.len());
        build_info(&mut out);
        if let Some(t) = self.target.upgrade() {
            nvmf::collect(&t, &mut out);
            transport::collect(&t.transport_stats, &t.admission, &mut out);
            volumes::collect(&t, &mut out);
            let mut pending = Family::new(catalog::CONFIG_PENDING);
            pending.gauge_u64(&[], t.pending.len() as u64);
            out.push(pending.finish());
        }
        if let Some(rpc) = &self.rpc {
            rpc_families(rpc, &mut out);
        }
        out
    }
}

fn build_info(out: &mut Vec<MetricFamily>) {
    let mut info = Family::new(catalog::BUILD_INFO);
    info.gauge(&[crate::VERSION, GIT_COMMIT], 1.0);
    let mut enabled = Family::new(catalog::IO_STATS_ENABLED);
    enabled.flag(&[], crate::plane::stats::is_counting());
    out.extend([info.finish(), enabled.finish()]);
}

/// RPC series exist for methods called at least once: Lamina registers dozens of methods, and
/// a histogram per never-called method would be hundreds of empty series.
fn rpc_families(rpc: &RpcStats, out: &mut Vec<MetricFamily>) {
    let mut requests = Family::new(catalog::RPC_REQUESTS);
    let mut duration = Family::new(catalog::RPC_DURATION);
    for (method, m) in rpc.methods() {
        let snap = m.latency().snapshot();
        if snap.count == 0 {
            continue;
        }
        requests.counter(&[method, "ok"], m.ok());
        requests.counter(&[method, "error"], m.errors());
        duration.histogram(&[method], &snap);
    }
    out.extend([requests.finish(), duration.finish()]);
}
