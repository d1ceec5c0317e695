//! `bdev_lvol_check_lvstore` (Lamina's own; SPDK has no equivalent): the online consistency
//! check of one lvstore (`uuid` or `lvs_name`) or of all. It verifies every metadata invariant
//! and that the media would load into exactly the state in memory, and changes nothing (see
//! `lamina_lvol::check`). The answer is one report per lvstore; `consistent` is false when any
//! problem was found. The offline check and the repair are `lamina lvstore check --device`
//! and `lamina lvstore repair`.

use std::sync::Arc;

use lamina_lvol::CheckReport;
use serde_json::{Value, json};

use super::dispatch::{Methods, RpcResult};
use super::lvol::StoreSelector;
use crate::mgmt::context::Target;

/// Registers the method.
pub fn register(m: &mut Methods, t: &Arc<Target>) {
    super::reg(m, t, "bdev_lvol_check_lvstore", check);
}

async fn check(t: Arc<Target>, sel: StoreSelector) -> RpcResult {
    let stores = match sel.resolve(&t)? {
        Some(s) => vec![s],
        None => t.lvols.lvstores(),
    };
    let mut out = Vec::with_capacity(stores.len());
    for store in stores {
        let report = store.check().await?;
        if !report.is_consistent() {
            tracing::error!(lvstore = %report.name, problems = ?report.problems,
                "lvstore check found problems");
        }
        out.push(report_json(&report));
    }
    Ok(Value::Array(out))
}

/// One report, as the RPC and `lamina lvstore check --json` print it.
pub fn report_json(r: &CheckReport) -> Value {
    json!({
        "uuid": r.uuid.to_string(),
        "name": r.name,
        "consistent": r.is_consistent(),
        "lvols": r.lvols,
        "total_data_clusters": r.total_data_clusters,
        "used_clusters": r.used_clusters,
        "reserved_clusters": r.reserved_clusters,
        "quarantined_clusters": r.quarantined_clusters,
        "free_clusters": r.free_clusters,
        "journal_batches": r.journal_batches,
        "journal_records": r.journal_records,
        "problems": r.problems,
        "notes": r.notes,
    })
}
