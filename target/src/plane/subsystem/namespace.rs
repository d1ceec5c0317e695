//! A namespace: an NSID bound to a backend (an exported lvol, or a raw bdev), with the
//! identity the host sees (UUID, NGUID), its lifecycle and the drain that removal waits on.
//!
//! The backend keeps its lvol *export descriptor* open for as long as the namespace exists, so
//! the lvol cannot be deleted underneath it (the lvol store answers Busy); removing the
//! namespace closes its drain, waits for its in-flight commands, then drops the descriptor.
//!
//! Its lifecycle, as a transition table (see `lamina_lvol::lifecycle`): `Attached` (built,
//! backend open, not visible to hosts) → `Live` (published in its subsystem: commands enter)
//! → `Removing` (unpublished, draining) → `Gone` (drained; every command refused; the backend
//! is released with the last handle). A namespace is published once and never comes back:
//! re-adding an NSID builds a new one.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use lamina_lvol::device::BlockDevice;
use lamina_lvol::{LvolDesc, LvolError};
use uuid::Uuid;

use crate::plane::bdev::Bdev;
use crate::plane::stats::NsStats;
use crate::plane::subsystem::visibility::Visibility;
use lamina_lvol::drain::{Drain, DrainRef};
use lamina_lvol::lifecycle::{Illegal, StateCell};

lamina_lvol::lifecycle! {
    /// Where a namespace is in its life.
    pub enum NamespaceState / NamespaceEvent ("namespace") {
        states {
            /// Built over its backend, not published yet.
            Attached,
            /// Published in its subsystem: hosts see it and its commands run.
            Live,
            /// Unpublished; its in-flight commands draining.
            Removing,
            /// Drained: every command is refused.
            Gone,
        }
        events {
            /// Added to its subsystem.
            Publish,
            /// Removed from its subsystem.
            Remove,
            /// Its last in-flight command finished.
            Drained,
        }
        transitions {
            Attached + Publish => Live,
            Live + Remove => Removing,
            Removing + Drained => Gone,
        }
    }
}

/// What a namespace reads and writes.
#[derive(Debug)]
pub enum Backend {
    /// An lvol, opened for export.
    Lvol(LvolDesc),
    /// A raw bdev, claimed by this namespace.
    Bdev(Arc<Bdev>),
}

impl Backend {
    /// Gives the backend up now, whoever still holds the namespace: an lvol stops counting
    /// as exported (so it can be deleted), a bdev loses this namespace's claim. Idempotent.
    pub fn release(&self) {
        match self {
            Self::Lvol(d) => d.close(),
            Self::Bdev(b) => b.release(),
        }
    }

    /// Reads `len` bytes at byte `offset`, appending them to `buf`.
    pub async fn read(&self, offset: u64, len: usize, buf: &mut BytesMut) -> Result<(), LvolError> {
        match self {
            Self::Lvol(d) => d.read(offset, len, buf).await,
            Self::Bdev(b) => Ok(b.device().read(offset, len, buf).await?),
        }
    }

    /// Writes `data` at byte `offset`; with `fua`, durable on return.
    pub async fn write(&self, offset: u64, data: Bytes, fua: bool) -> Result<(), LvolError> {
        match self {
            Self::Lvol(d) => d.write(offset, data, fua).await,
            Self::Bdev(b) => {
                b.device().write(offset, data).await?;
                if fua {
                    b.device().flush().await?;
                }
                Ok(())
            }
        }
    }

    /// [`Backend::read`] done at once when the backend never waits (a RAM or null bdev, an
    /// lvol on one); `None` means it may, and nothing was read.
    pub fn read_now(
        &self,
        offset: u64,
        len: usize,
        buf: &mut BytesMut,
    ) -> Option<Result<(), LvolError>> {
        match self {
            Self::Lvol(d) => d.read_now(offset, len, buf),
            Self::Bdev(b) => b.device().read_now(offset, len, buf).map(|r| Ok(r?)),
        }
    }

    /// [`Backend::write`] without FUA done at once when it can be (see
    /// `LvolDesc::write_now`); `None` means nothing was written and [`Backend::write`] must
    /// run.
    pub fn write_now(&self, offset: u64, data: &Bytes) -> Option<Result<(), LvolError>> {
        match self {
            Self::Lvol(d) => d.write_now(offset, data),
            Self::Bdev(b) => b.device().write_now(offset, data).map(|r| Ok(r?)),
        }
    }

    /// Makes completed writes durable.
    pub async fn flush(&self) -> Result<(), LvolError> {
        match self {
            Self::Lvol(d) => d.flush().await,
            Self::Bdev(b) => Ok(b.device().flush().await?),
        }
    }

    /// Zeroes a range; with `fua`, durable on return.
    pub async fn write_zeroes(&self, offset: u64, len: u64, fua: bool) -> Result<(), LvolError> {
        match self {
            Self::Lvol(d) => d.write_zeroes(offset, len, fua).await,
            Self::Bdev(b) => {
                b.device().write_zeroes(offset, len).await?;
                if fua {
                    b.device().flush().await?;
                }
                Ok(())
            }
        }
    }

    /// Deallocates a range; it reads back as zeros.
    pub async fn deallocate(&self, offset: u64, len: u64) -> Result<(), LvolError> {
        match self {
            Self::Lvol(d) => d.deallocate(offset, len).await,
            Self::Bdev(b) => Ok(b.device().deallocate(offset, len).await?),
        }
    }

