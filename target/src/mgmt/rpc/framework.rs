//! Framework methods: `rpc_get_methods`, `lamina_get_method_params`, `spdk_get_version`
//! (answering with Lamina's version) and `framework_wait_init`. The configuration's own
//! framework methods (`save_config`, `framework_get_config`, `framework_get_subsystems`) are
//! registered by `crate::mgmt::config::methods`.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::dispatch::{Methods, RpcResult};
use super::fields::{Catalog, Described, Field, Lit, NoParams, Ty, Use, same};
use crate::mgmt::context::Target;

/// Registers the methods. `rpc_get_methods` and `lamina_get_method_params` answer with the
/// methods registered before them, so `crate::mgmt::methods` registers this group last.
pub fn register(m: &mut Methods, t: &Arc<Target>) {
    super::reg(m, t, "spdk_get_version", version);
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

async fn wait_init(_t: Arc<Target>, _p: NoParams) -> RpcResult {
    Ok(json!(true))
}
