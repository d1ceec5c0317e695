//! The SPDK-compatible JSON-RPC management interface.
//!
//! Layers: [`framing`] cuts the byte stream into JSON values, [`dispatch`] applies the JSON-RPC
//! 2.0 rules and routes to method handlers, [`server`] owns the listeners and client
//! connections, [`error`] is the only place where error codes are chosen, and [`client`] is
//! the other end used by the CLI and tests. The methods live in one file per resource:
//! [`bdev`] (create and delete), [`bdev_info`] (`bdev_get_bdevs`), [`bdev_resize`],
//! [`iostat`] (I/O statistics and histograms), [`lvol`] (lvstores, lvol create/list/delete),
//! [`lvol_ops`] (the other lvol methods), [`lvol_check`] (the lvstore consistency check),
//! [`nvmf`], [`logging`] (the log filter at run time), [`notify`] (bdev events), [`runtime`]
//! (reactors and threads), [`framework`].
//! [`operations`] tracks the progress of long lvol operations for the Lamina-specific
//! `lamina_get_operations`.
//!
//! Every method's parameters are a struct with a catalogue ([`fields`]): each parameter SPDK
//! defines for the method is accepted, applied where Lamina implements it, and otherwise
//! accepted only at the values that mean what Lamina does. A parameter is never accepted and
//! then ignored.
//!
//! Every method that succeeds and is not a pure query persists the configuration (see
//! [`crate::config`]), so what an operator created is back after a restart or a crash; the
//! write (and its fsyncs) is skipped when the file would not change, as after lvol methods.
//! Such a method is first checked against pending configuration (`crate::config::guard`),
//! and its success wakes the retry of pending entries. [`pending`] has the Lamina-specific
//! methods that list, retry and drop pending entries.

pub mod bdev;
pub mod bdev_info;
pub mod bdev_resize;
#[cfg(test)]
mod catalogue_tests;
pub mod client;
pub mod compat;
pub mod dispatch;
pub mod error;
pub mod fields;
pub mod framework;
pub mod framing;
pub mod iostat;
pub mod logging;
pub mod lvol;
pub mod lvol_check;
pub mod lvol_ops;
pub mod notify;
pub mod nvmf;
pub mod operations;
pub mod peer;
pub mod pending;
pub mod runtime;
pub mod server;

use std::future::Future;
use std::sync::Arc;

pub use dispatch::{Methods, Params, RpcResult};
pub use error::RpcError;

use crate::context::Target;

/// Every method Lamina answers, bound to `target`.
pub fn methods(target: &Arc<Target>) -> Methods {
    let mut m = Methods::new();
    bdev::register(&mut m, target);
    bdev_info::register(&mut m, target);
    bdev_resize::register(&mut m, target);
    iostat::register(&mut m, target);
    logging::register(&mut m, target);
    notify::register(&mut m, target);
    runtime::register(&mut m, target);
    lvol::register(&mut m, target);
    lvol_check::register(&mut m, target);
    nvmf::register(&mut m, target);
    compat::register(&mut m, target);
    pending::register(&mut m, target);
    framework::register(&mut m, target);
    m
}

/// Whether a method only reads state (no persistence needed after it).
fn is_query(name: &str) -> bool {
    name.contains("_get_")
        || name.starts_with("get_")
        || matches!(
            name,
            "save_config"
                | "framework_wait_init"
                | "rpc_get_methods"
                | "spdk_get_version"
                | "bdev_lvol_check_lvstore"
        )
}

/// Registers `f` as `name`, giving it the target and its parameters decoded and checked as `P`
/// (whose catalogue is recorded with the method); a successful change is persisted.
pub(crate) fn reg<P, F, Fut>(m: &mut Methods, t: &Arc<Target>, name: &'static str, f: F)
where
    P: fields::Described + Send + 'static,
    F: Fn(Arc<Target>, P) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = RpcResult> + Send + 'static,
{
    let t = t.clone();
    let f = Arc::new(f);
    let changes = !is_query(name);
    m.describe(name, fields::Catalog::of::<P>());
    m.register(name, move |p: Params| {
        let (t, f) = (t.clone(), f.clone());
        async move {
            let raw = p.value().cloned();
            let params: P = p.parse()?;
            if !changes {
                return f(t, params).await;
            }
            // Pending configuration holds names and parents: a change may not take them.
            let params_json = raw.unwrap_or(serde_json::Value::Null);
            crate::config::guard::check(&t, name, &params_json)?;
            let result = f(t.clone(), params).await;
            // Whatever it did to bdevs and lvols, even half-way, is an event to report.
            t.notifier.observe(|| t.bdev_names());
            if result.is_ok() {
                crate::config::persist(&t).await;
                // It may be what a pending entry waited for. A retry's own call (the pending
                // entry itself) does not wake it again.
                if !t.pending.is_empty() && !t.pending.has_call(name, &params_json) {
                    t.pending.wake();
                }
            }
            result
        }
    });
}
