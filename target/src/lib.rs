//! The Lamina NVMe/TCP target.
//!
//! This crate is the server: it accepts NVMe/TCP connections, runs the admin, I/O and discovery
//! controllers on top of `lamina-protocol`, exports `lamina-lvol` volumes as namespaces, and
//! offers the SPDK-compatible JSON-RPC management interface. The `lamina` binary in `main.rs`
//! is a thin shell around it.
//!
//! # Layout
//! The modules are flat for now; they fall into layers, each depending only on the ones above
//! it (checked by `.ci/module_cycles.py`, which still lists one management-plane cycle,
//! `config`, `context`, `rpc`).
//!
//! - Data plane, what a host sees: [`plane`] (the state it shares, `DataPlane`), [`connect`]
//!   (Fabrics Connect and the controller supervisor), [`controller`], [`subsystem`],
//!   [`command`], [`dispatch`], [`admin`], [`io`], [`discovery`], [`ports`] (port IDs). The
//!   rules of a queue are `lamina_protocol::target::TargetQueue`'s.
//! - Network shell: [`transport`] (listeners, admission, the connection task that owns each
//!   socket and drives a queue core, the controller side of a queue).
//! - Management plane: [`context`] (`Target`: the data plane plus bdevs, lvols, persisted and
//!   pending configuration, long operations), [`rpc`], [`config`], [`bdev`], [`notify`],
//!   [`path_policy`], [`atomic_file`].
//! - Observability: [`stats`], [`metrics`], [`http`], [`http_limits`], [`telemetry`],
//!   [`log_control`].
//! - Process: [`cli`], [`server`] (start-up and shutdown wiring), [`settings`] (process
//!   settings decided once), [`options`], [`shutdown`], [`units`].

pub mod cli;
pub mod logs;
pub mod mgmt;
pub mod observe;
pub mod options;
pub mod plane;
pub mod server;
pub mod settings;
pub mod shutdown;
pub mod transport;
pub mod units;

/// Lamina's version, as the binary and `spdk_get_version` report it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
