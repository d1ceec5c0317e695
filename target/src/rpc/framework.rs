//! Framework methods: `rpc_get_methods`, `spdk_get_version` (answering with Lamina's version),
//! `save_config` (SPDK's JSON shape) and `framework_wait_init`.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use super::dispatch::{Methods, Params, RpcResult};
use crate::context::Target;

/// Registers the methods. `rpc_get_methods` answers with the names registered before it, so
/// [`super::methods`] registers this group last.
pub fn register(m: &mut Methods, t: &Arc<Target>) {
    super::reg(m, t, "spdk_get_version", version);
    super::reg(m, t, "save_config", save_config);
    super::reg(m, t, "framework_wait_init", wait_init);
    let names: Vec<&'static str> = m.names().into_iter().chain(["rpc_get_methods"]).collect();
    m.register("rpc_get_methods", move |p: Params| {
        let names = names.clone();
        async move {
            #[derive(Deserialize, Default)]
            #[serde(deny_unknown_fields)]
            struct Get {
                #[serde(default)]
                current: Option<bool>,
                #[serde(default)]
                include_aliases: Option<bool>,
            }
            let p: Get = p.parse()?;
            let _ = (p.current, p.include_aliases);
            let mut names = names;
            names.sort_unstable();
            Ok(json!(names))
        }
    });
}

async fn version(_t: Arc<Target>, p: Params) -> RpcResult {
    p.none()?;
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

async fn save_config(t: Arc<Target>, p: Params) -> RpcResult {
    p.none()?;
    Ok(crate::config::save_config(&t))
}

async fn wait_init(_t: Arc<Target>, p: Params) -> RpcResult {
    p.none()?;
    Ok(json!(true))
}
