//! Framework methods: `rpc_get_methods`, `spdk_get_version` (answering with Lamina's version),
//! `save_config` (SPDK's JSON shape) and `framework_wait_init`.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use super::dispatch::{Methods, RpcResult};
use super::fields::{Described, Field, NoParams, Ty, same};
use crate::context::Target;

/// Registers the methods. `rpc_get_methods` answers with the names registered before it, so
/// [`super::methods`] registers this group last.
pub fn register(m: &mut Methods, t: &Arc<Target>) {
    super::reg(m, t, "spdk_get_version", version);
    super::reg(m, t, "save_config", save_config);
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

async fn wait_init(_t: Arc<Target>, _p: NoParams) -> RpcResult {
    Ok(json!(true))
}
