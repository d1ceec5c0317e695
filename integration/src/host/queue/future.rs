//! [`CommandFuture`]: waits for one submitted command by polling its slot in the core. No
//! channel is allocated per command: the driver stores the outcome in the slot and wakes the
//! waker registered here.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::Shared;
use crate::host::core::Completion;
use crate::host::error::HostError;

/// The completion of one submitted command (see [`super::Queue::start`]).
#[derive(Debug)]
#[must_use = "dropping the future abandons the command"]
pub struct CommandFuture {
    shared: Arc<Shared>,
    index: u16,
    cid: u16,
    done: bool,
}

impl CommandFuture {
    pub(super) fn new(shared: Arc<Shared>, index: u16, cid: u16) -> Self {
        Self {
            shared,
            index,
            cid,
            done: false,
        }
    }

    /// The CID the command was sent with.
    pub fn cid(&self) -> u16 {
        self.cid
    }
}

impl Future for CommandFuture {
    type Output = Result<Completion, HostError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.done {
            return Poll::Ready(Err(HostError::QueueClosed));
        }
        let (index, cid) = (self.index, self.cid);
        let mut core = self.shared.lock();
        if let Some(outcome) = core.take(index, cid) {
            self.shared.release_slots(&mut core);
            drop(core);
            self.done = true;
            return Poll::Ready(outcome);
        }
        core.set_waker(index, cid, cx.waker());
        Poll::Pending
    }
}

impl Drop for CommandFuture {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut core = self.shared.lock();
        core.abandon(self.index, self.cid);
        self.shared.release_slots(&mut core);
    }
}
