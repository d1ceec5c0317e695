//! Lamina-specific methods for pending configuration (entries of the persisted configuration
//! that could not be applied; see `crate::config::pending`):
//!
//! - `lamina_get_pending_config`: every pending entry, in order, with its `id`, `subsystem`
//!   (section), `object` (what it creates), `method`, `params`, `reason`, `retry`
//!   (`automatic`, or `on_request` for a bdev whose lvstore did not load), `attempts`,
//!   `pending_since_unix` and `pending_seconds`.
//! - `lamina_retry_pending_config`: runs a retry pass now (entries retried on request only,
//!   such as a bdev whose lvstore did not load, included) and answers
//!   `{"applied": N, "pending": [entries still pending]}`.
//! - `lamina_drop_pending_config {"id": N}`: gives up on entry N on purpose: it leaves the
//!   configuration (and `lamina.json`) and stops holding its names; answers the entry dropped.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::dispatch::{Methods, RpcResult};
use super::error::RpcError;
use super::fields::{Described, Field, NoParams, applied};
use crate::context::Target;

/// Registers the methods.
pub fn register(m: &mut Methods, t: &Arc<Target>) {
    super::reg(m, t, "lamina_get_pending_config", get);
    super::reg(m, t, "lamina_retry_pending_config", retry);
    super::reg(m, t, "lamina_drop_pending_config", drop_entry);
}

fn listing(t: &Target) -> Value {
    Value::Array(
        t.pending
            .list()
            .iter()
            .map(crate::config::pending::PendingEntry::to_json)
            .collect(),
    )
}

async fn get(t: Arc<Target>, _p: NoParams) -> RpcResult {
    Ok(listing(&t))
}

async fn retry(t: Arc<Target>, _p: NoParams) -> RpcResult {
    let methods = t.pending.methods().ok_or_else(|| {
        RpcError::new(
            super::error::INVALID_STATE,
            "pending configuration is retried only by a running `lamina serve`",
        )
    })?;
    let report = crate::config::retry::run_pass(&t, &methods, true).await;
    Ok(json!({"applied": report.applied, "pending": listing(&t)}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DropParams {
    id: u64,
}

impl Described for DropParams {
    const FIELDS: &'static [Field] = &[applied("id")];
}

async fn drop_entry(t: Arc<Target>, p: DropParams) -> RpcResult {
    // Not while a pass may be applying it.
    let _pass = t.pending.pass_lock().await;
    let entry = t.pending.remove(p.id).ok_or_else(|| {
        RpcError::not_found(format!(
            "no pending configuration entry #{} (lamina_get_pending_config lists them)",
            p.id
        ))
    })?;
    tracing::warn!(id = entry.id, entry = %entry.object(), method = %entry.method,
        params = %entry.params, reason = %entry.reason,
        "pending configuration entry dropped on purpose: it is no longer in lamina.json");
    Ok(entry.to_json())
}
