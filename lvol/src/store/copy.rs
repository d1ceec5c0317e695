//! Inflate and decouple. Inflate allocates every cluster of the lvol, copying from the parent
//! chain or zero-filling, then drops the parent and makes the lvol thick. Decouple allocates
//! only the clusters the parent chain provides, then drops the parent (the lvol stays thin).
//! Both work one cluster at a time through the same allocation path as first writes, so I/O
//! and other calls go on meanwhile; they report progress and stop with `Deleted` if the lvol
//! is deleted under them. The last pass runs with writes paused, to catch clusters a
//! concurrent deallocate released, and then applies the parent switch.

use super::io::{Payload, entry};
use super::lvol::Lvol;
use crate::detach::detached;
use crate::error::LvolError;
use crate::format::record::{Op, UNMAPPED};
use crate::lifecycle::LvolState;
use crate::meta::state::{is_real, provides};
use crate::plane::Claim;
use crate::progress::Progress;

impl Lvol {
    /// Allocates every cluster (copying from the parents) and drops the parent.
    pub async fn inflate(&self, progress: &Progress) -> Result<(), LvolError> {
        self.copy_up_detached(true, progress).await
    }

    /// Allocates the clusters the parent provides and drops the parent.
    pub async fn decouple_parent(&self, progress: &Progress) -> Result<(), LvolError> {
        self.copy_up_detached(false, progress).await
    }

    async fn copy_up_detached(&self, thick: bool, progress: &Progress) -> Result<(), LvolError> {
        let (this, progress) = (self.clone(), progress.clone());
        detached(&self.store.0.md.tasks, async move {
            this.copy_up(thick, &progress).await
        })
        .await
    }

    fn needs_copy(&self, idx: u32, thick: bool) -> Option<u32> {
        let shared = &self.core.shared;
        // Past the end: a resize shrank the lvol after the caller compared `idx` with its
        // size and before it took the gate. Nothing to copy (an out-of-range entry reads as
        // ZERO, which a thick copy would otherwise try to allocate and fail to map).
        if idx >= shared.data.read().size_clusters() {
            return None;
        }
        let e = entry(shared, idx);
        let need = if thick {
            !is_real(e)
        } else {
            let parent = shared.data.read().parent.clone();
            e == UNMAPPED
                && parent.is_some_and(|p| usize::try_from(idx).is_ok_and(|i| provides(&p, i)))
        };
        need.then_some(e)
    }

    async fn copy_cluster(&self, idx: u32, thick: bool) -> Result<(), LvolError> {
        let shared = &self.core.shared;
        let core = &self.store.0;
        loop {
            if self.needs_copy(idx, thick).is_none() {
                return Ok(());
            }
            match shared.plane.claim(idx) {
                Claim::Follower(latch) => latch.wait().await,
                Claim::Leader(guard) => {
                    let Some(e) = self.needs_copy(idx, thick) else {
                        return Ok(());
                    };
                    let r = core.allocate(shared, idx, e, 0, Payload::Fill).await;
                    drop(guard);
                    return r;
                }
            }
        }
    }

    fn size_clusters(&self) -> Result<u32, LvolError> {
        self.read_data(crate::meta::state::LvolData::size_clusters)
    }

    async fn copy_up(&self, thick: bool, progress: &Progress) -> Result<(), LvolError> {
        self.check()?;
        let core = &self.store.0;
        core.check_live()?;
        let (has_parent, thin, read_only) =
            self.read_data(|d| (d.parent.is_some(), d.is_thin(), d.is_read_only()))?;
        if read_only {
            return Err(LvolError::ReadOnly);
        }
        if !has_parent && !thick {
            return Err(LvolError::invalid("lvol has no parent to decouple from"));
        }
        if !has_parent && !thin {
            return Ok(()); // already thick and independent
        }
        progress.start(u64::from(self.size_clusters()?));
        let mut idx = 0;
        while idx < self.size_clusters()? {
            let _io = self.enter_io()?;
            let _gate = self.core.shared.plane.gate.read().await;
            self.copy_cluster(idx, thick).await?;
            progress.advance(1);
            idx += 1;
        }
        let _io = self.enter_io()?;
        let gate = self.core.shared.plane.gate.write().await;
        for idx in 0..self.size_clusters()? {
            self.copy_cluster(idx, thick).await?;
        }
        let op = Op::Detach {
            uuid: self.uuid(),
            thick,
        };
        let c = core.md.apply_guarded(
            &op,
            false,
            |_| match self.core.life.state() {
                LvolState::Live => Ok(()),
                _ => Err(LvolError::Deleted),
            },
            |_, _| (),
        )?;
        drop(gate);
        core.md.commit(c.seq).await
    }
}
