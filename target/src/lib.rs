//! The Lamina NVMe/TCP target.
//!
//! This crate is the server: it accepts NVMe/TCP connections, runs the admin, I/O and discovery
//! controllers on top of `lamina-protocol`, exports `lamina-lvol` volumes as namespaces, and
//! offers the SPDK-compatible JSON-RPC management interface. The `lamina` binary in `main.rs`
//! is a thin shell around it.
//!
//! # Layout
//! - [`cli`]: the command line of the `lamina` binary.
//! - [`rpc`]: JSON-RPC framing, dispatch, listeners and client.
//! - [`telemetry`]: logging set-up.
//! - [`shutdown`]: signals to cancellation.
//! - [`atomic_file`]: crash-safe file replacement for persisted configuration.
//! - [`http`]: the `/metrics`, `/healthz` and `/readyz` endpoint.

pub mod admin;
pub mod atomic_file;
pub mod bdev;
pub mod cli;
pub mod command;
pub mod config;
pub mod context;
pub mod controller;
pub mod discovery;
pub mod dispatch;
pub mod http;
pub mod http_limits;
pub mod io;
pub mod log_control;
pub mod metrics;
pub mod notify;
pub mod options;
pub mod path_policy;
pub mod ports;
pub mod rpc;
pub mod server;
pub mod shutdown;
pub mod stats;
pub mod subsystem;
pub mod telemetry;
pub mod transport;

/// Lamina's version, as the binary and `spdk_get_version` report it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
