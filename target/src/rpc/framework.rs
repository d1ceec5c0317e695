//! Framework methods: `rpc_get_methods`, `spdk_get_version` (answering with Lamina's version),
//! `save_config` (SPDK's JSON shape), `framework_get_subsystems` and `framework_get_config`
//! (what SPDK's own `rpc.py save_config` calls: the sections of `save_config` one by one), and
//! `framework_wait_init`. Pending configuration is part of what they return.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::dispatch::{Methods, RpcResult};
use super::error::RpcError;
use super::fields::{Catalog, Described, Field, Lit, NoParams, Ty, Use, applied, same};
use crate::context::Target;

/// Registers the methods. `rpc_get_methods` and `lamina_get_method_params` answer with the
/// methods registered before them, so [`super::methods`] registers this group last.
pub fn register(m: &mut Methods, t: &Arc<Target>) {
    super::reg(m, t, "spdk_get_version", version);
    super::reg(m, t, "save_config", save_config);
    super::reg(m, t, "framework_get_subsystems", get_subsystems);
    super::reg(m, t, "framework_get_config", get_config);
    super::reg(m, t, "framework_wait_init", wait_init);
    let catalogues = Arc::new(catalogues_json(m));
    super::reg(m, t, "lamina_get_method_params", move |_t, _p: NoParams| {
        let c = catalogues.clone();
        async move { Ok((*c).clone()) }
    });
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

/// Every method registered so far with its parameter catalogue (see [`super::fields`]): per
/// parameter, `applied`, `{"only": [values], "why": ...}`, `{"same": why}` or
/// `{"object": {...}}`. Lamina-specific: it tells an operator (and the SPDK client test) what
/// each parameter SPDK defines does here.
fn catalogues_json(m: &Methods) -> Value {
    fn one(c: Catalog) -> Value {
        let fields: serde_json::Map<String, Value> = c
            .fields
            .iter()
            .map(|f| {
                let v = match f.usage {
                    Use::Applied => json!("applied"),
                    Use::Only { values, why } => json!({
                        "only": values.iter().map(Lit::to_json).collect::<Vec<_>>(),
                        "why": why,
                    }),
                    Use::Same { why, .. } => json!({ "same": why }),
                    Use::Object(inner) => json!({ "object": one(inner) }),
                };
                (f.name.to_owned(), v)
            })
            .collect();
        Value::Object(fields)
    }
    Value::Object(
        m.names()
            .into_iter()
            .filter_map(|n| m.catalog(n).map(|c| (n.to_owned(), one(c))))
            .collect(),
    )
}

/// Lamina's sections with their dependencies, then any section only pending entries name
/// (with none: Lamina does not know it).
async fn get_subsystems(t: Arc<Target>, _p: NoParams) -> RpcResult {
    Ok(Value::Array(
        crate::config::section_names(&t)
            .iter()
            .map(|name| {
                let deps: &[&str] = crate::config::SUBSYSTEMS
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
    crate::config::subsystem_config(&t, &p.name)
        .map(Value::Array)
        .ok_or_else(|| {
            RpcError::invalid_params(format!(
                "subsystem '{}' not found: Lamina's are {}",
                p.name,
                crate::config::SUBSYSTEMS.map(|(n, _)| n).join(", ")
            ))
        })
}

async fn wait_init(_t: Arc<Target>, _p: NoParams) -> RpcResult {
    Ok(json!(true))
}
