//! The Lamina NVMe/TCP target.
//!
//! This crate is the server: it accepts NVMe/TCP connections, runs the admin, I/O and discovery
//! controllers on top of `lamina-protocol`, and exports `lamina-lvol` volumes as namespaces.
//! The `lamina` binary in `main.rs` is a thin shell around it.

/// Lamina's version, as the binary and `spdk_get_version` report it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
