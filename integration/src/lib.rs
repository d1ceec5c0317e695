//! End-to-end tests for Lamina, its Rust NVMe/TCP initiator and the `lamina-perf` load generator.
//!
//! The initiator is built on `lamina-protocol`, the same codec the target uses, and drives the
//! target over real sockets on loopback.
//!
//! # Layout
//!
//! - [`host`]: the asynchronous (tokio) NVMe/TCP host: [`host::Controller`] brings a controller
//!   up the way the Linux host does (ICReq, Fabrics Connect, CAP/VS, CC.EN, Identify, Number of
//!   Queues, one TCP connection per I/O queue); [`host::Queue`] runs pipelined commands on one
//!   connection; [`host::RawHost`] sends hand-built or malformed PDUs for negative tests.
//! - [`perf`]: the engine behind the `lamina-perf` load generator (`src/bin/lamina-perf.rs`).
//! - [`probe`]: the interoperability probe behind `lamina-probe` (`src/bin/lamina-probe.rs`),
//!   run against the Linux kernel target in the VM harness (`vm/`).
//!
//! - [`fuzz`]: the session-level fuzzer behind `lamina-session-fuzz`
//!   (`src/bin/lamina-session-fuzz.rs`): whole valid sessions, mutated, against a live target.
//! - [`fixtures`]: [`fixtures::TestTarget`] runs Lamina's own target in-process on an
//!   ephemeral loopback port and a temporary data directory.
//! - [`alloc_count`]: the counting global allocator of the allocation tests.
//!
//! # Tests
//!
//! - `src/host/core/tests/`: the host's protocol handling fed from byte vectors (split and
//!   merged C2HData, R2T runs, digests, every violation and its H2CTermReq);
//! - `tests/host.rs`, `tests/perf.rs`, `tests/probe.rs`: the host, `lamina-perf` and
//!   `lamina-probe` end to end against an in-process mock target (`tests/support/mock`), with
//!   injected faults; `tests/perf_alloc.rs`: no heap allocation per I/O in `lamina-perf`'s
//!   engine;
//! - `tests/vm_initiator.rs` (ignored by default): the same binaries against the Linux kernel's
//!   nvmet-tcp in the qemu guest of `vm/` (`vm/guest/initiator-vs-kernel.sh`).
//!
//! # Example
//!
//! ```no_run
//! use bytes::{Bytes, BytesMut};
//! use lamina_integration::host::{ConnectOptions, Controller};
//!
//! # async fn demo() -> Result<(), lamina_integration::host::HostError> {
//! let opts = ConnectOptions::new("nqn.2026-11.io.lamina:default")?;
//! let ctrl = Controller::connect("127.0.0.1:4420".parse().unwrap(), opts).await?;
//! let ns = ctrl.namespace(1).await?;
//! let q = ctrl.io_queue(0)?;
//! q.write(&ns, 0, Bytes::from(vec![0xa5; 4096]), false).await?;
//! let data = q.read(&ns, 0, 1, BytesMut::new()).await?;
//! assert_eq!(&data[..], &[0xa5; 4096][..]);
//! ctrl.shutdown().await?;
//! # Ok(())
//! # }
//! ```

pub mod alloc_count;
pub mod fixtures;
pub mod fuzz;
pub mod host;
pub mod perf;
pub mod probe;
