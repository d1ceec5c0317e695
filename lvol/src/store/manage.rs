//! Lvol management: create (thin, thick, clone), snapshot, resize, rename, set read-only.
//! Each is one metadata operation applied under the metadata lock (where the lookup indexes are
//! updated too) and committed before returning. Thick clusters are zeroed before their lvol
//! exists, so a thick lvol never shows data of a deleted one. Every public operation runs in a
//! detached task (see [`crate::detach`]): a caller that stops waiting cannot leave zeroed
//! clusters reserved, a name held, or an applied operation uncommitted.

use std::sync::Arc;

use uuid::Uuid;

use super::lvol::{Lvol, refusal_error};
use super::{LvolStore, StoreCore, contiguous};
use crate::detach::detached;
use crate::device::BlockDevice;
use crate::error::LvolError;
use crate::format::record::{FLAG_THIN, LvolRecord, Op, UNMAPPED, ZERO};
use crate::format::superblock::MAX_TOTAL_CLUSTERS;
use crate::lifecycle::LvolState;
use crate::meta::journal::Meta;
use crate::meta::state::LvolData;
use crate::progress::Progress;
use crate::types::{ClearMethod, check_name};

/// Options for a new lvol.
#[derive(Debug, Clone, Default)]
pub struct LvolOptions {
    /// Allocate clusters on first write instead of now.
    pub thin: bool,
    /// How its clusters are cleared on delete and shrink (default unmap).
    pub clear_method: ClearMethod,
    /// Progress of zeroing a thick lvol's clusters.
    pub progress: Progress,
}

/// A name held for a create in progress; released on drop.
struct NameHold<'a> {
    store: &'a StoreCore,
    name: String,
}

impl Drop for NameHold<'_> {
    fn drop(&mut self) {
        self.store.md.meta.lock().reserved_names.remove(&self.name);
    }
}

impl StoreCore {
    fn hold_name(&self, name: &str) -> Result<NameHold<'_>, LvolError> {
        check_name("lvol", name)?;
        let mut m = self.md.meta.lock();
        if m.state.name_taken(name) || !m.reserved_names.insert(name.to_owned()) {
            return Err(LvolError::Exists(format!("lvol {name}")));
        }
        Ok(NameHold {
            store: self,
            name: name.to_owned(),
        })
    }

    fn clusters_for(&self, size_bytes: u64) -> Result<u32, LvolError> {
        if size_bytes == 0 {
            return Err(LvolError::invalid("size must be greater than zero"));
        }
        let n = size_bytes.div_ceil(self.cluster_size);
        if n > MAX_TOTAL_CLUSTERS {
            return Err(LvolError::invalid(format!(
                "size {size_bytes} is too large"
            )));
        }
        u32::try_from(n).map_err(|_| LvolError::invalid("size is too large"))
    }

    /// Reserves and zeroes `n` clusters for a thick lvol.
    pub(crate) async fn reserve_zeroed(
        &self,
        n: u32,
        progress: &Progress,
    ) -> Result<Vec<u32>, LvolError> {
        let clusters = self.reserve(n).await?;
        progress.start(u64::from(n));
        let cs = self.cluster_size;
        for (first, count) in contiguous(&clusters) {
            let r = self
                .md
                .device
                .write_zeroes(u64::from(first) * cs, u64::from(count) * cs)
                .await;
            if let Err(e) = r {
                self.md.meta.lock().alloc.release(&clusters);
                return Err(e.into());
            }
            progress.advance(u64::from(count));
        }
        Ok(clusters)
    }

    /// Publishes the lvol an operation created (under the metadata lock).
    fn publish_created(
        self: &Arc<Self>,
        m: &mut Meta,
        applied: &crate::meta::state::Applied,
    ) -> Option<Lvol> {
        let shared = applied.created.clone()?;
        let name = shared.data.read().name.clone();
        m.reserved_names.remove(&name);
        let lvol = self.handle(shared);
        self.publish(&lvol, &name);
        Some(lvol)
    }
}

fn created(lvol: Option<Lvol>) -> Result<Lvol, LvolError> {
    lvol.ok_or_else(|| LvolError::corrupt("operation did not create an lvol"))
}

