//! The SPDK-compatible JSON-RPC management interface.
//!
//! Layers: [`framing`] cuts the byte stream into JSON values, [`dispatch`] applies the JSON-RPC
//! 2.0 rules and routes to method handlers, [`server`] owns the listeners and client
//! connections, [`error`] is the only place where error codes are chosen, and [`client`] is
//! the other end used by the CLI and tests. The methods live in one file per resource:
//! [`bdev`] (create and delete), [`bdev_info`] (`bdev_get_bdevs`), [`bdev_resize`],
//! [`iostat`] (I/O statistics and histograms), [`keyring`] (named keys in files), [`lvol`] (lvstores, lvol create/list/delete),
//! [`lvol_ops`] (the other lvol methods), [`lvol_check`] (the lvstore consistency check),
//! [`nvmf`], [`logging`] (the log filter at run time), [`notify`] (bdev events), [`runtime`]
//! (reactors and threads), [`framework`].
//! [`crate::mgmt::operations`] tracks the progress of long lvol operations for the
//! Lamina-specific `lamina_get_operations`.
//!
//! Every method's parameters are a struct with a catalogue ([`fields`]): each parameter SPDK
//! defines for the method is accepted, applied where Lamina implements it, and otherwise
//! accepted only at the values that mean what Lamina does. A parameter is never accepted and
//! then ignored.
//!
//! Every method that is not a pure query runs inside the target's change hook
//! ([`crate::mgmt::context::ChangeHook`]), which the configuration installs: the call is first
//! checked against pending configuration, and its success persists the configuration (so
//! what an operator created is back after a restart or a crash) and wakes the retry of
//! pending entries. This module never names the configuration: it sits below it.

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
pub mod keyring;
pub mod logging;
pub mod lvol;
pub mod lvol_check;
pub mod lvol_ops;
pub mod notify;
pub mod nvmf;
pub mod peer;
pub mod runtime;
pub mod server;

use std::future::Future;
use std::sync::Arc;

pub use dispatch::{Methods, Params, RpcResult};
pub use error::RpcError;

use crate::mgmt::context::Target;

/// Registers the methods of every resource (bdevs, lvols, NVMe-oF, logging, statistics)
/// bound to `target`. The whole table, with the configuration's methods and the framework
/// methods that list it, is `crate::mgmt::methods`.
pub fn register(m: &mut Methods, target: &Arc<Target>) {
    bdev::register(m, target);
    bdev_info::register(m, target);
    bdev_resize::register(m, target);
    iostat::register(m, target);
    keyring::register(m, target);
    logging::register(m, target);
    notify::register(m, target);
    runtime::register(m, target);
    lvol::register(m, target);
    lvol_check::register(m, target);
    nvmf::register(m, target);
    compat::register(m, target);
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
            let hook = t.change_hook().cloned();
            if let Some(h) = &hook {
                h.admit(&t, name, &params_json)?;
            }
            let result = f(t.clone(), params).await;
            // Whatever it did to bdevs and lvols, even half-way, is an event to report.
            t.notifier.observe(|| t.bdev_names());
            if let (Ok(_), Some(h)) = (&result, &hook) {
                h.applied(&t, name, &params_json).await;
            }
            result
        }
    });
}
