//! Lamina's volume store.
//!
//! An lvol store (lvstore) carves a block device into clusters and hands them to logical volumes
//! (lvols): thick or thin-provisioned, with snapshots and clones. This crate owns the on-disk
//! format, cluster allocation, crash-safe metadata and the concurrent registry through which
//! every caller reaches an lvol. It knows nothing of NVMe.
//!
//! # Using it
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use lamina_lvol::device::RamDevice;
//! use lamina_lvol::{LvolOptions, LvstoreOptions, OpenMode, Progress, Registry};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let registry = Registry::new();
//! let ram = RamDevice::new(256 << 20, 512)?; // bdev_malloc_create
//! let lvs = registry.create_lvstore(ram.into(), "Malloc0", "lvs0", &LvstoreOptions::default()).await?;
//! let thin = LvolOptions { thin: true, ..LvolOptions::default() };
//! let vol = lvs.create_lvol("vol0", 64 << 20, &thin).await?;
//!
//! // The target exports it: while this descriptor lives, delete answers Busy.
//! let ns = registry.lvol("lvs0/vol0")?.open(OpenMode::Export)?;
//! ns.write(4096, Bytes::from(vec![7u8; 4096]), /* fua */ false).await?;
//! ns.flush().await?;
//! let mut buf = BytesMut::with_capacity(4096);
//! ns.read(4096, 4096, &mut buf).await?;
//! assert_eq!(&buf[..], &[7u8; 4096][..]);
//!
//! let snap = vol.snapshot("vol0-snap").await?; // vol0 keeps its UUID and stays exported
//! let info = vol.info()?;
//! assert!(info.is_clone && info.parent.unwrap().uuid == snap.uuid());
//! drop(ns);
//! vol.delete(&Progress::new()).await?; // the snapshot's only clone...
//! snap.delete(&Progress::new()).await?; // ...so the snapshot can go too
//! # Ok::<(), lamina_lvol::LvolError>(())
//! # }).unwrap();
//! ```
//!
//! # Layout
//!
//! * [`device`]: the [`device::BlockDevice`] trait and the [`device::Device`] enum (file or
//!   block device, RAM, null, and the fault injector behind the `test-utils` feature).
//! * `format`: the on-disk structures (superblock, metadata blocks, records); see
//!   `lvol/FORMAT.md`.
//! * `meta`: the metadata state, the allocator, checkpoints and the journal with group commit.
//! * `store`: one lvstore at run time, lvol handles, the I/O path, management operations and
//!   the deletion state machine.
//! * `plane`: per-lvol data-plane coordination (the write gate and first-write latches), held
//!   in the lvol's shared state and used by the I/O path.
//! * `registry`: [`Registry`], every lvstore by UUID and unique name.
//! * [`lifecycle`](mod@lifecycle), `grace`: the state machines of lvols and lvstores as transition tables
//!   (and the [`lifecycle!`](macro@lifecycle) macro the target uses for namespaces and controllers), the lvol
//!   lifecycle core (open counts, per-I/O drain), and the grace epochs that keep freed
//!   clusters from being reused under an in-flight I/O. The invariants they keep, the code
//!   that enforces each and the test that checks it: `lvol/LIFECYCLE.md`.
//! * `drain`, `detach`: the drain primitive, and the rule that every state change runs to
//!   completion in a task of its own (which futures may be dropped, and what that costs).
//! * `check`: the online and offline consistency checks and the offline repair.
//!
//! # Concurrency rules
//!
//! Callers only hold refcounted handles ([`Lvol`], [`LvolStore`], [`LvolDesc`]); the `DashMap`s
//! are private and no guard of theirs crosses an `.await`. A listing snapshots handles, then
//! reads each lvol's properties under that lvol's own lock, so it sees each lvol complete, or
//! (once deletion started) not at all. Deletion unpublishes, refuses with `Busy` while the lvol
//! is exported or open, drains in-flight I/O, commits, clears; old handles get `Deleted`.
//!
//! An open [`LvolDesc`] is the I/O path's export descriptor: a read or write enters the
//! lvol's drain (one atomic), checks alignment, range and read-only once from atomics that
//! every change to the lvol's size or flags updates before it releases the lvol's lock, then
//! reads each cluster's map entry under a shared read of that lock inside a grace epoch. A
//! write also holds the write gate shared. No mutex is taken for an I/O into allocated
//! clusters; a first write into a cluster allocates under the metadata lock.
//!
//! # Model checks
//!
//! The lifecycle, drain and grace-period cores are checked with loom:
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=build/loom cargo test -p lamina-lvol --release --lib loom`
//! (a separate target directory avoids rebuilding the normal one; about a minute to build, seconds
//! to run). Without `--cfg loom` those tests are compiled out; `cargo test` runs the same
//! scenarios on real threads (the seed scenario) instead.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod check;
mod detach;
pub mod device;
pub mod drain;
mod error;
mod format;
mod grace;
pub mod lifecycle;
mod meta;
mod plane;
mod progress;
mod registry;
mod store;
mod sync;
mod types;

pub use check::{CheckReport, RepairReport, check_device, metadata_bytes, repair_device};
pub use error::{DeviceError, DeviceOp, LvolError};
pub use progress::Progress;
pub use registry::Registry;
pub use store::lvol::LvolRef;
pub use store::{
    Lvol, LvolDesc, LvolInfo, LvolOptions, LvolStore, LvstoreInfo, LvstoreOptions, OpenMode,
};
pub use types::{ClearMethod, MAX_NAME_BYTES};

#[cfg(test)]
mod tests;