impl LvolStore {
    /// Creates an lvol of `size_bytes` (rounded up to whole clusters).
    pub async fn create_lvol(
        &self,
        name: &str,
        size_bytes: u64,
        opts: &LvolOptions,
    ) -> Result<Lvol, LvolError> {
        let (this, name, opts) = (self.clone(), name.to_owned(), opts.clone());
        detached(&self.0.md.tasks, async move {
            this.create_lvol_now(&name, size_bytes, &opts).await
        })
        .await
    }

    async fn create_lvol_now(
        &self,
        name: &str,
        size_bytes: u64,
        opts: &LvolOptions,
    ) -> Result<Lvol, LvolError> {
        let core = &self.0;
        core.check_live()?;
        let hold = core.hold_name(name)?;
        let n = core.clusters_for(size_bytes)?;
        let (entries, reserved) = if opts.thin {
            (vec![UNMAPPED; usize::try_from(n).unwrap_or(0)], Vec::new())
        } else {
            let c = core.reserve_zeroed(n, &opts.progress).await?;
            (c.clone(), c)
        };
        let rec = LvolRecord {
            uuid: Uuid::new_v4(),
            name: name.to_owned(),
            flags: if opts.thin { FLAG_THIN } else { 0 },
            clear: opts.clear_method,
            parent: None,
            entries,
        };
        let r = core.md.apply_with(&Op::Create(rec), false, |m, a| {
            m.alloc.release(&reserved);
            core.publish_created(m, a)
        });
        drop(hold);
        let c = match r {
            Ok(c) => c,
            Err(e) => {
                core.md.meta.lock().alloc.release(&reserved);
                return Err(e);
            }
        };
        core.md.commit(c.seq).await?;
        created(c.out)
    }
}

fn live_check(m: &Meta, lvol: &Lvol) -> Result<(), LvolError> {
    // Deletion moves to Deleting under this same lock, so this cannot race it.
    let _ = m;
    match lvol.core.life.state() {
        LvolState::Live => Ok(()),
        s => Err(refusal_error(crate::lifecycle::Refusal::Gone(s), "lvol")),
    }
}

impl Lvol {
    fn core(&self) -> &Arc<StoreCore> {
        &self.store.0
    }

    /// Creates a thin clone of this snapshot (or read-only lvol) named `name`.
    pub async fn create_clone(&self, name: &str) -> Result<Lvol, LvolError> {
        let (this, name) = (self.clone(), name.to_owned());
        detached(&self.core().md.tasks, async move {
            this.create_clone_now(&name).await
        })
        .await
    }

    async fn create_clone_now(&self, name: &str) -> Result<Lvol, LvolError> {
        self.check()?;
        let core = self.core();
        core.check_live()?;
        let _hold = core.hold_name(name)?;
        let (read_only, n, clear) =
            self.read_data(|d| (d.is_read_only(), d.entries.len(), d.clear))?;
        if !read_only {
            return Err(LvolError::invalid(
                "clone needs a snapshot or read-only lvol as its parent",
            ));
        }
        let rec = LvolRecord {
            uuid: Uuid::new_v4(),
            name: name.to_owned(),
            flags: FLAG_THIN,
            clear,
            parent: Some(self.uuid()),
            entries: vec![UNMAPPED; n],
        };
        let c = core.md.apply_guarded(
            &Op::Create(rec),
            false,
            |m| live_check(m, self),
            |m, a| core.publish_created(m, a),
        )?;
        core.md.commit(c.seq).await?;
        created(c.out)
    }

    /// Takes a snapshot named `name`: the snapshot takes over this lvol's data and this lvol
    /// (same UUID, still exported) becomes its thin clone. Writes are paused for the switch.
    pub async fn snapshot(&self, name: &str) -> Result<Lvol, LvolError> {
        let (this, name) = (self.clone(), name.to_owned());
        detached(&self.core().md.tasks, async move {
            this.snapshot_now(&name).await
        })
        .await
    }

    async fn snapshot_now(&self, name: &str) -> Result<Lvol, LvolError> {
        self.check()?;
        let core = self.core();
        core.check_live()?;
        let _hold = core.hold_name(name)?;
        if self.read_data(LvolData::is_snapshot)? {
            return Err(LvolError::invalid(
                "cannot snapshot a snapshot: clone it first",
            ));
        }
        let gate = self.core.shared.plane.gate.write().await;
        let op = Op::Snapshot {
            origin: self.uuid(),
            snapshot: Uuid::new_v4(),
            name: name.to_owned(),
        };
        let c = core.md.apply_guarded(
            &op,
            false,
            |m| live_check(m, self),
            |m, a| core.publish_created(m, a),
        )?;
        drop(gate);
        core.md.commit(c.seq).await?;
        created(c.out)
    }

