//! [`Queue`]: one NVMe/TCP queue (one TCP connection) shared by any number of tasks, each of
//! which submits commands and awaits their completions; commands are pipelined and complete
//! out of order.
//!
//! Layout: the [`QueueCore`] sits behind a `std::sync::Mutex` held only for short,
//! non-blocking sections (no `.await` inside). A submitter encodes its capsule and writes it
//! straight to the socket with a non-blocking vectored write under that lock, so the common
//! case costs no task switch; what the socket does not take is left for the driver task
//! (`driver.rs`), which owns the receive side, answers R2Ts, flushes leftovers when the socket
//! becomes writable and wakes the tasks whose commands completed. A semaphore with one permit
//! per command slot makes submitters wait, rather than fail, when the queue is full.

mod driver;
mod future;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::host::link::Link;
use tokio::sync::{Notify, Semaphore, watch};

pub use future::CommandFuture;

use crate::host::core::{Command, Completion, QueueCore, QueueParams};
use crate::host::error::HostError;
use crate::host::owned::OwnedQueue;
use crate::host::transport::Negotiated;

/// State shared by the queue handles, the driver task and the command futures.
#[derive(Debug)]
pub(crate) struct Shared {
    stream: Link,
    core: Mutex<QueueCore>,
    /// One permit per free command slot.
    slots: Semaphore,
    /// Output is left that the socket did not take: the driver must wait for writability.
    wake_driver: Notify,
    closing: AtomicBool,
    close_notify: Notify,
    /// The error that ended the queue, once the driver has stopped.
    ended: watch::Sender<Option<HostError>>,
    params: QueueParams,
    negotiated: Negotiated,
    peer: SocketAddr,
}

impl Shared {
    /// Locks the core. A panic while holding the lock cannot leave the core half-updated in a
    /// way that matters more than the panic itself, so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, QueueCore> {
        self.core
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Returns the permits of slots freed during `core`'s last operations.
    fn release_slots(&self, core: &mut QueueCore) {
        let n = core.take_released();
        if n > 0 {
            self.slots.add_permits(n);
        }
    }

    /// Sends what the core has queued, without blocking. Leftovers go to the driver.
    fn flush_locked(&self, core: &mut QueueCore) {
        let stream = &self.stream;
        let staged = stream.flush_staged();
        match staged.and_then(|_| core.tx().flush_with(|s| stream.try_write_vectored(s))) {
            Ok(true) if !stream.has_staged() => {}
            Ok(_) => self.wake_driver.notify_one(),
            Err(e) => {
                core.fail(HostError::io("send", e), &[]);
                self.wake_driver.notify_one();
            }
        }
    }

    /// Submits under the lock and writes through; on failure the slot's permit goes back.
    fn submit_now(&self, cmd: Command) -> Result<(u16, u16), HostError> {
        let mut core = self.lock();
        match core.submit(cmd) {
            Ok(index) => {
                let cid = core.cid_of(index).unwrap_or(0);
                self.flush_locked(&mut core);
                Ok((index, cid))
            }
            Err(e) => {
                drop(core);
                self.slots.add_permits(1);
                Err(e)
            }
        }
    }

    fn request_close(&self) {
        self.closing.store(true, Ordering::Release);
        self.close_notify.notify_one();
    }
}

/// Closes the queue when the last [`Queue`] handle goes.
#[derive(Debug)]
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.request_close();
    }
}

/// A shared handle to one queue. Cloning is cheap; the queue closes when the last clone is
/// dropped or [`Queue::close`] is called.
#[derive(Debug, Clone)]
pub struct Queue {
    handle: Arc<Handle>,
    command_timeout: Duration,
}

impl Queue {
    /// Starts the driver task of `owned` on the current tokio runtime and returns the handle.
    pub fn spawn(owned: OwnedQueue, command_timeout: Duration) -> Self {
        let negotiated = owned.negotiated();
        let peer = owned.peer();
        let OwnedQueue {
            stream,
            reader,
            core,
            ..
        } = owned;
        let mut core = core;
        // Slots freed while the queue was owned are already counted in `free` below, and the
        // commands that ended then (Connect) were collected by their owner.
        core.take_released();
        core.drain_ready(|_, _| {});
        let params = *core.params();
        let free = core.capacity().saturating_sub(core.in_use());
        let (ended, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            stream,
            core: Mutex::new(core),
            slots: Semaphore::new(free),
            wake_driver: Notify::new(),
            closing: AtomicBool::new(false),
            close_notify: Notify::new(),
            ended,
            params,
            negotiated,
            peer,
        });
        tokio::spawn(driver::run(Arc::clone(&shared), reader));
        Self {
            handle: Arc::new(Handle { shared }),
            command_timeout,
        }
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// Queue identifier (0: admin queue).
    pub fn qid(&self) -> u16 {
        self.shared().params.qid
    }

    /// The queue's negotiated parameters and limits.
    pub fn params(&self) -> QueueParams {
        self.shared().params
    }

    /// What the IC exchange settled.
    pub fn negotiated(&self) -> Negotiated {
        self.shared().negotiated
    }

    /// The target's address.
    pub fn peer(&self) -> SocketAddr {
        self.shared().peer
    }

    /// The default limit of [`Queue::execute`].
    pub fn command_timeout(&self) -> Duration {
        self.command_timeout
    }

    /// Commands in flight (submitted and not yet collected).
    pub fn in_flight(&self) -> usize {
        self.shared().lock().in_use()
    }

    /// Submits `cmd` and returns a future of its completion, without a time limit (what an
    /// Asynchronous Event Request needs). Waits for a free slot when the queue is full.
    /// Dropping the future abandons the command: its slot is freed when the target completes
    /// it.
    pub async fn start(&self, cmd: Command) -> Result<CommandFuture, HostError> {
        let shared = Arc::clone(self.shared());
        let permit = shared
            .slots
            .acquire()
            .await
            .map_err(|_| self.closed_error())?;
        permit.forget();
        let (index, cid) = shared.submit_now(cmd)?;
        Ok(CommandFuture::new(shared, index, cid))
    }

    /// Submits `cmd` and waits for its completion for at most the queue's command timeout.
    /// The completion is returned whatever its status (see [`Completion::into_result`]).
    pub async fn execute(&self, cmd: Command) -> Result<Completion, HostError> {
        self.execute_within(cmd, self.command_timeout).await
    }

    /// [`Queue::execute`] with an explicit limit.
    pub async fn execute_within(
        &self,
        cmd: Command,
        limit: Duration,
    ) -> Result<Completion, HostError> {
        let run = async { self.start(cmd).await?.await };
        tokio::time::timeout(limit, run)
            .await
            .map_err(|_| HostError::Timeout {
                op: "command",
                after: limit,
            })?
    }

    /// Closes the connection now (TCP shutdown); commands in flight fail with
    /// [`HostError::QueueClosed`].
    pub fn close(&self) {
        self.shared().request_close();
    }

    /// Whether the queue has stopped (closed here, closed by the target, or failed).
    pub fn is_closed(&self) -> bool {
        self.shared().ended.borrow().is_some()
    }

    /// Waits until the queue stops and returns why.
    pub async fn closed(&self) -> HostError {
        let mut rx = self.shared().ended.subscribe();
        loop {
            if let Some(e) = rx.borrow_and_update().clone() {
                return e;
            }
            if rx.changed().await.is_err() {
                return HostError::QueueClosed;
            }
        }
    }

    fn closed_error(&self) -> HostError {
        let dead = self.shared().lock().dead().cloned();
        dead.unwrap_or(HostError::QueueClosed)
    }
}
