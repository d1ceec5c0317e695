//! The configuration's own RPC methods.
//!
//! - `save_config` (SPDK's JSON shape), `framework_get_subsystems` and `framework_get_config`
//!   (what SPDK's own `rpc.py save_config` calls: the sections of `save_config` one by one).
//!   Pending configuration is part of what they return.
//!
//! Lamina-specific methods for pending configuration (entries of the persisted configuration
//! that could not be applied; see [`super::pending`]):
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

use crate::mgmt::context::Target;
use crate::mgmt::rpc::dispatch::{Methods, RpcResult};
use crate::mgmt::rpc::error::{INVALID_STATE, RpcError};
use crate::mgmt::rpc::fields::{Described, Field, NoParams, Ty, applied, same};
use crate::mgmt::rpc::reg;

/// Registers the methods.
pub fn register(m: &mut Methods, t: &Arc<Target>) {
    reg(m, t, "save_config", save_config);
    reg(m, t, "framework_get_subsystems", get_subsystems);
    reg(m, t, "framework_get_config", get_config);
    reg(m, t, "lamina_get_pending_config", get);
    reg(m, t, "lamina_retry_pending_config", retry);
    reg(m, t, "lamina_drop_pending_config", drop_entry);
}

fn listing(t: &Target) -> Value {
    Value::Array(
        t.pending
            .list()
            .iter()
            .map(super::pending::PendingEntry::to_json)
            .collect(),
    )
}

async fn get(t: Arc<Target>, _p: NoParams) -> RpcResult {
    Ok(listing(&t))
}

async fn retry(t: Arc<Target>, _p: NoParams) -> RpcResult {
    let methods = t.pending.methods().ok_or_else(|| {
        RpcError::new(
            INVALID_STATE,
            "pending configuration is retried only by a running `lamina serve`",
        )
    })?;
    let report = super::retry::run_pass(&t, &methods, true).await;
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

async fn save_config(t: Arc<Target>, _p: NoParams) -> RpcResult {
    Ok(super::save_config(&t))
}

/// Lamina's sections with their dependencies, then any section only pending entries name
/// (with none: Lamina does not know it).
async fn get_subsystems(t: Arc<Target>, _p: NoParams) -> RpcResult {
    Ok(Value::Array(
        super::section_names(&t)
            .iter()
            .map(|name| {
                let deps: &[&str] = super::SUBSYSTEMS
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or(&[], |(_, d)| d);
                json!({"subsystem": name, "depends_on": deps})
            })
            .collect(),
    ))
}

/// `framework_get_config`'s parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetConfig {
    name: String,
}

impl Described for GetConfig {
    const FIELDS: &'static [Field] = &[
        applied("name"),
        same(
            "with_batches",
            Ty::Bool,
            "SPDK flattens batch arrays unless it is true; Lamina's configuration holds no \
             batches, so both forms are the same",
        ),
    ];
}

async fn get_config(t: Arc<Target>, p: GetConfig) -> RpcResult {
    super::subsystem_config(&t, &p.name)
        .map(Value::Array)
        .ok_or_else(|| {
            RpcError::invalid_params(format!(
                "subsystem '{}' not found: Lamina's are {}",
                p.name,
                super::SUBSYSTEMS.map(|(n, _)| n).join(", ")
            ))
        })
}
