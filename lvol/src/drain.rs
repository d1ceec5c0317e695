//! The drain primitive: "enter unless closed; close, then wait for zero".
//!
//! A [`Drain`] counts work in flight on an object. Work enters with [`Drain::enter`], which
//! fails once the drain is closed, and leaves when its [`DrainGuard`] drops; [`Drain::close`]
//! refuses new entries and [`Drain::wait_idle`] then returns once everything that entered
//! before has left. One atomic word holds both the closed bit and the count, so "entered" and
//! "closed" are ordered: after `close` returns, only entries that won the race are counted,
//! and the waiter sees each of them leave.
//!
//! The lvstore uses one for its detached tasks (the crate-private `detach` module): unload
//! and destroy close it and wait, so no allocation, commit or clear is still running when the metadata is
//! checkpointed or wiped. The target uses the same primitive for a controller's queues: a
//! torn-down controller is released only once every queue it had has finished its commands.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::sync::{AtomicU64, Ordering};

const CLOSED: u64 = 1 << 63;

/// Work in flight on one object, and whether new work may still enter.
#[derive(Debug, Default)]
pub struct Drain {
    word: AtomicU64,
    idle: Notify,
}

/// One entry; leaving is dropping it. Owned, so it can move into a spawned task.
#[derive(Debug)]
pub struct DrainGuard(Arc<Drain>);

impl Drain {
    /// An open drain with nothing in flight.
    pub fn new() -> Self {
        Self::default()
    }

    /// Enters, unless the drain was closed.
    pub fn enter(this: &Arc<Self>) -> Option<DrainGuard> {
        let mut cur = this.word.load(Ordering::SeqCst);
        loop {
            if cur & CLOSED != 0 {
                return None;
            }
            match this
                .word
                .compare_exchange_weak(cur, cur + 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return Some(DrainGuard(Arc::clone(this))),
                Err(actual) => cur = actual,
            }
        }
    }

    /// Refuses new entries from now on; true for the call that closed it.
    pub fn close(&self) -> bool {
        self.word.fetch_or(CLOSED, Ordering::SeqCst) & CLOSED == 0
    }

    /// Entries in flight now.
    pub fn in_flight(&self) -> u64 {
        self.word.load(Ordering::SeqCst) & !CLOSED
    }

    /// Waits until nothing is in flight (returns at once if nothing is).
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            // Registered before the check, so a leave between the check and the await wakes us.
            notified.as_mut().enable();
            if self.in_flight() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for DrainGuard {
    fn drop(&mut self) {
        let prev = self.0.word.fetch_sub(1, Ordering::SeqCst);
        if prev & !CLOSED == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn close_refuses_entries_and_waits_for_the_rest() {
        let d = Arc::new(Drain::new());
        let a = Drain::enter(&d).unwrap();
        let b = Drain::enter(&d).unwrap();
        assert!(d.close());
        assert!(!d.close(), "only the first close reports closing");
        assert!(Drain::enter(&d).is_none());
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
}