    /// Size in bytes now (0 for an lvol deleted under a force-closable descriptor).
    pub fn size_bytes(&self) -> u64 {
        match self {
            Self::Lvol(d) => d.lvol().size_bytes().unwrap_or(0),
            Self::Bdev(b) => b.device().size_bytes(),
        }
    }

    /// Size in bytes as the I/O path sees it: lock-free (the lvol's atomics, the device's
    /// size), and the last size for an lvol gone under its descriptor (its I/O then fails).
    pub fn size_now(&self) -> u64 {
        match self {
            Self::Lvol(d) => d.size_now(),
            Self::Bdev(b) => b.device().size_bytes(),
        }
    }

    /// Whether writes are refused now, lock-free (the I/O path's view of
    /// [`Backend::is_read_only`]).
    pub fn read_only_now(&self) -> bool {
        match self {
            Self::Lvol(d) => d.read_only_now(),
            Self::Bdev(_) => false,
        }
    }

    /// Logical block size in bytes.
    pub fn block_size(&self) -> u32 {
        match self {
            Self::Lvol(d) => d.block_size(),
            Self::Bdev(b) => b.block_size(),
        }
    }

    /// Bytes actually allocated (thin lvols: allocated clusters; everything else: its size).
    pub fn allocated_bytes(&self) -> u64 {
        match self {
            Self::Lvol(d) => {
                let lvol = d.lvol();
                let clusters = lvol.num_allocated_clusters().unwrap_or(0);
                let cluster = lvol.store().cluster_size();
                clusters.saturating_mul(cluster).min(self.size_bytes())
            }
            Self::Bdev(b) => b.device().size_bytes(),
        }
    }

    /// Whether writes are refused (read-only lvols and snapshots).
    pub fn is_read_only(&self) -> bool {
        match self {
            Self::Lvol(d) => d.lvol().is_read_only().unwrap_or(true),
            Self::Bdev(_) => false,
        }
    }

    /// The backend's own UUID (lvol UUID, bdev UUID).
    pub fn uuid(&self) -> Uuid {
        match self {
            Self::Lvol(d) => d.lvol().uuid(),
            Self::Bdev(b) => b.uuid(),
        }
    }
}

/// One namespace of a subsystem.
#[derive(Debug)]
pub struct Namespace {
    nsid: u32,
    bdev_name: String,
    uuid: Uuid,
    nguid: [u8; 16],
    backend: Backend,
    life: StateCell<NamespaceState>,
    commands: Drain,
    stats: NsStats,
    visibility: Visibility,
}

impl Namespace {
    /// A namespace `nsid` over `backend`, known to management as `bdev_name`.
    ///
    /// UUID and NGUID default to the backend's UUID, so they are stable across restarts (the
    /// lvol UUID is persisted) and unique (lvol UUIDs are random).
    pub fn new(
        nsid: u32,
        bdev_name: String,
        backend: Backend,
        uuid: Option<Uuid>,
        nguid: Option<[u8; 16]>,
    ) -> Self {
        let uuid = uuid.unwrap_or_else(|| backend.uuid());
        let nguid = nguid.unwrap_or_else(|| *uuid.as_bytes());
        Self {
            nsid,
            bdev_name,
            uuid,
            nguid,
            backend,
            life: StateCell::new(),
            commands: Drain::new(),
            stats: NsStats::default(),
            visibility: Visibility::default(),
        }
    }

    /// The same namespace visible only to the hosts later listed for it (`no_auto_visible`);
    /// called before it is published.
    #[must_use]
    pub fn masked(mut self) -> Self {
        self.visibility = Visibility::masked();
        self
    }

    /// Which hosts see it.
    pub fn visibility(&self) -> &Visibility {
        &self.visibility
    }

    /// The namespace ID.
    pub fn nsid(&self) -> u32 {
        self.nsid
    }

    /// The name management refers to it by (lvol alias or UUID as given, or bdev name).
    pub fn bdev_name(&self) -> &str {
        &self.bdev_name
    }

    /// The namespace UUID.
    pub fn uuid(&self) -> Uuid {
        self.uuid
    }

    /// The namespace globally unique identifier.
    pub fn nguid(&self) -> [u8; 16] {
        self.nguid
    }

    /// The backend.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Admits one command; `None` once removal started.
    pub fn enter(&self) -> Option<DrainRef<'_>> {
        self.commands.enter()
    }

    /// Where the namespace is in its life.
    pub fn state(&self) -> NamespaceState {
        self.life.get()
    }

    /// Marks it published (its subsystem calls this as it makes it visible).
    pub(super) fn publish(&self) -> Result<(), Illegal<NamespaceState>> {
        self.life.apply(NamespaceEvent::Publish).map(drop)
    }

    /// Refuses new commands and waits for in-flight ones (its subsystem calls this after
    /// unpublishing it).
    pub(super) async fn remove_and_drain(&self) -> Result<(), Illegal<NamespaceState>> {
        self.life.apply(NamespaceEvent::Remove)?;
        self.commands.close_and_wait().await;
        self.life.apply(NamespaceEvent::Drained).map(drop)
    }

    /// Commands in flight now.
    pub fn in_flight(&self) -> u64 {
        self.commands.in_flight()
    }

    /// The namespace's I/O counters.
    pub fn stats(&self) -> &NsStats {
        &self.stats
    }
}
