//! The Lamina NVMe/TCP target.
//!
//! This crate is the server: it accepts NVMe/TCP connections, runs the admin, I/O and discovery
//! controllers on top of `lamina-protocol`, exports `lamina-lvol` volumes as namespaces, and
//! offers the SPDK-compatible JSON-RPC management interface. The `lamina` binary in `main.rs`
//! is a thin shell around it.
//!
//! # Layout
//! Each folder is a layer and depends only on the layers listed before it; CI fails on any
//! import cycle, between layers or between files (`.ci/module_cycles.py`).
//!
//! - [`plane`], the data plane, what a host sees: `DataPlane` (the state it shares),
//!   `connect` (Fabrics Connect and the controller supervisor), `controller`, `subsystem`
//!   (with namespaces and their backends), `bdev` (the device handles a namespace reads),
//!   `command`, `dispatch`, `admin`, `io`, `discovery`, `ports`, `stats`. The rules of a
//!   queue are `lamina_protocol::target::TargetQueue`'s.
//! - [`transport`], the network shell: listeners, admission, the connection task that owns
//!   each socket and drives a queue core, the controller side of a queue, the accept loop.
//! - [`mgmt`], the management plane: `context` (`Target`: the data plane plus bdev and lvol
//!   registries, long operations, pending configuration), `rpc`, `config`, `operations`,
//!   `notify`, `path_policy`, `atomic_file`.
//! - [`observe`], observability: Prometheus `metrics` read at scrape time, the `http` server.
//! - [`logs`]: the tracing subscriber and the run-time log filter (a leaf every layer may use).
//! - Process: [`cli`], [`server`] (start-up and shutdown wiring), and the leaves
//!   [`settings`] (process settings decided once), [`cores`] (the CPU set, applied before the
//!   runtime starts), [`options`], [`shutdown`], [`units`].
//!
//! # One Read, from socket to device
//! 1. `transport::connection`: the connection task, the only owner of the `TcpStream`, reads
//!    what the socket holds into a pooled buffer and hands it to the queue core.
//! 2. `lamina_protocol::target::TargetQueue::handle_input`: frames the capsule, admits its
//!    CID, advances the SQ head, checks the SGL against MDTS: `Input::Command`.
//! 3. `transport::queue`: lends a pooled data buffer and calls `plane::dispatch::execute`
//!    (controller ready: an atomic).
//! 4. `plane::io`: loads the namespace from the subsystem's lock-free map, enters its drain,
//!    checks the data length against the SGL and reads through the namespace's backend; an
//!    lvol's export descriptor (`lamina_lvol::LvolDesc`) checks range and read-only once from
//!    atomics and maps clusters to the device. No mutex on the way. A backend that never
//!    waits (RAM, null, an lvol on them) reads right there (`plane::io::now`) and the
//!    completion goes straight back; any other read becomes a future stored in a
//!    preallocated slot of `transport::slots`, polled when the device wakes it.
//! 5. `TargetQueue::complete` queues C2HData (with SUCCESS when the host allows it) and the
//!    connection task writes what `poll_transmit` hands it in one vectored write.

pub mod cli;
pub mod cores;
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
