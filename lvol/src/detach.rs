//! Cancellation safety: which futures of this crate may be dropped, and what that costs.
//!
//! Callers drop futures: the target drops a command when its connection ends mid-command, an
//! RPC client hangs up, a `select!` picks another branch. A future that changes persistent or
//! shared state and is dropped half-way would leave that state half-changed: a cluster reserved
//! and never mapped (leaked until restart), a quarantined cluster never cleared (leaked), a
//! journal batch taken out of the pending queue and never written (the next load rejects the
//! journal). So every such change runs, once started, in a task of its own that nothing can
//! cancel, and the caller's future only waits for it:
//!
//! | operation | dropping the caller's future |
//! |---|---|
//! | read | harmless: the guards it held are released; an io_uring read already submitted completes into a buffer the ring owns |
//! | write into allocated clusters | the device write may still complete (io_uring owns the buffer); nothing else changes. The target never drops one: connection teardown waits for its commands |
//! | write that allocates (first write, copy-on-write fill), write-zeroes, deallocate | the rest of the command runs to completion in a detached task holding the lvol's I/O guard and write gate: the allocation is mapped (or released on error), freed clusters are cleared and become reusable |
//! | flush, FUA, and every metadata commit | the group commit runs in a detached task: pending records are written or the store is marked failed, never lost |
//! | management (create, snapshot, clone, resize, rename, set read-only, inflate, decouple, delete, lvstore create, grow, rename, unload, destroy) | the operation completes in a detached task; its result is discarded |
//!
//! Detached work of an lvstore is counted in its [`Drain`]: unload and destroy close it and
//! wait for it, so the metadata is never checkpointed or wiped while such work runs. Work that
//! is already detached and counted by the same lvstore runs nested operations (a delete's
//! commit, an allocation's flush) inline, under the same count: nothing can cancel it, and a
//! closed drain cannot refuse the commit of an operation admitted before the close. A
//! detached task that panics re-raises the panic in the waiting caller (a bug, not an input
//! error); if the runtime shuts down under it, the caller gets `Unloaded`, and the device holds
//! what a crash at that point would have left, which loading recovers.

use std::future::Future;
use std::sync::Arc;

use crate::drain::Drain;
use crate::error::LvolError;

/// Runs `work` to completion in its own task, counted in `tasks`, and waits for its result.
/// Refused with `Unloaded` once `tasks` is closed (the lvstore is unloading).
pub(crate) async fn detached<T, F>(tasks: &Arc<Drain>, work: F) -> Result<T, LvolError>
where
    F: Future<Output = Result<T, LvolError>> + Send + 'static,
    T: Send + 'static,
{
    let id = Arc::as_ptr(tasks) as usize;
    if DETACHED.try_with(|d| *d == Some(id)).unwrap_or(false) {
        return work.await;
    }
    let guard = Drain::enter_owned(tasks).ok_or(LvolError::Unloaded)?;
    join(tokio::spawn(DETACHED.scope(Some(id), async move {
        let r = work.await;
        drop(guard);
        r
    })))
    .await
}

tokio::task_local! {
    /// Set inside a detached task: the address of the drain counting it, if any.
    static DETACHED: Option<usize>;
}

/// Runs `work` to completion in its own task, not counted anywhere (lvstore unload and destroy
/// themselves, which wait for the counted tasks), and waits for its result.
pub(crate) async fn uncounted<T, F>(work: F) -> Result<T, LvolError>
where
    F: Future<Output = Result<T, LvolError>> + Send + 'static,
    T: Send + 'static,
{
    if DETACHED.try_with(|_| ()).is_ok() {
        return work.await;
    }
    join(tokio::spawn(DETACHED.scope(None, work))).await
}

async fn join<T>(task: tokio::task::JoinHandle<Result<T, LvolError>>) -> Result<T, LvolError> {
    match task.await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(LvolError::Unloaded),
    }
}
