//! The drain primitive: "enter unless closed; close, then wait for zero". The one used for
//! every object whose teardown must wait for work in flight on it: an lvol's I/O (delete and
//! unload wait for it before freeing clusters), an lvstore's detached tasks (unload and destroy
//! wait for them before checkpointing or wiping), a namespace's commands (removal waits for
//! them before dropping its descriptor) and a controller's queues (released only once each of
//! its queues has finished its commands).
//!
//! One atomic word holds a closed bit, a waiting bit and the count of entries in flight:
//!
//! - [`Drain::enter`] is one `fetch_add`; if the closed bit was set, the entry is undone and
//!   refused. So after [`Drain::close`] returns, every entry either was counted before it (and
//!   the waiter sees it leave) or is refused.
//! - Leaving is one `fetch_sub`. It wakes waiters only when it took the count to zero *and*
//!   the drain is closed or someone is waiting: the I/O fast path never touches the `Notify`
//!   (a mutex inside tokio) while nobody is waiting.
//! - [`Drain::wait_idle`] sets the waiting bit, registers with the `Notify`, then checks the
//!   count, so a leave between the check and the await still wakes it. The waiting bit stays
//!   set afterwards (clearing it would race a second waiter); it only costs a wake-up per
//!   idle transition on an object that has been waited on.
//!
//! The word's logic is [`DrainCore`], over the `crate::sync` shim so loom checks it (close
//! against enter, close against close, a leave racing a waiter); [`Drain`] adds the tokio
//! wake-up. Guards come borrowed ([`DrainRef`], for work that lives no longer than the object)
//! or owned ([`DrainGuard`], to move into a spawned task).

use std::sync::Arc;

use tokio::sync::Notify;

use crate::sync::{AtomicU64, Ordering};

const CLOSED: u64 = 1 << 63;
const WAITING: u64 = 1 << 62;
const COUNT: u64 = WAITING - 1;

/// The drain's atomic word: what enters, leaves, closes and waits decide. No wake-ups here.
#[derive(Debug, Default)]
pub struct DrainCore {
    word: AtomicU64,
}

impl DrainCore {
    /// Open, nothing in flight.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one entry unless closed. `Err(wake)` when refused: `wake` says the undo took the
    /// count to zero on a closed drain, so the caller must wake waiters as a leave would.
    pub fn try_enter(&self) -> Result<(), bool> {
        let prev = self.word.fetch_add(1, Ordering::SeqCst);
        if prev & CLOSED == 0 {
            return Ok(());
        }
        Err(self.leave())
    }

    /// Uncounts one entry; true when waiters must be woken (the count reached zero on a drain
    /// that is closed or waited on).
    pub fn leave(&self) -> bool {
        let prev = self.word.fetch_sub(1, Ordering::SeqCst);
        debug_assert!(prev & COUNT != 0, "drain left more often than entered");
        prev & COUNT == 1 && prev & (CLOSED | WAITING) != 0
    }

    /// Refuses new entries from now on; true for the call that closed it.
    pub fn close(&self) -> bool {
        self.word.fetch_or(CLOSED, Ordering::SeqCst) & CLOSED == 0
    }

    /// Admits entries again (a close that was called off); true if it was closed.
    pub fn reopen(&self) -> bool {
        self.word.fetch_and(!CLOSED, Ordering::SeqCst) & CLOSED != 0
    }

    /// Marks the drain waited on; from now on a leave to zero asks for a wake-up.
    pub fn mark_waiting(&self) {
        self.word.fetch_or(WAITING, Ordering::SeqCst);
    }

    /// Whether it is closed.
    pub fn is_closed(&self) -> bool {
        self.word.load(Ordering::SeqCst) & CLOSED != 0
    }

    /// Entries in flight now (a refused entry is counted for the instant before its undo).
    pub fn in_flight(&self) -> u64 {
        self.word.load(Ordering::SeqCst) & COUNT
    }
}

/// Work in flight on one object, and whether new work may still enter.
#[derive(Debug, Default)]
pub struct Drain {
    core: DrainCore,
    idle: Notify,
}