    /// Resizes to `size_bytes` (rounded up to whole clusters). Shrinking releases the clusters
    /// past the new end with the clear method.
    pub async fn resize(&self, size_bytes: u64) -> Result<(), LvolError> {
        let this = self.clone();
        detached(&self.core().md.tasks, async move {
            this.resize_now(size_bytes).await
        })
        .await
    }

    async fn resize_now(&self, size_bytes: u64) -> Result<(), LvolError> {
        self.check()?;
        let core = self.core();
        core.check_live()?;
        let n = core.clusters_for(size_bytes)?;
        if self.read_data(LvolData::is_read_only)? {
            return Err(LvolError::ReadOnly);
        }
        let gate = self.core.shared.plane.gate.write().await;
        let (old, thin, parent_len, clear) = self.read_data(|d| {
            let plen = d.parent.as_ref().map_or(0, |p| p.data.read().entries.len());
            (d.size_clusters(), d.is_thin(), plen, d.clear)
        })?;
        if n == old {
            return Ok(());
        }
        let mut reserved = Vec::new();
        let added: Vec<u32> = if n < old {
            Vec::new()
        } else if thin {
            // A clone grown back over its parent's range must read zeros there, not the parent.
            (old..n)
                .map(|i| {
                    if usize::try_from(i).is_ok_and(|i| i < parent_len) {
                        ZERO
                    } else {
                        UNMAPPED
                    }
                })
                .collect()
        } else {
            reserved = core
                .reserve_zeroed(n - old, &crate::progress::Progress::new())
                .await?;
            reserved.clone()
        };
        let op = Op::Resize {
            uuid: self.uuid(),
            clusters: n,
            added,
        };
        let pending = clear != ClearMethod::None;
        let r = core.md.apply_guarded(
            &op,
            pending,
            |m| live_check(m, self),
            |m, _| m.alloc.release(&reserved),
        );
        let c = match r {
            Ok(c) => c,
            Err(e) => {
                core.md.meta.lock().alloc.release(&reserved);
                return Err(e);
            }
        };
        drop(gate);
        core.md.commit(c.seq).await?;
        if !c.applied.freed.is_empty() {
            let r = core
                .clear_clusters(&c.applied.freed, clear, &Progress::new())
                .await;
            core.md.mark_cleared(c.park);
            r?;
        }
        Ok(())
    }

    /// Renames the lvol within its lvstore.
    pub async fn rename(&self, name: &str) -> Result<(), LvolError> {
        let (this, name) = (self.clone(), name.to_owned());
        detached(&self.core().md.tasks, async move {
            this.rename_now(&name).await
        })
        .await
    }

    async fn rename_now(&self, name: &str) -> Result<(), LvolError> {
        self.check()?;
        let core = self.core();
        core.check_live()?;
        let old = self.name()?;
        if old == name {
            return Ok(());
        }
        let _hold = core.hold_name(name)?;
        let op = Op::Rename {
            uuid: self.uuid(),
            name: name.to_owned(),
        };
        let uuid = self.uuid();
        let c = core.md.apply_guarded(
            &op,
            false,
            |m| live_check(m, self),
            |_, _| {
                core.rename_index(&uuid, &old, name);
            },
        )?;
        core.md.commit(c.seq).await
    }

    /// Makes the lvol read-only (it can then be cloned).
    pub async fn set_read_only(&self) -> Result<(), LvolError> {
        let this = self.clone();
        detached(&self.core().md.tasks, async move {
            this.set_read_only_now().await
        })
        .await
    }

    async fn set_read_only_now(&self) -> Result<(), LvolError> {
        self.check()?;
        let core = self.core();
        core.check_live()?;
        let op = Op::SetReadOnly { uuid: self.uuid() };
        let c = core
            .md
            .apply_guarded(&op, false, |m| live_check(m, self), |_, _| ())?;
        core.md.commit(c.seq).await
    }
}
