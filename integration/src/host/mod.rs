//! Lamina's NVMe/TCP host (initiator), on tokio and the `lamina-protocol` codec.
//!
//! # Layers
//!
//! - [`QueueCore`] (`core/`): the sans-IO host side of one queue: CID allocation, the table of
//!   commands in flight, in-capsule data or R2T for writes, C2HData placement, H2CData runs,
//!   completions, and every check of what the target sends. Unit-tested from byte vectors.
//! - `transport`, `reader`, `tx`: TCP connect with `TCP_NODELAY`, the ICReq/ICResp exchange
//!   with the Linux host's checks, reads of many PDUs per system call, vectored writes.
//! - [`OwnedQueue`]: a connection and its core driven by one task without locks (Fabrics
//!   Connect runs on it; `lamina-perf` runs its load on it).
//! - [`Queue`]: a connection shared by many tasks, with a driver task; commands pipelined and
//!   completed out of order. The typed I/O API ([`Queue::read`], [`Queue::write`]...) is in
//!   `io.rs`.
//! - [`Controller`]: admin queue + I/O queues, brought up like the Linux host does it, with the
//!   typed admin API (`admin.rs`) and a background Keep Alive (`keepalive.rs`).
//! - [`RawHost`]: PDU-level client for negative tests.
//!
//! Errors are one enum, [`HostError`]: transport, timeout, NVMe status (SCT/SC/DNR), and
//! [`Violation`]s of the protocol by the target (which end the queue with an H2CTermReq).
//!
//! # Use in tests
//!
//! ```no_run
//! use bytes::Bytes;
//! use lamina_integration::host::{ConnectOptions, Controller, RawHost};
//! use lamina_protocol::tcp::{Fes, IcReq};
//!
//! # async fn t(addr: std::net::SocketAddr) -> Result<(), lamina_integration::host::HostError> {
//! // Both digests, 2 I/O queues of 64 entries.
//! let mut opts = ConnectOptions::new("nqn.2026-11.io.lamina:default")?.with_digests(true, true);
//! opts.io_queues = 2;
//! opts.io_queue_size = 64;
//! let ctrl = Controller::connect(addr, opts).await?;
//! let ns = ctrl.namespace(1).await?;
//! // 1 MiB goes by R2T/H2CData; 4 KiB in the capsule.
//! ctrl.io_queue(1)?.write(&ns, 0, Bytes::from(vec![1; 1 << 20]), false).await?;
//! let aen = ctrl.async_event_request().await?; // resolves on the next event
//! # drop(aen);
//!
//! // Negative test: a PDU with a bad header length.
//! let mut raw = RawHost::connect(addr).await?;
//! raw.handshake(IcReq::default()).await?;
//! raw.send_bytes(&[4, 0, 71, 0, 72, 0, 0, 0]).await?;
//! let term = raw.expect_term_req().await?;
//! assert_eq!(term.fes, Fes::INVALID_HEADER_FIELD);
//! raw.expect_closed().await?;
//! # Ok(())
//! # }
//! ```

mod admin;
mod auth;
mod controller;
mod core;
pub mod error;
mod fabrics;
mod io;
mod keepalive;
mod link;
mod options;
mod owned;
mod queue;
mod raw;
mod reader;
mod transport;
mod tx;

pub use auth::Dhchap;
pub use controller::{Controller, IoConnector};
pub use core::identify_command;
pub use core::{Command, Completion, MAX_SLOTS, QueueCore, QueueParams, Transfer};
pub use error::{CommandStatus, HostError, Violation};
pub use fabrics::{ADMIN_IN_CAPSULE_BYTES, disconnect, property_get, property_set};
pub use io::Namespace;
pub use link::{Link, TlsPsk};
pub use options::ConnectOptions;
pub use owned::OwnedQueue;
pub use queue::{CommandFuture, Queue};
pub use raw::{RawEvent, RawHost};
pub use reader::{Filled, PduReader};
pub use transport::Negotiated;
