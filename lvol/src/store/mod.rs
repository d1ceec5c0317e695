//! One lvstore at run time: its metadata store, its published lvols (a `DashMap` by UUID and a
//! unique name index, both private) and the store-level operations: create, load, grow, unload.
//! Lvol operations live in the submodules: [`lvol`] (handles, properties, open), [`io`] (the
//! data path), [`manage`] (create, resize, rename, snapshot, clone), [`copy`] (inflate,
//! decouple), [`delete`] (the deletion state machine).

pub(crate) mod copy;
pub(crate) mod delete;
pub(crate) mod io;
pub(crate) mod lvol;
pub(crate) mod manage;

use std::sync::Arc;

use dashmap::DashMap;
use uuid::Uuid;

use crate::device::{BlockDevice, Device};
use crate::error::LvolError;
use crate::format::superblock::{DEFAULT_CLUSTER_SIZE, Sizing, Slot, Superblock};
use crate::lifecycle::{LvolEvent, LvolState, Refusal, StateCell, StoreEvent, StoreState};
use crate::meta::journal::MetaStore;
use crate::meta::open;
use crate::meta::state::LvolShared;
use crate::progress::Progress;
use crate::types::ClearMethod;

use lvol::LvolCore;
pub use lvol::{Lvol, LvolDesc, LvolInfo, OpenMode};
pub use manage::LvolOptions;

/// Options for creating an lvstore.
#[derive(Debug, Clone)]
pub struct LvstoreOptions {
    /// Cluster size in bytes: a power of two from 1 MiB to 1 GiB (default 4 MiB).
    pub cluster_size: u64,
    /// Block size (512 or 4096); default: the device's block size.
    pub block_size: Option<u32>,
    /// How the data region is cleared at creation (default unmap).
    pub clear_method: ClearMethod,
    /// Most lvols (snapshots included) the metadata has room for; default scales with size.
    pub max_lvols: Option<u32>,
    /// Most clusters the lvstore can grow to; default 4x the current count.
    pub max_clusters: Option<u64>,
    /// Size of the metadata journal ring in bytes (64 KiB to 1 GiB); default: 1/1024 of the
    /// device, from 1 MiB to 64 MiB. A full journal costs a checkpoint write.
    pub journal_bytes: Option<u64>,
    /// Create even if the device holds an lvstore (or a damaged one): its data is lost.
    pub overwrite: bool,
}

impl Default for LvstoreOptions {
    fn default() -> Self {
        Self {
            cluster_size: DEFAULT_CLUSTER_SIZE,
            block_size: None,
            clear_method: ClearMethod::Unmap,
            max_lvols: None,
            max_clusters: None,
            journal_bytes: None,
            overwrite: false,
        }
    }
}

/// A snapshot of an lvstore's properties (SPDK's `bdev_lvol_get_lvstores` element).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvstoreInfo {
    /// Lvstore UUID.
    pub uuid: Uuid,
    /// Lvstore name.
    pub name: String,
    /// Name of the base device it sits on.
    pub base_bdev: String,
    /// Clusters available to lvols (the metadata region excluded).
    pub total_data_clusters: u64,
    /// Clusters free now.
    pub free_clusters: u64,
    /// Block size in bytes.
    pub block_size: u32,
    /// Cluster size in bytes.
    pub cluster_size: u64,
    /// Lvols (snapshots included).
    pub lvol_count: usize,
}

/// A handle to an lvstore. Cheap to clone; stays valid (answering `Unloaded`) after unload.
#[derive(Debug, Clone)]
pub struct LvolStore(pub(crate) Arc<StoreCore>);

#[derive(Debug)]
pub(crate) struct StoreCore {
    pub md: Arc<MetaStore>,
    pub base_bdev: String,
    pub block_size: u32,
    pub cluster_size: u64,
    pub(crate) state: StateCell<StoreState>,
    lvols: DashMap<Uuid, Arc<LvolCore>>,
    names: DashMap<String, Uuid>,
    /// Test hook: the next delete's metadata operation is refused, as a full journal would.
    #[cfg(test)]
    pub refuse_next_removal: std::sync::atomic::AtomicBool,
}

