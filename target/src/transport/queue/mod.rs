//! The controller side of one queue: what the sans-IO [`TargetQueue`] core hands up (Connect,
//! commands whose data is all here) is bound to a controller and run, and completions go
//! back down to the core, which encodes them. The socket is not here: the connection task
//! (`super::connection`) reads bytes into the core and writes what it hands back.
//!
//! Commands live in [`Slots`]: I/O command futures are stored inline in slots allocated once
//! per queue and polled first right where they start, so a RAM or null read or write
//! completes inline without allocating; completions are collected per wake-up and go out
//! together with one vectored write. Read data goes out in buffers from the queue's
//! [`DataPool`], which come back for reuse once the socket has taken them.

use std::future::Future;
use std::sync::Arc;

use bytes::BytesMut;
use lamina_protocol::nvme::Cqe;
use lamina_protocol::target::{Input, QueueConfig, TargetQueue};

use futures::future::Either;
use tokio_util::sync::CancellationToken;

mod binding;
mod observer;

use super::pool::DataPool;
use super::slots::Slots;
use crate::plane::DataPlane;
use crate::plane::command::{Completion, QueueCtx, Request};
use crate::plane::connect::ConnectSite;
use crate::plane::controller::OobReceiver;
use crate::plane::dispatch::{Dispatched, Started};
pub use observer::ConnObserver;

/// The queue core with this target's observer.
pub type Core = TargetQueue<ConnObserver>;

/// When a batch of completions starts being written before it ends: once this much output
/// is queued in at least [`EAGER_FLUSH_SEGMENTS`] segments (16 small reads: the host gets its
/// first completions, and refills its queue, while the rest of a burst runs), or once
/// [`EAGER_FLUSH_MAX`] is queued whatever its shape. Large reads wait for the second: 128 KiB
/// reads written one `writev` each (when 64 KiB alone started a write) cost a third of the
/// QD8 row's IOPS in `spdk_nvme_perf`'s same-run measurements, and SPDK sends what one poller
/// pass completed in one `sendmsg`.
pub const EAGER_FLUSH_BYTES: usize = 64 * 1024;
/// See [`EAGER_FLUSH_BYTES`].
pub const EAGER_FLUSH_SEGMENTS: usize = 32;
/// See [`EAGER_FLUSH_BYTES`].
pub const EAGER_FLUSH_MAX: usize = 1024 * 1024;

/// Whether enough output is queued to start writing it before the batch ends (see
/// [`EAGER_FLUSH_BYTES`]).
fn flush_now(core: &Core) -> bool {
    let bytes = core.pending_output();
    bytes >= EAGER_FLUSH_MAX
        || (bytes >= EAGER_FLUSH_BYTES && core.pending_segments() >= EAGER_FLUSH_SEGMENTS)
}

/// A queue bound to a controller by Connect.
#[derive(Debug)]
struct Bound {
    ctx: QueueCtx,
    token: CancellationToken,
    oob: Option<OobReceiver>,
    registration: Option<u64>,
    /// Keeps the controller registered until this queue has finished (dropped by `unbind`,
    /// which runs after the last command completed).
    _hold: lamina_lvol::drain::DrainGuard,
}

/// How a bound queue starts a command: `crate::plane::dispatch::execute`, whose I/O future type is
/// the slots' inline type.
type Exec<F> = fn(&QueueCtx, Request) -> Dispatched<F>;

/// What woke a queue besides its socket.
#[derive(Debug)]
pub enum QueueEvent {
    /// A running command was woken.
    Woken,
    /// An out-of-band completion of a parked command.
    Oob(Cqe),
}

