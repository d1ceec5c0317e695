//! Prometheus metrics (text exposition format).
//!
//! Rendered on each scrape from a snapshot of refcounted handles (lvstores, lvols, subsystems,
//! controllers), so a scrape racing a delete reads only live objects (mayastor#2055 crashed
//! exactly there). Exposed now:
//! - `lamina_build_info{version}` (gauge 1)
//! - `lamina_controllers` (gauge)
//! - `lamina_lvstore_clusters_total{lvstore}`, `lamina_lvstore_clusters_free{lvstore}`,
//!   `lamina_lvstore_cluster_size_bytes{lvstore}` (gauges)
//! - `lamina_lvol_size_bytes{lvstore,lvol,uuid}`, `lamina_lvol_allocated_clusters{...}` (gauges)

use prometheus::{Encoder, GaugeVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::context::Target;

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> Result<IntGaugeVec, String> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).map_err(|e| e.to_string())?;
    r.register(Box::new(g.clone())).map_err(|e| e.to_string())?;
    Ok(g)
}

/// Renders the metrics of `t`.
pub fn render(t: &Target) -> Result<String, String> {
    let r = Registry::new();
    let build = GaugeVec::new(
        Opts::new("lamina_build_info", "Lamina build information (always 1)"),
        &["version"],
    )
    .map_err(|e| e.to_string())?;
    r.register(Box::new(build.clone()))
        .map_err(|e| e.to_string())?;
    build.with_label_values(&[crate::VERSION]).set(1.0);
    let ctrls = IntGauge::new("lamina_controllers", "NVMe controllers connected")
        .map_err(|e| e.to_string())?;
    r.register(Box::new(ctrls.clone()))
        .map_err(|e| e.to_string())?;
    ctrls.set(i64::try_from(t.controllers.len()).unwrap_or(i64::MAX));

    let total = gauge_vec(
        &r,
        "lamina_lvstore_clusters_total",
        "Data clusters of the lvstore",
        &["lvstore"],
    )?;
    let free = gauge_vec(
        &r,
        "lamina_lvstore_clusters_free",
        "Free data clusters of the lvstore",
        &["lvstore"],
    )?;
    let csize = gauge_vec(
        &r,
        "lamina_lvstore_cluster_size_bytes",
        "Cluster size of the lvstore",
        &["lvstore"],
    )?;
    for s in t.lvols.list_lvstores() {
        total
            .with_label_values(&[&s.name])
            .set(i64::try_from(s.total_data_clusters).unwrap_or(i64::MAX));
        free.with_label_values(&[&s.name])
            .set(i64::try_from(s.free_clusters).unwrap_or(i64::MAX));
        csize
            .with_label_values(&[&s.name])
            .set(i64::try_from(s.cluster_size).unwrap_or(i64::MAX));
    }
    let labels = ["lvstore", "lvol", "uuid"];
    let size = gauge_vec(&r, "lamina_lvol_size_bytes", "Size of the lvol", &labels)?;
    let alloc = gauge_vec(
        &r,
        "lamina_lvol_allocated_clusters",
        "Clusters the lvol owns",
        &labels,
    )?;
    for l in t.lvols.list_lvols(None) {
        let uuid = l.uuid.to_string();
        let v = [l.lvs_name.as_str(), l.name.as_str(), uuid.as_str()];
        size.with_label_values(&v)
            .set(i64::try_from(l.size_bytes).unwrap_or(i64::MAX));
        alloc
            .with_label_values(&v)
            .set(i64::try_from(l.num_allocated_clusters).unwrap_or(i64::MAX));
    }
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&r.gather(), &mut out)
        .map_err(|e| e.to_string())?;
    String::from_utf8(out).map_err(|e| e.to_string())
}
