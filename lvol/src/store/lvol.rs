//! Lvol handles. [`Lvol`] is a refcounted handle for management and properties: it is what
//! lookups and listings return, and it stays safe to use forever (answering `Deleted` once the
//! lvol is gone, and freeing its memory with the last clone). [`LvolDesc`] is an open
//! descriptor for I/O, taken with [`Lvol::open`]; an exported or ordinary open makes delete
//! answer Busy, a force-closable one does not.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use uuid::Uuid;

use super::LvolStore;
use crate::error::LvolError;
use crate::lifecycle::{Lifecycle, LvolEvent, LvolState, OpenKind, Refusal};
use crate::meta::state::{LvolData, LvolShared};
use crate::types::ClearMethod;

/// A refcounted handle to an lvol.
#[derive(Debug, Clone)]
pub struct Lvol {
    pub(crate) core: Arc<LvolCore>,
    // The lvstore's own map holds only `core`, so handles never form a cycle with it.
    pub(crate) store: LvolStore,
}

#[derive(Debug)]
pub(crate) struct LvolCore {
    pub shared: Arc<LvolShared>,
    pub life: Lifecycle,
}

/// Another lvol named in a listing (parent, clone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvolRef {
    /// Its UUID.
    pub uuid: Uuid,
    /// Its name within the lvstore.
    pub name: String,
}

/// Every property of an lvol, read at one instant (SPDK's `bdev_lvol_get_lvols` element plus
/// what the target needs for Identify).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvolInfo {
    /// Lvol UUID (stable across snapshot; use it for NGUID).
    pub uuid: Uuid,
    /// Name within the lvstore.
    pub name: String,
    /// `lvs_name/lvol_name`.
    pub alias: String,
    /// Lvstore name.
    pub lvs_name: String,
    /// Lvstore UUID.
    pub lvs_uuid: Uuid,
    /// Base device of the lvstore.
    pub base_bdev: String,
    /// Size in bytes (whole clusters).
    pub size_bytes: u64,
    /// Size in clusters.
    pub num_clusters: u64,
    /// Block size in bytes.
    pub block_size: u32,
    /// Cluster size in bytes.
    pub cluster_size: u64,
    /// Clusters this lvol owns (NUSE = this times cluster size over block size).
    pub num_allocated_clusters: u64,
    /// Thin-provisioned.
    pub is_thin_provisioned: bool,
    /// Read-only (snapshots are always read-only): report write-protect.
    pub is_read_only: bool,
    /// A snapshot.
    pub is_snapshot: bool,
    /// A clone (has a parent snapshot).
    pub is_clone: bool,
    /// Always false: external-snapshot clones are not supported.
    pub is_esnap_clone: bool,
    /// Always false: a loaded lvstore is complete or refused.
    pub is_degraded: bool,
    /// Clear method used on delete and shrink.
    pub clear_method: ClearMethod,
    /// The parent snapshot, if a clone.
    pub parent: Option<LvolRef>,
    /// The clones, if a snapshot.
    pub clones: Vec<LvolRef>,
}

/// How to open an lvol for I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Exported as a namespace: at most one export at a time; delete answers Busy.
    Export,
    /// An ordinary open: delete answers Busy while it lasts.
    Shared,
    /// Delete may proceed and close it; its I/O then fails with `Deleted`.
    ForceClosable,
}

/// An open lvol: the I/O interface (see the `io` methods). Closing is [`LvolDesc::close`] or
/// dropping it, whichever comes first; I/O through a closed descriptor gets `Closed`.
#[derive(Debug)]
pub struct LvolDesc {
    pub(crate) lvol: Lvol,
    kind: OpenKind,
    closed: AtomicBool,
}

/// Held by every I/O from before its first map lookup to its end; delete waits for these.
/// Owned, so the detached rest of an allocating write can take it over.
#[derive(Debug)]
pub(crate) struct IoGuard(Arc<LvolCore>);

impl Drop for IoGuard {
    fn drop(&mut self) {
        self.0.life.exit_io();
    }
}

pub(crate) fn refusal_error(r: Refusal, what: &str) -> LvolError {
    match r {
        Refusal::Gone(LvolState::Unloading | LvolState::Unloaded) => LvolError::Unloaded,
        Refusal::Gone(_) => LvolError::Deleted,
        Refusal::Busy(why) => LvolError::Busy(format!("{what} ({why})")),
    }
}

impl Lvol {
    pub(crate) fn new(shared: Arc<LvolShared>, store: LvolStore) -> Self {
        let core = Arc::new(LvolCore {
            shared,
            life: Lifecycle::new(),
        });
        Self { core, store }
    }

    /// UUID (always available, even after deletion).
    pub fn uuid(&self) -> Uuid {
        self.core.shared.uuid
    }

    /// The lvstore this lvol lives in.
    pub fn store(&self) -> &LvolStore {
        &self.store
    }

    pub(crate) fn check(&self) -> Result<(), LvolError> {
        match self.core.life.state() {
            LvolState::Live => Ok(()),
            LvolState::Unloading | LvolState::Unloaded => Err(LvolError::Unloaded),
            LvolState::Deleting | LvolState::Deleted => Err(LvolError::Deleted),
        }
    }

    /// Reads the data under one lock after checking the handle is live.
    pub(crate) fn read_data<R>(&self, f: impl FnOnce(&LvolData) -> R) -> Result<R, LvolError> {
        self.check()?;
        Ok(f(&self.core.shared.data.read()))
    }

