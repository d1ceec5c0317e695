//! The SPDK-compatible JSON-RPC management interface.
//!
//! Layers: [`framing`] cuts the byte stream into JSON values, [`dispatch`] applies the JSON-RPC
//! 2.0 rules and routes to method handlers, [`server`] owns the listeners and client
//! connections, [`error`] is the only place where error codes are chosen, and [`client`] is
//! the other end used by the CLI and tests.

pub mod client;
pub mod dispatch;
pub mod error;
pub mod framing;
pub mod server;

pub use dispatch::{Methods, Params, RpcResult};
pub use error::RpcError;
