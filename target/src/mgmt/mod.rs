//! The management plane: what operators drive. [`context`] (`Target`: the data plane plus
//! the management state), [`rpc`] (the SPDK-compatible JSON-RPC server and its methods),
//! [`config`] (the persisted configuration, its replay and pending entries), [`operations`]
//! (long lvol operations), [`notify`] (bdev events), [`path_policy`] (which files RPCs may
//! open) and [`atomic_file`]. It depends on the data plane and the network shell; neither
//! depends on it.
//!
//! Inside it the order is `context` and `operations` below [`rpc`], and [`rpc`] below
//! [`config`]: the RPC layer reaches the configuration only through the
//! [`context::ChangeHook`] that [`methods`] installs.

pub mod atomic_file;
pub mod config;
pub mod context;
pub mod notify;
pub mod operations;
pub mod path_policy;
pub mod rpc;

use std::sync::Arc;

use context::Target;
use rpc::dispatch::Methods;

/// Every method Lamina answers, bound to `target`, with the configuration's change hook
/// installed on it.
pub fn methods(target: &Arc<Target>) -> Methods {
    target.set_change_hook(Arc::new(config::hook::Persistence));
    let mut m = Methods::new();
    rpc::register(&mut m, target);
    config::methods::register(&mut m, target);
    // Last: `rpc_get_methods` and `lamina_get_method_params` list what came before.
    rpc::framework::register(&mut m, target);
    m
}
