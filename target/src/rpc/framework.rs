//! Framework methods: `rpc_get_methods`, `spdk_get_version` (answering with Lamina's version),
//! `save_config` (SPDK's JSON shape), `framework_get_subsystems` and `framework_get_config`
//! (what SPDK's own `rpc.py save_config` calls: the sections of `save_config` one by one), and
//! `framework_wait_init`. Pending configuration is part of what they return.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::dispatch::{Methods, RpcResult};
use super::error::RpcError;
use super::fields::{Described, Field, NoParams, Ty, applied, same};
use crate::context::Target;

/// Registers the methods. `rpc_get_methods` answers with the names registered before it, so
/// [`super::methods`] registers this group last.
pub fn register(m: &mut Methods, t: &Arc<Target>) {
    super::reg(m, t, "spdk_get_version", version);
    super::reg(m, t, "save_config", save_config);
    super::reg(m, t, "framework_get_subsystems", get_subsystems);
    super::reg(m, t, "framework_get_config", get_config);
    super::reg(m, t, "framework_wait_init", wait_init);
    let mut names: Vec<&'static str> = m.names().into_iter().chain(["rpc_get_methods"]).collect();
    names.sort_unstable();
    let names = Arc::new(names);
    super::reg(m, t, "rpc_get_methods", move |_t, _p: GetMethods| {
        let names = names.clone();
        async move { Ok(json!(*names)) }
    });
}

/// `rpc_get_methods`'s parameters: both filters select nothing Lamina has.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetMethods {}

impl Described for GetMethods {
    const FIELDS: &'static [Field] = &[
        same(
            "current",
            Ty::Bool,
            "every Lamina method is callable whenever the target answers (there is no \
             start-up RPC state), so the current ones are all of them",
        ),
        same(
            "include_aliases",
            Ty::Bool,
            "Lamina registers no deprecated method aliases, so there are none to include",
        ),
    ];
}

async fn version(_t: Arc<Target>, _p: NoParams) -> RpcResult {
    let v = crate::VERSION;
    let mut parts = v.split('.').map(|s| s.parse::<u32>().unwrap_or(0));
    let (major, minor, patch) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    Ok(json!({
        "version": format!("Lamina v{v}"),
        "fields": {"major": major, "minor": minor, "patch": patch, "suffix": ""},
    }))
}

async fn save_config(t: Arc<Target>, _p: NoParams) -> RpcResult {
    Ok(crate::config::save_config(&t))
}

async fn get_subsystems(t: Arc<Target>, _p: NoParams) -> RpcResult {
    let sections = crate::config::save_config(&t);
    let mut out = Vec::new();
    for s in sections["subsystems"].as_array().into_iter().flatten() {
        let name = s["subsystem"].as_str().unwrap_or_default();
        // nvmf namespaces are bdevs: as in SPDK, nvmf depends on bdev.
        let depends_on: Vec<&str> = if name == "nvmf" {
            vec!["bdev"]
        } else {
            Vec::new()
        };
        out.push(json!({"subsystem": name, "depends_on": depends_on}));
    }
    Ok(Value::Array(out))
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
    let config = crate::config::save_config(&t);
    config["subsystems"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["subsystem"] == p.name.as_str())
        .map(|s| s["config"].clone())
        .ok_or_else(|| {
            RpcError::invalid_params(format!(
                "Subsystem '{}' not found (framework_get_subsystems lists them)",
                p.name
            ))
        })
}

async fn wait_init(_t: Arc<Target>, _p: NoParams) -> RpcResult {
    Ok(json!(true))
}
