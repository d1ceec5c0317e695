//! The deletion state machine of issue 3 §6:
//! (a) unpublish: gone from listings and lookups, new opens fail;
//! (b) refuse with Busy, changing nothing, when exported or open by a descriptor that did not
//!     agree to be force-closed (checked together with (a) under the metadata lock, so either
//!     nothing happened or the lvol is on its way out);
//! (c) wait for in-flight I/O on existing descriptors to drain (per-I/O guards);
//! (d) delete (or merge a snapshot into its only clone), commit, then clear the freed clusters
//!     with the clear method, reporting progress; if the metadata operation is refused (the
//!     store failed, the metadata is full), nothing changed and the lvol is published again,
//!     live, under its name: a delete completes or leaves the lvol as it was;
//! (e) the memory goes when the last handle drops; old handles get `Deleted`.
//!
//! A snapshot with two or more clones is refused (`HasClones`); with exactly one, it is merged
//! into that clone as SPDK does: the clone takes every cluster it had not written itself and
//! inherits the snapshot's parent; the snapshot's other clusters are freed.

use std::sync::Arc;

use super::lvol::{Lvol, refusal_error};
use crate::detach::detached;
use crate::error::LvolError;
use crate::format::record::Op;
use crate::lifecycle::LvolEvent;
use crate::meta::journal::Committed;
use crate::meta::state::LvolShared;
use crate::progress::Progress;
use crate::types::ClearMethod;

/// How a removal failed.
enum Removal {
    /// Before its metadata operation applied: nothing changed.
    Refused(LvolError),
    /// After: the lvol is gone from the metadata in memory.
    Failed(LvolError),
}

impl Lvol {
    /// Deletes the lvol (see the module docs for the rules). Runs in a detached task: once
    /// called, the delete completes (or fails) even if the caller stops waiting.
    pub async fn delete(&self, progress: &Progress) -> Result<(), LvolError> {
        let (this, progress) = (self.clone(), progress.clone());
        detached(&self.store.0.md.tasks, async move {
            this.delete_now(&progress).await
        })
        .await
    }

    async fn delete_now(&self, progress: &Progress) -> Result<(), LvolError> {
        let core = &self.store.0;
        core.check_live()?;
        let clear = {
            let _m = core.md.meta.lock();
            let (children, name, clear) = {
                let d = self.core.shared.data.read();
                (d.children.len(), d.name.clone(), d.clear)
            };
            if children > 1 {
                return Err(LvolError::HasClones(children));
            }
            // Under the metadata lock: no clone of this lvol can be created from here on.
            self.core
                .life
                .begin(LvolEvent::Delete)
                .map_err(|r| refusal_error(r, &format!("lvol {name}")))?;
            core.unpublish(&self.uuid(), &name);
            clear
        };
        self.drain().await;
        match self.remove(clear, progress).await {
            Err(Removal::Refused(e)) => {
                // Nothing changed in the metadata: the lvol is back, as it was, under its name.
                let _m = core.md.meta.lock();
                self.transition(LvolEvent::CallOff);
                let name = self.core.shared.data.read().name.clone();
                core.publish(self, &name);
                Err(e)
            }
            Err(Removal::Failed(e)) => {
                // Applied (so gone from the metadata in memory) but not made durable or not
                // cleared: the store is failed or the clear is what failed; deleted either way.
                self.transition(LvolEvent::Freed);
                Err(e)
            }
            Ok(()) => {
                self.transition(LvolEvent::Freed);
                Ok(())
            }
        }
    }

    /// The only clone now (ancestors merging meanwhile can change which lvol that is).
    fn only_child(&self) -> Option<Arc<LvolShared>> {
        let m = self.store.0.md.meta.lock();
        let child = self.core.shared.data.read().children.first().copied();
        child.and_then(|c| m.state.lvol(&c).cloned())
    }

    async fn remove(&self, clear: ClearMethod, progress: &Progress) -> Result<(), Removal> {
        let core = &self.store.0;
        #[cfg(test)]
        if core
            .refuse_next_removal
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(Removal::Refused(LvolError::MetadataFull("test hook")));
        }
        let pending = clear != ClearMethod::None;
        let mut attempts = 0;
        let c: Committed<()> = loop {
            attempts += 1;
            let r = match self.only_child() {
                Some(child) => {
                    // The clone's map changes: no write of the clone may be in flight.
                    let _gate = child.plane.gate.write().await;
                    core.md.apply(
                        &Op::Merge {
                            snapshot: self.uuid(),
                            clone: child.uuid,
                        },
                        pending,
                    )
                }
                None => core.md.apply(&Op::Delete { uuid: self.uuid() }, pending),
            };
            match r {
                // The clone was deleted or merged away while we waited for its gate.
                Err(LvolError::HasClones(_) | LvolError::NotFound(_)) if attempts < 64 => {}
                other => break other.map_err(Removal::Refused)?,
            }
        };
        core.md.commit(c.seq).await.map_err(Removal::Failed)?;
        progress.start(c.applied.freed.len() as u64);
        let r = core.clear_clusters(&c.applied.freed, clear, progress).await;
        core.md.mark_cleared(c.park);
        r.map_err(Removal::Failed)
    }
}