async fn recv_oob(oob: Option<&mut OobReceiver>) -> Option<Cqe> {
    match oob {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The state of one queue above its core.
#[derive(Debug)]
pub struct Queue<F> {
    plane: Arc<DataPlane>,
    site: ConnectSite,
    /// The protocol rules and the output.
    pub core: Core,
    bound: Option<Bound>,
    exec: Exec<F>,
    slots: Slots<F>,
    /// Completions collected from one round of woken commands (capacity kept).
    done: Vec<Completion>,
    data_pool: DataPool,
    max_io_size: u32,
}

/// A new, unbound queue whose I/O commands run inline in its slots; `connect_by` bounds the
/// time to its ICReq and Connect.
pub fn new_queue(
    plane: Arc<DataPlane>,
    site: ConnectSite,
    connect_timeout: std::time::Duration,
) -> Queue<impl Future<Output = Completion> + Send + 'static + use<>> {
    Queue::with_exec(
        plane,
        site,
        connect_timeout,
        crate::plane::dispatch::execute,
    )
}

/// What the core enforces, from the target's options.
fn core_config(plane: &DataPlane, connect_timeout: std::time::Duration) -> QueueConfig {
    let opts = plane.options();
    let mut framer = lamina_protocol::FramerConfig::target();
    framer.max_data_len = opts.io_unit_size;
    framer.max_in_capsule_data = opts
        .in_capsule_data_size
        .max(crate::options::ADMIN_IN_CAPSULE_DATA);
    framer.max_plen = opts
        .io_unit_size
        .max(framer.max_in_capsule_data)
        .saturating_add(256);
    QueueConfig {
        framer,
        max_transfer: opts.max_io_size.max(crate::options::ADMIN_IN_CAPSULE_DATA),
        transfer_tags: opts.max_queue_depth.max(opts.max_aq_depth),
        // One R2T per write and one C2HData per read: the fewest PDUs (MDTS bounds both).
        max_r2t: u32::MAX,
        max_c2h_data: u32::MAX,
        c2h_success: opts.c2h_success,
        connect_timeout,
    }
}

impl<F: Future<Output = Completion> + Send + 'static> Queue<F> {
    /// A new, unbound queue starting its commands with `exec`.
    pub fn with_exec(
        plane: Arc<DataPlane>,
        site: ConnectSite,
        connect_timeout: std::time::Duration,
        exec: Exec<F>,
    ) -> Self {
        let opts = plane.options();
        let depth = opts.max_queue_depth.max(opts.max_aq_depth);
        let observer = ConnObserver::new(plane.transport_stats.clone());
        let core = TargetQueue::new(
            core_config(&plane, connect_timeout),
            observer,
            std::time::Instant::now(),
        );
        Self {
            site,
            core,
            bound: None,
            exec,
            slots: Slots::new(usize::from(depth)),
            done: Vec::new(),
            data_pool: DataPool::new(usize::from(depth)),
            max_io_size: opts.max_io_size,
            plane,
        }
    }

    /// The largest PDU the core accepts (sizes the read buffer).
    pub fn max_pdu(&self) -> u32 {
        self.core.config().framer.max_plen
    }

    /// Whether the target is shutting down (rather than this connection being evicted).
    pub fn shutting_down(&self) -> bool {
        self.plane.cancel.is_cancelled()
    }

    /// Whether a Connect bound the queue.
    pub fn is_bound(&self) -> bool {
        self.bound.is_some()
    }

    /// Whether a Connect bound it as an I/O queue.
    pub fn is_io_queue(&self) -> bool {
        self.bound.as_ref().is_some_and(|b| b.ctx.qid != 0)
    }

    /// Whether commands are running.
    pub fn is_running(&self) -> bool {
        !self.slots.is_empty()
    }

    /// The token that ends the queue: its controller's once bound, else `root`.
    pub fn token(&self, root: &CancellationToken) -> CancellationToken {
        self.bound
            .as_ref()
            .map_or_else(|| root.clone(), |b| b.token.clone())
    }

    /// Whether a running command has been woken (its completion may be ready).
    pub fn has_woken(&self) -> bool {
        self.slots.has_woken()
    }

    /// Waits until a running command has been woken.
    pub fn woken(&self) -> impl Future<Output = ()> + Send + use<'_, F> {
        self.slots.woken()
    }

    /// Waits until a running command has been woken or an out-of-band completion (an AER
    /// of the bound admin queue) arrives.
    pub async fn next_event(&mut self) -> QueueEvent {
        let running = !self.slots.is_empty();
        let slots = &self.slots;
        let oob = self.bound.as_mut().and_then(|b| b.oob.as_mut());
        tokio::select! {
            biased;
            () = slots.woken(), if running => QueueEvent::Woken,
            Some(cqe) = recv_oob(oob) => QueueEvent::Oob(cqe),
            else => std::future::pending().await,
        }
    }

    /// Sends an out-of-band completion of a parked command.
    pub fn on_oob(&mut self, cqe: Cqe) {
        self.core.complete_parked(Completion {
            dw0: cqe.dw0,
            dw1: cqe.dw1,
            ..Completion::with_status(cqe.cid, cqe.status)
        });
    }

    /// Acts on what one PDU came to. `true` when enough output is queued to start writing it.
    pub fn on_input(&mut self, input: Input) -> bool {
        match input {
            Input::NeedMore => {}
            Input::Handled { capsule } => {
                if capsule {
                    self.touch();
                }
            }
            Input::Connect(command) => {
                let c = self.on_connect(&command);
                self.core.complete(c);
            }
            Input::Command {
                command,
                gives_up_parked,
            } => {
                self.touch();
                if gives_up_parked {
                    self.give_up_parked(command.sqe.cid);
                }
                self.start(command);
            }
        }
        flush_now(&self.core)
    }

    fn touch(&self) {
        if let Some(b) = &self.bound {
            b.ctx.ctrl.touch();
        }
    }

    /// The host reused the CID of a parked AER: the controller forgets it.
    fn give_up_parked(&self, cid: u16) {
        if let Some(b) = self.bound.as_ref().filter(|b| b.ctx.qid == 0)
            && b.ctx.ctrl.abandon_aer(cid)
        {
            tracing::debug!(
                cid,
                "the host reused the CID of an outstanding AER: AER dropped"
            );
        }
    }

    /// Starts a command whose data is all here.
    fn start(&mut self, command: lamina_protocol::target::Command) {
        let Some(bound) = &self.bound else { return };
        // I/O reads fill a pooled buffer; admin commands build their own data.
        let buf = if bound.ctx.qid != 0 && command.c2h_len <= self.max_io_size {
            self.data_pool
                .take(usize::try_from(command.c2h_len).unwrap_or(0))
        } else {
            BytesMut::new()
        };
        let cid = command.sqe.cid;
        let req = Request {
            sqe: command.sqe,
            data: command.data,
            c2h_len: command.c2h_len,
            buf,
        };
        let task = match (self.exec)(&bound.ctx, req) {
            Dispatched::Done(c) => return self.core.complete(c),
            Dispatched::Io(f) => Either::Left(f),
            Dispatched::Other(Started::Running(f)) => Either::Right(f),
            Dispatched::Other(Started::Parked) => return self.core.park(cid),
        };
        if let Some(done) = self.slots.start(task) {
            self.core.complete(done);
        }
    }

    /// Polls the woken commands and hands their completions to the core; `flush` is called
    /// whenever enough output is queued to start writing it mid-batch (large reads), so the
    /// host works on the first data while the rest is encoded.
    pub fn run_woken(&mut self, mut flush: impl FnMut(&mut Core)) {
        let mut done = std::mem::take(&mut self.done);
        self.slots.poll_woken(&mut done);
        for c in done.drain(..) {
            self.core.complete(c);
            if flush_now(&self.core) {
                flush(&mut self.core);
            }
        }
        self.done = done;
    }

    /// Waits for every command still running (after the queue ended): their completions go
    /// nowhere, but no device operation outlives the guards that protect what it touches.
    pub async fn finish_in_flight(&mut self) {
        let left = self.slots.len();
        if left == 0 {
            return;
        }
        let started = std::time::Instant::now();
        let mut done = std::mem::take(&mut self.done);
        while !self.slots.is_empty() {
            self.slots.woken().await;
            self.slots.poll_woken(&mut done);
            done.clear();
        }
        self.done = done;
        tracing::debug!(commands = left, waited = ?started.elapsed(),
            "queue ended with commands in flight: they finished before it closed");
    }
}
