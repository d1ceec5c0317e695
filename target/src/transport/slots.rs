//! The commands one queue runs: a fixed set of slots, allocated once, that hold each running
//! command's future inline, and a waker per slot made once, so starting, waking and finishing
//! a command allocates nothing.
//!
//! A new command's future is polled at once, in the slot it was put in: a command whose
//! backend answers synchronously (RAM, null, an lvol on them) completes right there, without
//! a trip through the scheduler, and a batch of commands read in one syscall has all its
//! completions queued before the connection writes them with one `writev`. A command that
//! waits (a file backend, a lvol write into a cluster being allocated) registers its slot's
//! waker; waking it sets the slot's bit in a shared bitmap and wakes the connection task,
//! which then polls exactly the slots whose bits it finds set. Wakers may fire on any thread
//! (a blocking-pool or io_uring completion); the bitmap is atomic, and nothing is locked.
//!
//! I/O commands are stored as their concrete future type `F` (one type for every I/O
//! command, see `crate::plane::io::execute`); admin and Fabrics commands, which are rare, as boxed
//! futures. A host that keeps more commands in flight than there are slots (more than its
//! queue size) is still served: the extra commands run boxed in an overflow set.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures::future::Either;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::task::AtomicWaker;

use crate::plane::command::{CommandFuture, Completion};

/// A running command: an I/O command's future inline, or a boxed one.
pub type Task<F> = Either<F, CommandFuture>;

/// Which slots have been woken, and the connection task to tell.
#[derive(Debug)]
struct ReadySet {
    words: Box<[AtomicU64]>,
    task: AtomicWaker,
}

impl ReadySet {
    fn mark(&self, index: usize) {
        if let Some(word) = self.words.get(index / 64) {
            word.fetch_or(1 << (index % 64), Ordering::Release);
        }
        self.task.wake();
    }

    fn any(&self) -> bool {
        self.words.iter().any(|w| w.load(Ordering::Acquire) != 0)
    }
}

/// The waker of one slot.
#[derive(Debug)]
struct SlotWake {
    index: usize,
    ready: Arc<ReadySet>,
}

impl Wake for SlotWake {
    fn wake(self: Arc<Self>) {
        self.ready.mark(self.index);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.ready.mark(self.index);
    }
}

/// The running commands of one queue (see the module documentation).
pub struct Slots<F> {
    /// One pinned box per slot, allocated when the slot is first used, reused forever.
    futures: Vec<Pin<Box<Option<Task<F>>>>>,
    wakers: Vec<Waker>,
    free: Vec<usize>,
    ready: Arc<ReadySet>,
    capacity: usize,
    running: usize,
    /// Commands past `capacity`; woken through bit `capacity`.
    overflow: FuturesUnordered<Pin<Box<Task<F>>>>,
    overflow_waker: Waker,
}

impl<F> std::fmt::Debug for Slots<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slots")
            .field("capacity", &self.capacity)
            .field("allocated", &self.futures.len())
            .field("running", &self.running)
            .field("overflow", &self.overflow.len())
            .finish_non_exhaustive()
    }
}

impl<F: Future<Output = Completion>> Slots<F> {
    /// Room for `capacity` commands (the queue size); slots are allocated on first use.
    pub fn new(capacity: usize) -> Self {
        // One bit more than the slots: the overflow set's.
        let words = (capacity + 1).div_ceil(64);
        let ready = Arc::new(ReadySet {
            words: (0..words).map(|_| AtomicU64::new(0)).collect(),
            task: AtomicWaker::new(),
        });
        let overflow_waker = Waker::from(Arc::new(SlotWake {
            index: capacity,
            ready: ready.clone(),
        }));
        Self {
            futures: Vec::new(),
            wakers: Vec::new(),
            free: Vec::new(),
            ready,
            capacity,
            running: 0,
            overflow: FuturesUnordered::new(),
            overflow_waker,
        }
    }

    /// Whether no command runs.
    pub fn is_empty(&self) -> bool {
        self.running == 0 && self.overflow.is_empty()
    }

    /// Commands running.
    pub fn len(&self) -> usize {
        self.running + self.overflow.len()
    }

    /// Slots allocated so far (each holds one command future inline).
    pub fn allocated(&self) -> usize {
        self.futures.len()
    }

