//! Lvstore and lvol series, read from the volume registry's listings.
//!
//! The listings are built from refcounted handles and skip anything deleted or unloaded while
//! they run (the same rule as `bdev_lvol_get_lvols`), so a scrape racing a delete reports the
//! lvol or not, and never touches freed state.

use prometheus::proto::MetricFamily;

use super::catalog;
use super::family::Family;
use crate::mgmt::context::Target;

/// Appends the lvstore and lvol families.
pub fn collect(t: &Target, out: &mut Vec<MetricFamily>) {
    lvstores(t, out);
    lvols(t, out);
}

fn lvstores(t: &Target, out: &mut Vec<MetricFamily>) {
    let mut info = Family::new(catalog::LVSTORE_INFO);
    let mut clusters = Family::new(catalog::LVSTORE_CLUSTERS);
    let mut free_clusters = Family::new(catalog::LVSTORE_FREE_CLUSTERS);
    let mut cluster_size = Family::new(catalog::LVSTORE_CLUSTER_SIZE);
    let mut size = Family::new(catalog::LVSTORE_SIZE);
    let mut free = Family::new(catalog::LVSTORE_FREE);
    let mut lvols = Family::new(catalog::LVSTORE_LVOLS);
    for s in t.lvols.list_lvstores() {
        let name = [s.name.as_str()];
        let uuid = s.uuid.to_string();
        info.gauge(&[&s.name, &uuid, &s.base_bdev], 1.0);
        clusters.gauge_u64(&name, s.total_data_clusters);
        free_clusters.gauge_u64(&name, s.free_clusters);
        cluster_size.gauge_u64(&name, s.cluster_size);
        size.gauge_u64(&name, s.total_data_clusters.saturating_mul(s.cluster_size));
        free.gauge_u64(&name, s.free_clusters.saturating_mul(s.cluster_size));
        lvols.gauge_u64(&name, s.lvol_count as u64);
    }
    out.extend([
        info.finish(),
        clusters.finish(),
        free_clusters.finish(),
        cluster_size.finish(),
        size.finish(),
        free.finish(),
        lvols.finish(),
    ]);
}

fn lvols(t: &Target, out: &mut Vec<MetricFamily>) {
    let mut size = Family::new(catalog::LVOL_SIZE);
    let mut clusters = Family::new(catalog::LVOL_ALLOCATED_CLUSTERS);
    let mut allocated = Family::new(catalog::LVOL_ALLOCATED);
    let mut thin = Family::new(catalog::LVOL_THIN);
    let mut snapshot = Family::new(catalog::LVOL_SNAPSHOT);
    let mut clone = Family::new(catalog::LVOL_CLONE);
    let mut read_only = Family::new(catalog::LVOL_READ_ONLY);
    for l in t.lvols.list_lvols(None) {
        let uuid = l.uuid.to_string();
        let v = [l.lvs_name.as_str(), l.name.as_str(), uuid.as_str()];
        size.gauge_u64(&v, l.size_bytes);
        clusters.gauge_u64(&v, l.num_allocated_clusters);
        allocated.gauge_u64(&v, l.num_allocated_clusters.saturating_mul(l.cluster_size));
        thin.flag(&v, l.is_thin_provisioned);
        snapshot.flag(&v, l.is_snapshot);
        clone.flag(&v, l.is_clone);
        read_only.flag(&v, l.is_read_only);
    }
    out.extend([
        size.finish(),
        clusters.finish(),
        allocated.finish(),
        thin.finish(),
        snapshot.finish(),
        clone.finish(),
        read_only.finish(),
    ]);
}