    /// Every property at one instant; `Deleted` once the lvol is being deleted.
    pub fn info(&self) -> Result<LvolInfo, LvolError> {
        let d = self.read_data(LvolData::clone)?;
        let store = &self.store;
        let lvs_name = store.name();
        let cs = store.cluster_size();
        let parent = d.parent.as_ref().map(|p| LvolRef {
            uuid: p.uuid,
            name: p.data.read().name.clone(),
        });
        let mut clones: Vec<LvolRef> = d
            .children
            .iter()
            .filter_map(|u| store.0.lvol_by_uuid(u))
            .map(|c| LvolRef {
                uuid: c.uuid(),
                name: c.core.shared.data.read().name.clone(),
            })
            .collect();
        clones.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(LvolInfo {
            uuid: self.uuid(),
            alias: format!("{lvs_name}/{}", d.name),
            name: d.name.clone(),
            lvs_name,
            lvs_uuid: store.uuid(),
            base_bdev: store.base_bdev().to_owned(),
            size_bytes: u64::from(d.size_clusters()) * cs,
            num_clusters: u64::from(d.size_clusters()),
            block_size: store.block_size(),
            cluster_size: cs,
            num_allocated_clusters: u64::from(d.allocated),
            is_thin_provisioned: d.is_thin(),
            is_read_only: d.is_read_only(),
            is_snapshot: d.is_snapshot(),
            is_clone: d.parent.is_some(),
            is_esnap_clone: false,
            is_degraded: false,
            clear_method: d.clear,
            parent,
            clones,
        })
    }

    /// Its ancestors, nearest first (a listing's rule for names it does not hold).
    pub(crate) fn ancestors(&self) -> Vec<LvolRef> {
        let mut out = Vec::new();
        let mut next = self.core.shared.data.read().parent.clone();
        while let Some(p) = next.take() {
            let d = p.data.read();
            out.push(LvolRef {
                uuid: p.uuid,
                name: d.name.clone(),
            });
            next.clone_from(&d.parent);
        }
        out
    }

    /// Name within the lvstore.
    pub fn name(&self) -> Result<String, LvolError> {
        self.read_data(|d| d.name.clone())
    }

    /// Size in bytes.
    pub fn size_bytes(&self) -> Result<u64, LvolError> {
        let cs = self.store.cluster_size();
        self.read_data(|d| u64::from(d.size_clusters()) * cs)
    }

    /// Block size in bytes.
    pub fn block_size(&self) -> u32 {
        self.store.block_size()
    }

    /// Clusters owned.
    pub fn num_allocated_clusters(&self) -> Result<u64, LvolError> {
        self.read_data(|d| u64::from(d.allocated))
    }

    /// Read-only (set read-only, or a snapshot).
    pub fn is_read_only(&self) -> Result<bool, LvolError> {
        self.read_data(LvolData::is_read_only)
    }

    /// Whether the lvol is exported now.
    pub fn is_exported(&self) -> bool {
        self.core.life.is_exported()
    }

    /// Open descriptors now.
    pub fn open_count(&self) -> u64 {
        self.core.life.open_count()
    }

    /// Opens the lvol for I/O. `Busy` if `mode` is `Export` and it is already exported.
    pub fn open(&self, mode: OpenMode) -> Result<LvolDesc, LvolError> {
        let kind = match mode {
            OpenMode::Export => OpenKind::Export,
            OpenMode::Shared => OpenKind::Blocking,
            OpenMode::ForceClosable => OpenKind::Closable,
        };
        self.core
            .life
            .open(kind)
            .map_err(|r| refusal_error(r, "lvol"))?;
        // Registered first, checked second: an lvstore unload checks opens after marking
        // itself closing, so one of the two always sees the other.
        if let Err(e) = self.store.0.check_live() {
            self.core.life.close(kind);
            return Err(e);
        }
        Ok(LvolDesc {
            lvol: self.clone(),
            kind,
            closed: AtomicBool::new(false),
        })
    }

    /// Takes the per-I/O guard.
    pub(crate) fn enter_io(&self) -> Result<IoGuard, LvolError> {
        if self.core.life.enter_io() {
            Ok(IoGuard(Arc::clone(&self.core)))
        } else {
            Err(self.check().err().unwrap_or(LvolError::Deleted))
        }
    }

    /// Moves the lifecycle through its table (see `lifecycle::states`). The callers only send
    /// events their own earlier transition made legal, so a refusal is a bug: logged with the
    /// lvol and the states, never a panic, and the state is left as it was.
    pub(crate) fn transition(&self, event: LvolEvent) -> Option<LvolState> {
        match self.core.life.apply(event) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(lvol = %self.uuid(), error = %e, "illegal lvol transition");
                None
            }
        }
    }

    /// Waits until no I/O is in flight (after the I/O gate was closed).
    pub(crate) async fn drain(&self) {
        self.core.life.drain().await;
    }
}

impl LvolDesc {
    /// The lvol this descriptor is open on.
    pub fn lvol(&self) -> &Lvol {
        &self.lvol
    }

    /// Closes the descriptor now, while other owners may still hold it (a namespace that was
    /// removed but is still referenced by a listing): the lvol stops counting it as open or
    /// exported at once, and later I/O through it gets `Closed`. Idempotent; dropping closes
    /// it if this was not called.
    pub fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.lvol.core.life.close(self.kind);
        }
    }

    /// Takes the per-I/O guard, refusing once the descriptor is closed.
    pub(crate) fn enter_io(&self) -> Result<IoGuard, LvolError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(LvolError::Closed);
        }
        self.lvol.enter_io()
    }
}

impl Drop for LvolDesc {
    fn drop(&mut self) {
        self.close();
    }
}