    /// Starts `task` and polls it once; returns its completion if it finished at once.
    pub fn start(&mut self, task: Task<F>) -> Option<Completion> {
        let Some(index) = self.free_slot() else {
            self.overflow.push(Box::pin(task));
            // Polled through the overflow bit, like any woken command.
            self.ready.mark(self.capacity);
            return None;
        };
        self.running += 1;
        if let Some(slot) = self.futures.get_mut(index) {
            slot.set(Some(task));
        }
        self.poll_slot(index)
    }

    fn free_slot(&mut self) -> Option<usize> {
        if let Some(i) = self.free.pop() {
            return Some(i);
        }
        let index = self.futures.len();
        if index >= self.capacity {
            return None;
        }
        self.futures.push(Box::pin(None));
        self.wakers.push(Waker::from(Arc::new(SlotWake {
            index,
            ready: self.ready.clone(),
        })));
        Some(index)
    }

    /// Polls slot `index` with its waker; frees it and returns the completion when done.
    fn poll_slot(&mut self, index: usize) -> Option<Completion> {
        let (slot, waker) = (self.futures.get_mut(index)?, self.wakers.get(index)?);
        let fut = slot.as_mut().as_pin_mut()?;
        let mut cx = Context::from_waker(waker);
        match fut.poll(&mut cx) {
            Poll::Pending => None,
            Poll::Ready(done) => {
                slot.set(None);
                self.free.push(index);
                self.running -= 1;
                Some(done)
            }
        }
    }

    /// Whether some command has been woken and waits to be polled.
    pub fn has_woken(&self) -> bool {
        self.ready.any()
    }

    /// Waits until some command has been woken (call it only while commands run).
    pub fn woken(&self) -> impl Future<Output = ()> + Send + use<'_, F> {
        // Borrows only the atomic ready set, so the connection future stays `Send`.
        let ready: &ReadySet = &self.ready;
        std::future::poll_fn(move |cx| {
            ready.task.register(cx.waker());
            if ready.any() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }

    /// Polls every woken command once; appends the completions of those that finished.
    pub fn poll_woken(&mut self, done: &mut Vec<Completion>) {
        for w in 0..self.ready.words.len() {
            let mut bits = match self.ready.words.get(w) {
                Some(word) => word.swap(0, Ordering::AcqRel),
                None => 0,
            };
            while bits != 0 {
                let bit = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let index = w * 64 + bit;
                if index == self.capacity {
                    self.poll_overflow(done);
                } else if let Some(c) = self.poll_slot(index) {
                    done.push(c);
                }
            }
        }
    }

    fn poll_overflow(&mut self, done: &mut Vec<Completion>) {
        let mut cx = Context::from_waker(&self.overflow_waker);
        while let Poll::Ready(Some(c)) = self.overflow.poll_next_unpin(&mut cx) {
            done.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    type Fut = Pin<Box<dyn Future<Output = Completion> + Send>>;

    fn waiting(rx: oneshot::Receiver<u16>) -> Task<Fut> {
        Either::Left(Box::pin(
            async move { Completion::ok(rx.await.unwrap_or(0)) },
        ))
    }

    #[tokio::test]
    async fn ready_commands_complete_inline_and_reuse_their_slot() {
        let mut s: Slots<Fut> = Slots::new(2);
        for cid in 0..10 {
            let c = s.start(Either::Left(Box::pin(async move { Completion::ok(cid) })));
            assert_eq!(c.map(|c| c.cid), Some(cid));
        }
        assert_eq!(s.allocated(), 1);
        assert!(s.is_empty());
    }

    #[tokio::test]
    async fn woken_commands_are_polled_and_overflow_still_runs() {
        let mut s: Slots<Fut> = Slots::new(2);
        let mut senders = Vec::new();
        for _ in 0..3 {
            let (tx, rx) = oneshot::channel();
            assert!(s.start(waiting(rx)).is_none());
            senders.push(tx);
        }
        assert_eq!((s.allocated(), s.len()), (2, 3));
        let mut done = Vec::new();
        for (i, tx) in senders.into_iter().enumerate().rev() {
            // Woken from another thread.
            std::thread::spawn(move || tx.send(u16::try_from(i).unwrap()).unwrap())
                .join()
                .unwrap();
            tokio::time::timeout(std::time::Duration::from_secs(5), s.woken())
                .await
                .unwrap();
            s.poll_woken(&mut done);
        }
        let mut cids: Vec<u16> = done.iter().map(|c| c.cid).collect();
        cids.sort_unstable();
        assert_eq!(cids, [0, 1, 2]);
        assert!(s.is_empty());
    }
}
