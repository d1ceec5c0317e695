//! Per-lvol data-plane coordination: the write gate (writes hold it shared; snapshot, merge and
//! resize hold it exclusive to switch the map with no write in flight) and the first-write
//! latches that make concurrent first writes to one unallocated cluster allocate it once.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;

/// Gate and latches of one lvol.
#[derive(Debug, Default)]
pub(crate) struct DataPlane {
    // An async lock because writes hold it across device I/O; it is write-preferring, so a
    // snapshot waiting for it is not starved by a stream of writes. In an `Arc` so a write
    // can hand its shared guard to the detached task that finishes it.
    pub gate: Arc<tokio::sync::RwLock<()>>,
    // In an `Arc` so the allocating writer's guard can remove its entry without a handle to
    // the lvol.
    pub allocating: Arc<Mutex<HashMap<u32, Arc<Latch>>>>,
}

/// A one-shot "allocation finished" signal.
#[derive(Debug, Default)]
pub(crate) struct Latch {
    done: AtomicBool,
    notify: Notify,
}

impl Latch {
    /// Waits until [`Latch::open`] was called (returns at once if it was).
    pub(crate) async fn wait(&self) {
        crate::drain::wait_until(&self.notify, || self.done.load(Ordering::SeqCst)).await;
    }

    /// Releases every waiter.
    pub(crate) fn open(&self) {
        self.done.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
}

/// Who handles a first write to a cluster.
#[derive(Debug)]
pub(crate) enum Claim {
    /// This caller allocates; dropping the guard releases the followers.
    Leader(LeaderGuard),
    /// Another caller is allocating: wait, then look again.
    Follower(Arc<Latch>),
}

/// Held by the allocating writer of one cluster.
#[derive(Debug)]
pub(crate) struct LeaderGuard {
    allocating: Arc<Mutex<HashMap<u32, Arc<Latch>>>>,
    index: u32,
    latch: Arc<Latch>,
}

impl DataPlane {
    /// Claims the allocation of logical cluster `index` of this lvol.
    pub(crate) fn claim(&self, index: u32) -> Claim {
        let mut map = self.allocating.lock();
        if let Some(latch) = map.get(&index) {
            return Claim::Follower(Arc::clone(latch));
        }
        let latch = Arc::new(Latch::default());
        map.insert(index, Arc::clone(&latch));
        Claim::Leader(LeaderGuard {
            allocating: Arc::clone(&self.allocating),
            index,
            latch,
        })
    }
}

impl Drop for LeaderGuard {
    fn drop(&mut self) {
        self.allocating.lock().remove(&self.index);
        self.latch.open();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn latch_releases_waiters_opened_before_or_after() {
        let l = Arc::new(Latch::default());
        let w = {
            let l = Arc::clone(&l);
            tokio::spawn(async move { l.wait().await })
        };
        tokio::task::yield_now().await;
        l.open();
        w.await.unwrap();
        l.wait().await;
    }
}