/// One entry, borrowed from its drain; leaving is dropping it.
#[derive(Debug)]
pub struct DrainRef<'a>(&'a Drain);

/// One entry that owns a handle to its drain, so it can move into a spawned task.
#[derive(Debug)]
pub struct DrainGuard(Arc<Drain>);

impl Drain {
    /// An open drain with nothing in flight.
    pub fn new() -> Self {
        Self::default()
    }

    /// Enters, unless the drain was closed.
    pub fn enter(&self) -> Option<DrainRef<'_>> {
        self.try_enter().then(|| DrainRef(self))
    }

    /// Enters with a guard that owns a handle to the drain, unless the drain was closed.
    pub fn enter_owned(this: &Arc<Self>) -> Option<DrainGuard> {
        this.try_enter().then(|| DrainGuard(Arc::clone(this)))
    }

    /// Counts one entry without a guard: the caller must call [`Drain::leave`] exactly once
    /// for each `true` (for guards that live inside a larger object).
    pub fn try_enter(&self) -> bool {
        match self.core.try_enter() {
            Ok(()) => true,
            Err(wake) => {
                if wake {
                    self.idle.notify_waiters();
                }
                false
            }
        }
    }

    /// Uncounts one entry taken with [`Drain::try_enter`].
    pub fn leave(&self) {
        if self.core.leave() {
            self.idle.notify_waiters();
        }
    }

    /// Refuses new entries from now on; true for the call that closed it.
    pub fn close(&self) -> bool {
        self.core.close()
    }

    /// Admits entries again: for a close that was called off before anything was freed.
    pub fn reopen(&self) -> bool {
        self.core.reopen()
    }

    /// Whether it is closed.
    pub fn is_closed(&self) -> bool {
        self.core.is_closed()
    }

    /// Entries in flight now.
    pub fn in_flight(&self) -> u64 {
        self.core.in_flight()
    }

    /// Waits until nothing is in flight (returns at once if nothing is). On an open drain new
    /// entries may follow at once; close it first to wait for the last one.
    pub async fn wait_idle(&self) {
        self.core.mark_waiting();
        wait_until(&self.idle, || self.core.in_flight() == 0).await;
    }

    /// Closes, then waits until nothing is in flight; true for the call that closed it.
    pub async fn close_and_wait(&self) -> bool {
        let closed = self.close();
        self.wait_idle().await;
        closed
    }
}

/// Waits until `ready()` holds, re-checking each time `notify` wakes its waiters. The one
/// wait loop over a `Notify` in this crate: it registers before checking, so a
/// `notify_waiters` between the check and the await is not lost.
pub(crate) async fn wait_until(notify: &Notify, ready: impl Fn() -> bool) {
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if ready() {
            return;
        }
        notified.await;
    }
}

impl Drop for DrainRef<'_> {
    fn drop(&mut self) {
        self.0.leave();
    }
}

impl Drop for DrainGuard {
    fn drop(&mut self) {
        self.0.leave();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn close_refuses_entries_and_waits_for_the_rest() {
        let d = Arc::new(Drain::new());
        let a = Drain::enter_owned(&d).unwrap();
        let b = d.enter().unwrap();
        assert!(d.close());
        assert!(!d.close(), "only the first close reports closing");
        assert!(d.enter().is_none());
        assert!(Drain::enter_owned(&d).is_none());
        assert_eq!(d.in_flight(), 2);
        let waiter = {
            let d = Arc::clone(&d);
            tokio::spawn(async move { d.wait_idle().await })
        };
        drop(a);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "one entry is still in flight");
        drop(b);
        waiter.await.unwrap();
        d.wait_idle().await;
    }

    #[tokio::test]
    async fn reopen_admits_again() {
        let d = Drain::new();
        assert!(d.close());
        assert!(d.enter().is_none());
        assert!(d.reopen());
        assert!(!d.reopen());
        let g = d.enter().expect("open again");
        assert_eq!(d.in_flight(), 1);
        drop(g);
        assert_eq!(d.in_flight(), 0);
    }