impl StoreCore {
    fn new(md: MetaStore, base_bdev: &str) -> Self {
        let sb = md.superblock();
        Self {
            md: Arc::new(md),
            base_bdev: base_bdev.to_owned(),
            block_size: sb.block_size,
            cluster_size: sb.cluster_size,
            state: StateCell::new(),
            lvols: DashMap::new(),
            names: DashMap::new(),
            #[cfg(test)]
            refuse_next_removal: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub(crate) fn check_live(&self) -> Result<(), LvolError> {
        if self.state.get() == StoreState::Live {
            Ok(())
        } else {
            Err(LvolError::Unloaded)
        }
    }

    /// Publishes a new lvol in lookups and listings.
    pub(crate) fn publish(&self, lvol: &Lvol, name: &str) {
        self.lvols.insert(lvol.uuid(), Arc::clone(&lvol.core));
        self.names.insert(name.to_owned(), lvol.uuid());
    }

    /// Step (a) of deletion: gone from lookups and listings.
    pub(crate) fn unpublish(&self, uuid: &Uuid, name: &str) {
        self.names.remove_if(name, |_, u| u == uuid);
        self.lvols.remove(uuid);
    }

    pub(crate) fn rename_index(&self, uuid: &Uuid, old: &str, new: &str) {
        self.names.remove_if(old, |_, u| u == uuid);
        self.names.insert(new.to_owned(), *uuid);
    }

    /// The published lvol with this UUID.
    pub(crate) fn lvol_by_uuid(self: &Arc<Self>, uuid: &Uuid) -> Option<Lvol> {
        let core = Arc::clone(self.lvols.get(uuid)?.value());
        Some(Lvol {
            core,
            store: LvolStore(Arc::clone(self)),
        })
    }

    /// The published lvol with this name.
    pub(crate) fn lvol_by_name(self: &Arc<Self>, name: &str) -> Option<Lvol> {
        let uuid = *self.names.get(name)?.value();
        self.lvol_by_uuid(&uuid)
    }

    /// A snapshot of every published lvol handle (no map guard survives this call).
    pub(crate) fn lvol_handles(self: &Arc<Self>) -> Vec<Lvol> {
        let cores: Vec<Arc<LvolCore>> = self.lvols.iter().map(|r| Arc::clone(r.value())).collect();
        cores
            .into_iter()
            .map(|core| Lvol {
                core,
                store: LvolStore(Arc::clone(self)),
            })
            .collect()
    }

    /// Wraps a new lvol's shared state in a handle.
    pub(crate) fn handle(self: &Arc<Self>, shared: Arc<LvolShared>) -> Lvol {
        Lvol::new(shared, LvolStore(Arc::clone(self)))
    }

    /// Clears released clusters with `method`, reporting progress per cluster.
    pub(crate) async fn clear_clusters(
        &self,
        clusters: &[u32],
        method: ClearMethod,
        progress: &Progress,
    ) -> Result<(), LvolError> {
        let cs = self.cluster_size;
        for run in contiguous(clusters) {
            let (first, n) = run;
            let (offset, len) = (u64::from(first) * cs, u64::from(n) * cs);
            match method {
                ClearMethod::None => {}
                ClearMethod::Unmap => self.md.device.deallocate(offset, len).await?,
                ClearMethod::WriteZeroes => self.md.device.write_zeroes(offset, len).await?,
            }
            progress.advance(u64::from(n));
        }
        Ok(())
    }
}

/// Groups cluster numbers into `(first, count)` runs of consecutive clusters.
pub(crate) fn contiguous(clusters: &[u32]) -> Vec<(u32, u32)> {
    let mut sorted = clusters.to_vec();
    sorted.sort_unstable();
    let mut out: Vec<(u32, u32)> = Vec::new();
    for c in sorted {
        match out.last_mut() {
            Some((first, n)) if first.checked_add(*n) == Some(c) => *n += 1,
            _ => out.push((c, 1)),
        }
    }
    out
}

impl LvolStore {
    /// Creates a new lvstore on `device`, refusing a device that holds one unless
    /// `opts.overwrite`.
    pub(crate) async fn create(
        device: Device,
        base_bdev: &str,
        name: &str,
        opts: &LvstoreOptions,
    ) -> Result<Self, LvolError> {
        if !opts.overwrite {
            match open::read_slots(&device).await? {
                [Slot::Empty, Slot::Empty] => {}
                slots => {
                    let what = match superblock_of(&slots) {
                        Some(sb) => format!("lvstore {} ({})", sb.name, sb.uuid),
                        None => "a damaged lvstore".to_owned(),
                    };
                    return Err(LvolError::Exists(format!(
                        "device {base_bdev} holds {what}; load or destroy it, or ask to overwrite"
                    )));
                }
            }
        }
        let sizing = Sizing {
            device_bytes: device.size_bytes(),
            device_block: device.block_size(),
            cluster_size: opts.cluster_size,
            block_size: opts.block_size.unwrap_or_else(|| device.block_size()),
            max_clusters: opts.max_clusters,
            max_lvols: opts.max_lvols,
            journal_bytes: opts.journal_bytes,
        };
        let sb = Superblock::plan(Uuid::new_v4(), name, sizing)?;
        let md = open::format(device, sb, opts.clear_method).await?;
        Ok(Self(Arc::new(StoreCore::new(md, base_bdev))))
    }

    /// Loads the lvstore on `device` with all its lvols.
    pub(crate) async fn load(device: Device, base_bdev: &str) -> Result<Self, LvolError> {
        let md = open::load(device).await?;
        let core = Arc::new(StoreCore::new(md, base_bdev));
        let shared: Vec<Arc<LvolShared>> = core.md.meta.lock().state.lvols().cloned().collect();
        for s in shared {
            let name = s.data.read().name.clone();
            let lvol = core.handle(s);
            core.publish(&lvol, &name);
        }
        Ok(Self(core))
    }

    /// Lvstore UUID.
    pub fn uuid(&self) -> Uuid {
        self.0.md.uuid
    }

    /// Lvstore name.
    pub fn name(&self) -> String {
        self.0.md.superblock().name
    }

    /// Name of the base device.
    pub fn base_bdev(&self) -> &str {
        &self.0.base_bdev
    }

    /// Cluster size in bytes.
    pub fn cluster_size(&self) -> u64 {
        self.0.cluster_size
    }

    /// Block size in bytes.
    pub fn block_size(&self) -> u32 {
        self.0.block_size
    }

    /// The base device.
    pub fn device(&self) -> &Device {
        &self.0.md.device
    }

    /// Whether a metadata write failed: the lvstore then refuses changes until reloaded.
    pub fn is_failed(&self) -> bool {
        self.0.md.is_failed()
    }

    /// Whether the lvstore is loaded (not unloaded or destroyed).
    pub fn is_loaded(&self) -> bool {
        self.0.check_live().is_ok()
    }

    /// Current properties.
    pub fn info(&self) -> Result<LvstoreInfo, LvolError> {
        self.0.check_live()?;
        let sb = self.0.md.superblock();
        let m = self.0.md.meta.lock();
        Ok(LvstoreInfo {
            uuid: sb.uuid,
            name: sb.name,
            base_bdev: self.0.base_bdev.clone(),
            total_data_clusters: u64::from(m.state.data_clusters()),
            free_clusters: u64::from(m.alloc.free_clusters(&m.state))
                + m.alloc.parked_clusters() as u64,
            block_size: sb.block_size,
            cluster_size: sb.cluster_size,
            lvol_count: m.state.lvol_count(),
        })
    }

    /// The lvol named `name` in this lvstore.
    pub fn lvol(&self, name: &str) -> Result<Lvol, LvolError> {
        self.0.check_live()?;
        self.0
            .lvol_by_name(name)
            .ok_or_else(|| LvolError::NotFound(format!("lvol {}/{name}", self.name())))
    }

    /// The lvol with UUID `uuid` in this lvstore.
    pub fn lvol_by_uuid(&self, uuid: &Uuid) -> Result<Lvol, LvolError> {
        self.0.check_live()?;
        self.0
            .lvol_by_uuid(uuid)
            .ok_or_else(|| LvolError::NotFound(format!("lvol {uuid}")))
    }

    /// Handles of every lvol (a snapshot: each stays valid, answering `Deleted` once deleted).
    pub fn lvols(&self) -> Vec<Lvol> {
        if self.0.check_live().is_err() {
            return Vec::new();
        }
        self.0.lvol_handles()
    }

    /// Properties of every lvol, as one view: lvols deleted while listing are left out, and
    /// every parent and clone named is in the same listing.
    ///
    /// The view is taken under the metadata lock, so no lvol is published, unpublished or
    /// re-parented meanwhile. One window stays: deleting a snapshot with one clone unpublishes
    /// the snapshot, then merges it into the clone once the clone's writes have drained. A
    /// listing in between does not hold the snapshot; by rule it names as the clone's parent
    /// its nearest listed ancestor (what the merge will make it), and each lvol's clones are
    /// the listed lvols whose parent it is so named.
    pub fn list_lvols(&self) -> Vec<LvolInfo> {
        let (mut out, chains) = {
            let _m = self.0.md.meta.lock();
            let mut out = Vec::new();
            let mut chains = Vec::new();
            for l in self.lvols() {
                if let Ok(info) = l.info() {
                    chains.push(l.ancestors());
                    out.push(info);
                }
            }
            (out, chains)
        };
        let listed: std::collections::HashMap<Uuid, String> =
            out.iter().map(|i| (i.uuid, i.name.clone())).collect();
        for (info, chain) in out.iter_mut().zip(chains) {
            info.parent = chain.into_iter().find(|a| listed.contains_key(&a.uuid));
            info.is_clone = info.parent.is_some();
        }
        // One pass groups the clones by parent (a scrape lists every lvol: no n² scan).
        let mut clones: std::collections::HashMap<Uuid, Vec<crate::LvolRef>> =
            std::collections::HashMap::new();
        for i in &out {
            if let Some(p) = &i.parent {
                clones.entry(p.uuid).or_default().push(crate::LvolRef {
                    uuid: i.uuid,
                    name: i.name.clone(),
                });
            }
        }
        for info in &mut out {
            info.clones = clones.remove(&info.uuid).unwrap_or_default();
            info.clones.sort_by(|a, b| a.name.cmp(&b.name));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Makes every completed write and metadata change durable.
    pub async fn flush(&self) -> Result<(), LvolError> {
        self.0.md.flush().await
    }

    /// Picks up a device that grew, adding its new clusters.
    pub async fn grow(&self) -> Result<LvstoreInfo, LvolError> {
        let this = self.clone();
        crate::detach::detached(&self.0.md.tasks, async move { this.grow_now().await }).await
    }

    async fn grow_now(&self) -> Result<LvstoreInfo, LvolError> {
        self.0.check_live()?;
        let size = self.0.md.device.refresh_size()?;
        let sb = self.0.md.superblock();
        let total = size / sb.cluster_size;
        if total < sb.total_clusters {
            return Err(LvolError::invalid("the device is smaller than the lvstore"));
        }
        if total > sb.max_clusters {
            return Err(LvolError::invalid(format!(
                "the lvstore metadata was sized for {} clusters; the device now has {total}",
                sb.max_clusters
            )));
        }
        if total > sb.total_clusters {
            let total32 =
                u32::try_from(total).map_err(|_| LvolError::invalid("too many clusters"))?;
            self.0
                .md
                .update_superblock(move |s| s.total_clusters = total)
                .await?;
            self.0.md.meta.lock().state.grow(total32);
        }
        self.info()
    }

    /// Renames the lvstore (the registry keeps names unique).
    pub(crate) async fn rename(&self, name: &str) -> Result<(), LvolError> {
        crate::types::check_name("lvstore", name)?;
        self.0.check_live()?;
        let name = name.to_owned();
        self.0.md.update_superblock(|s| s.name = name).await?;
        Ok(())
    }

    /// Closes every lvol and the lvstore (`Checkpointed` to unload, `Wiped` to destroy):
    /// `Busy` if an lvol is exported or open. Runs in a task of its own (see
    /// [`crate::detach`]).
    pub(crate) async fn close(&self, end: StoreEvent) -> Result<(), LvolError> {
        let this = self.clone();
        crate::detach::uncounted(async move { this.close_now(end).await }).await
    }

    async fn close_now(&self, end: StoreEvent) -> Result<(), LvolError> {
        let core = &self.0;
        // A second close, or a close of a closed store, is refused by the table.
        core.state
            .apply(StoreEvent::Close)
            .map_err(|_| LvolError::Unloaded)?;
        // From here on opens fail (they check the store after registering), so every open
        // that can block the close is visible now.
        let lvols = core.lvol_handles();
        if let Some(busy) = lvols.iter().find(|l| l.core.life.check_closable().is_err()) {
            if let Err(e) = core.state.apply(StoreEvent::CallOff) {
                tracing::error!(error = %e, "illegal lvstore transition");
            }
            return Err(LvolError::Busy(format!(
                "lvol {} (it is exported or open)",
                busy.uuid()
            )));
        }
        for l in &lvols {
            Self::begin_unload(l).await;
        }
        // Deletes still clearing, thick creates still zeroing, copies, commits: all finish
        // before the metadata is checkpointed or wiped.
        core.md.tasks.close_and_wait().await;
        // A delete that was called off meanwhile published its lvol again, live (it was not
        // among the handles above, which were taken while it was unpublished): close it too.
        let lvols = core.lvol_handles();
        for l in &lvols {
            if l.core.life.state() == LvolState::Live {
                Self::begin_unload(l).await;
            }
        }
        let result = match end {
            StoreEvent::Wiped => core.md.wipe().await,
            _ => core.md.checkpoint().await,
        };
        for l in &lvols {
            if l.core.life.state() == LvolState::Unloading {
                l.transition(LvolEvent::Closed);
            }
        }
        core.lvols.clear();
        core.names.clear();
        if let Err(e) = core.state.apply(end) {
            tracing::error!(error = %e, "illegal lvstore transition");
        }
        result
    }

    /// Begins unloading one lvol and drains its I/O. An lvol being deleted is left to its
    /// delete, which is detached work the close waits for.
    async fn begin_unload(l: &Lvol) {
        loop {
            match l.core.life.begin(LvolEvent::Unload) {
                Ok(()) => {
                    l.drain().await;
                    return;
                }
                // An open that started after the store began closing holds its registration
                // only until it sees the store closing: it cannot last.
                Err(Refusal::Busy(_)) => tokio::task::yield_now().await,
                Err(Refusal::Gone(_)) => return,
            }
        }
    }
}

#[cfg(test)]
impl LvolStore {
    /// Test helper: waits for detached work, flushes, returns safe quarantined clusters to the
    /// pool and checks the lvstore. A store that leaks nothing reports no reserved and no
    /// quarantined clusters afterwards.
    pub(crate) async fn settle(&self) -> crate::CheckReport {
        self.0.md.tasks.wait_idle().await;
        self.0.md.flush().await.expect("flush while settling");
        self.0.md.reclaim();
        self.check().await.expect("check while settling")
    }
}

fn superblock_of(slots: &[Slot; 2]) -> Option<&Superblock> {
    slots.iter().find_map(|s| match s {
        Slot::Valid(sb) => Some(sb),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_clusters() {
        assert_eq!(
            contiguous(&[5, 3, 4, 9, 10, 1]),
            vec![(1, 1), (3, 3), (9, 2)]
        );
        assert!(contiguous(&[]).is_empty());
    }
}
