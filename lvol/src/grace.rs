//! Grace periods for freed clusters: the lvstore's epoch-based guards. A read or write looks up
//! a physical cluster and then touches it after an `.await`; if that cluster were freed and
//! handed to another lvol in between, the I/O would read or overwrite someone else's data.
//!
//! - **What an epoch is.** A per-lvstore counter. Every I/O holds a [`GraceGuard`] from before
//!   its map lookup until its device access ends; the guard counts in the slot of the epoch it
//!   entered (two slots, by parity: one atomic add and one subtract per I/O).
//! - **When it advances.** [`Grace::try_advance`] moves from `e` to `e + 1` only when no guard
//!   of `e - 1` is left (they share `e + 1`'s slot). The allocator calls it when it looks for
//!   reusable clusters; nothing advances on the I/O path.
//! - **What it protects.** A cluster freed (unmapped by delete, merge, resize, overwrite of a
//!   snapshot's copy) is tagged with the epoch of its free and sits in quarantine; it is handed
//!   out again only once the epoch is two past that tag ([`Grace::is_safe`]), which means every
//!   guard that could have resolved the old mapping has been released. This is the invariant
//!   "no cluster is reused while an I/O that resolved it runs" (see `lvol/LIFECYCLE.md`).
//! - **Why not crossbeam-epoch.** Its guards pin a thread and must not be held across an
//!   `.await` (a task can move threads, and a pinned guard held across an await blocks
//!   reclamation for every other task on that thread); ours are plain counters a future can
//!   hold across any number of awaits and drop on any thread. And we reclaim clusters on a
//!   device, not memory: the "free" is a metadata transition the allocator checks, not a
//!   deferred destructor.
//!
//! The lvol's own [`crate::drain::Drain`] covers the other direction (an lvol is not freed
//! while its I/O runs); the grace epochs cover clusters that change owner while the lvol lives.

use crate::sync::{AtomicU64, Ordering, fence};

/// The per-lvstore epoch counter and the two in-flight counters.
#[derive(Debug)]
pub(crate) struct Grace {
    epoch: AtomicU64,
    active: [AtomicU64; 2],
}

/// Held by an I/O from its map lookup to the end of its device access.
#[derive(Debug)]
pub(crate) struct GraceGuard<'a> {
    grace: &'a Grace,
    slot: usize,
}

impl Grace {
    pub(crate) fn new() -> Self {
        Self {
            epoch: AtomicU64::new(0),
            active: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    fn slot(epoch: u64) -> usize {
        usize::from(epoch % 2 == 1)
    }

    /// Enters the current epoch.
    pub(crate) fn enter(&self) -> GraceGuard<'_> {
        loop {
            let e = self.epoch.load(Ordering::SeqCst);
            let slot = Self::slot(e);
            self.active[slot].fetch_add(1, Ordering::SeqCst);
            // Dekker-style pairing with the fence in `try_advance`: either the advancer sees
            // this count, or this guard sees the new epoch (and, after it, the unpublished
            // mapping). The explicit fence also lets loom, which models SeqCst accesses as
            // AcqRel, check the argument.
            fence(Ordering::SeqCst);
            // If the epoch moved between the load and the add, our count may sit in a slot that
            // an advance already checked; retry so the guard always counts for its own epoch.
            if self.epoch.load(Ordering::SeqCst) == e {
                return GraceGuard { grace: self, slot };
            }
            self.active[slot].fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// The current epoch: tag a free with it.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Moves to the next epoch if every guard of the previous epoch is gone; returns the
    /// (possibly new) current epoch.
    pub(crate) fn try_advance(&self) -> u64 {
        fence(Ordering::SeqCst);
        let e = self.epoch.load(Ordering::SeqCst);
        // Guards of epoch e-1 share the slot of e+1; it must be empty before e+1 begins.
        if self.active[Self::slot(e + 1)].load(Ordering::SeqCst) == 0 {
            let _ = self
                .epoch
                .compare_exchange(e, e + 1, Ordering::SeqCst, Ordering::SeqCst);
        }
        self.epoch.load(Ordering::SeqCst)
    }

    /// Whether a cluster freed in epoch `freed_at` can no longer be touched by any I/O.
    pub(crate) fn is_safe(&self, freed_at: u64) -> bool {
        self.try_advance() >= freed_at + 2
    }
}

impl Drop for GraceGuard<'_> {
    fn drop(&mut self) {
        if let Some(counter) = self.grace.active.get(self.slot) {
            counter.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_guard_holds_back_reuse() {
        let g = Grace::new();
        let guard = g.enter();
        let freed_at = g.epoch();
        assert!(!g.is_safe(freed_at));
        assert!(!g.is_safe(freed_at));
        drop(guard);
        assert!(g.is_safe(freed_at));
    }

    #[test]
    fn new_guards_do_not_block_old_frees() {
        let g = Grace::new();
        let freed_at = g.epoch();
        g.try_advance();
        let _late = g.enter(); // entered after the free: cannot hold the freed cluster
        assert!(g.is_safe(freed_at));
    }
}

/// Loom check: a cluster freed while an I/O may hold it is never reported safe before that I/O
/// released its guard. `RUSTFLAGS="--cfg loom" cargo test -p lamina-lvol --release --lib loom`
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::sync::atomic::AtomicBool;
    use loom::thread;

    #[test]
    fn loom_grace_never_frees_under_a_reader() {
        loom::model(|| {
            let grace = Arc::new(Grace::new());
            let published = Arc::new(AtomicBool::new(true));
            let releasing = Arc::new(AtomicBool::new(false));
            let reader = {
                let (grace, published, releasing) =
                    (grace.clone(), published.clone(), releasing.clone());
                thread::spawn(move || {
                    let guard = grace.enter();
                    let saw = published.load(Ordering::SeqCst);
                    releasing.store(true, Ordering::SeqCst);
                    drop(guard);
                    saw
                })
            };
            // Free: unpublish the mapping, then tag with the epoch and wait two epochs.
            published.store(false, Ordering::SeqCst);
            let freed_at = grace.epoch();
            let safe = grace.is_safe(freed_at) || grace.is_safe(freed_at);
            let released = releasing.load(Ordering::SeqCst);
            let saw = reader.join().unwrap();
            if safe && saw {
                assert!(
                    released,
                    "cluster reported safe while a reader that saw it held a guard"
                );
            }
        });
    }
}