    /// A waiter on an open drain (the lvstore's settle) is woken by the leave to zero, even
    /// though the drain is not closed.
    #[tokio::test]
    async fn waiting_on_an_open_drain_is_woken() {
        let d = Arc::new(Drain::new());
        let g = Drain::enter_owned(&d).unwrap();
        let waiter = {
            let d = Arc::clone(&d);
            tokio::spawn(async move { d.wait_idle().await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(g);
        tokio::time::timeout(std::time::Duration::from_secs(10), waiter)
            .await
            .expect("the leave to zero woke the waiter")
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_entries_all_drain() {
        let d = Arc::new(Drain::new());
        let (started_tx, mut started) = tokio::sync::mpsc::channel(64);
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let (d, started_tx) = (Arc::clone(&d), started_tx.clone());
            tasks.push(tokio::spawn(async move {
                let _ = started_tx.send(()).await;
                let mut entered = 0;
                while let Some(_g) = d.enter() {
                    entered += 1;
                    tokio::task::yield_now().await;
                }
                entered
            }));
        }
        for _ in 0..64 {
            started.recv().await.unwrap();
        }
        d.close_and_wait().await;
        assert_eq!(d.in_flight(), 0);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(d.in_flight(), 0);
    }
}

/// Loom model checks of the drain word. Run with
/// `RUSTFLAGS="--cfg loom" cargo test -p lamina-lvol --release --lib loom`.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::sync::atomic::AtomicBool;
    use loom::thread;

    /// Close against enter: an entry either is counted before the close (and the closer sees
    /// it in flight until it leaves) or is refused; work guarded by an entry never runs after
    /// the closer saw the drain idle.
    #[test]
    fn loom_close_versus_enter() {
        loom::model(|| {
            let d = Arc::new(DrainCore::new());
            let freed = Arc::new(AtomicBool::new(false));
            let worker = {
                let (d, freed) = (d.clone(), freed.clone());
                thread::spawn(move || {
                    if d.try_enter().is_ok() {
                        assert!(!freed.load(Ordering::SeqCst), "entered work saw the free");
                        d.leave();
                        true
                    } else {
                        false
                    }
                })
            };
            assert!(d.close());
            while d.in_flight() != 0 {
                thread::yield_now();
            }
            freed.store(true, Ordering::SeqCst);
            worker.join().unwrap();
            assert!(d.try_enter().is_err());
            assert_eq!(d.in_flight(), 0);
        });
    }

    /// Close against close: exactly one of two racing closes reports that it closed.
    #[test]
    fn loom_close_versus_close() {
        loom::model(|| {
            let d = Arc::new(DrainCore::new());
            let other = {
                let d = d.clone();
                thread::spawn(move || d.close())
            };
            let mine = d.close();
            let theirs = other.join().unwrap();
            assert!(mine ^ theirs, "mine={mine} theirs={theirs}");
            assert!(d.is_closed());
        });
    }

    /// A leave racing a waiter (the drop while waiting): the waiter marks itself, then checks;
    /// if it saw work in flight, the leave that ends it must ask for a wake-up, so the waiter
    /// is never left asleep. Also with a refused entry racing, whose undo may be the last leave.
    #[test]
    fn loom_leave_versus_waiter() {
        loom::model(|| {
            let d = Arc::new(DrainCore::new());
            d.try_enter().unwrap();
            let woken = Arc::new(AtomicBool::new(false));
            let leaver = {
                let (d, woken) = (d.clone(), woken.clone());
                thread::spawn(move || {
                    if d.leave() {
                        woken.store(true, Ordering::SeqCst);
                    }
                })
            };
            let late = {
                let (d, woken) = (d.clone(), woken.clone());
                thread::spawn(move || match d.try_enter() {
                    Ok(()) => {
                        if d.leave() {
                            woken.store(true, Ordering::SeqCst);
                        }
                    }
                    Err(true) => woken.store(true, Ordering::SeqCst),
                    Err(false) => {}
                })
            };
            d.close();
            d.mark_waiting();
            let saw_busy = d.in_flight() != 0;
            leaver.join().unwrap();
            late.join().unwrap();
            assert_eq!(d.in_flight(), 0);
            if saw_busy {
                assert!(woken.load(Ordering::SeqCst), "the waiter was never woken");
            }
        });
    }
}
