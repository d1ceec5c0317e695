//! The queue loop: what one connection does after the IC exchange.
//!
//! Until a Fabrics Connect arrives the queue is unbound and accepts nothing else (Command
//! Sequence Error). Connect binds it to a controller as its admin queue or one of its I/O
//! queues. Commands then run concurrently as futures polled by this task; their completions go
//! out in completion order, reads as C2HData (with the SUCCESS flag and no response capsule when
//! the host disabled SQ flow control), everything else as a response capsule carrying the SQ
//! head pointer.
//!
//! Commands live in [`Slots`]: I/O command futures are stored inline in slots allocated once
//! per queue and polled first right where they start, so a RAM or null read or write
//! completes inline without allocating; their completions are collected per wake-up and go
//! out together with one vectored write. Read data goes out in buffers from the queue's
//! [`DataPool`], which come back for reuse once the socket has taken them.
//!
//! The loop and the completions are here; `intake` decodes PDUs and admits commands (CIDs,
//! SQ size, digests, transfers), `binding` starts them and binds the queue at Connect.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use lamina_protocol::Pdu;
use lamina_protocol::fabrics::{
    ConnectCommand, ConnectData, FabricsCommandType, fabrics_command_type,
};
use lamina_protocol::nvme::{AdminOpcode, Cqe, DataDirection, Sqe, Status, StatusCode};
use lamina_protocol::tcp::{
    C2hData, CapsuleCmd, DataLocation, Fes, H2cData, PduType, R2t, TermReq,
};
use tokio_util::sync::CancellationToken;

use futures::future::Either;

mod binding;
mod intake;

use super::admission::Ticket;
use super::cids::CidSet;
use super::connection::{ConnError, DRAIN_TIMEOUT, Wire, decode_failure, violation};
use super::pool::DataPool;
use super::slots::Slots;
use super::transfer::{Transfers, Violation};
use crate::command::{After, Completion, QueueCtx, Request};
use crate::context::Target;
use crate::controller::OobReceiver;
use crate::controller::connect::{ConnectSite, Joined, connect};
use crate::dispatch::{Dispatched, Started};

/// Input handled between two sends of the completions ready (see `read_and_dispatch`).
const ANSWER_EVERY: usize = 32 * 1024;

/// Bytes a PDU carried on the wire, near enough to pace `ANSWER_EVERY` (data payloads and
/// a command capsule's header).
fn pdu_len(pdu: &Pdu) -> usize {
    match pdu {
        Pdu::CapsuleCmd(c) => 72 + c.data.len(),
        Pdu::H2cData(d) => 24 + d.data.len(),
        _ => 8,
    }
}

/// Offset of the CID in a command capsule PDU (common header, then the SQE's CDW0).
const CAPSULE_CID_OFFSET: u32 = 8 + 2;

/// Output queued past which a batch starts being written before it ends.
const EAGER_FLUSH_BYTES: usize = 64 * 1024;

/// Why a queue ended normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueExit {
    /// The host closed the TCP connection.
    HostClosed,
    /// Fabrics Disconnect.
    Disconnected,
    /// The controller was torn down (KATO expiry, admin queue gone, reset).
    TornDown,
    /// The target is shutting down.
    Shutdown,
}

/// A queue bound to a controller by Connect.
#[derive(Debug)]
struct Bound {
    ctx: QueueCtx,
    token: CancellationToken,
    oob: Option<OobReceiver>,
    registration: Option<u64>,
    sqsize: u16,
    /// Reads may end with C2HData SUCCESS (SQ flow control off and the option on).
    c2h_success: bool,
    /// Keeps the controller registered until this queue has finished (dropped by `unbind`,
    /// which runs after the last command completed).
    _hold: lamina_lvol::drain::DrainGuard,
}

/// How a bound queue starts a command: `crate::dispatch::execute`, whose I/O future type is
/// the slots' inline type.
type Exec<F> = fn(&QueueCtx, Request) -> Dispatched<F>;

/// The state of one queue.
#[derive(Debug)]
pub struct Queue<F> {
    target: Arc<Target>,
    site: ConnectSite,
    bound: Option<Bound>,
    exec: Exec<F>,
    slots: Slots<F>,
    /// Completions collected from one round of woken commands (capacity kept).
    done: Vec<Completion>,
    data_pool: DataPool,
    max_io_size: u32,
    transfers: Transfers,
    inflight_cids: CidSet,
    sqhd: u16,
    closing: bool,
    /// Decoding stopped with PDUs left in the read buffer because the output backed up.
    input_paused: bool,
    violations: crate::telemetry::ViolationLog,
}

/// A new, unbound queue whose I/O commands run inline in its slots.
pub fn new_queue(
    target: Arc<Target>,
    local: SocketAddr,
    peer: SocketAddr,
) -> Queue<impl Future<Output = Completion> + Send + 'static + use<>> {
    Queue::with_exec(target, local, peer, crate::dispatch::execute)
}

impl<F: Future<Output = Completion> + Send + 'static> Queue<F> {
    /// A new, unbound queue starting its commands with `exec`.
    pub fn with_exec(
        target: Arc<Target>,
        local: SocketAddr,
        peer: SocketAddr,
        exec: Exec<F>,
    ) -> Self {
        let opts = target.options();
        let depth = opts.max_queue_depth.max(opts.max_aq_depth);
        Self {
            target,
            site: ConnectSite { local, peer },
            bound: None,
            exec,
            slots: Slots::new(usize::from(depth)),
            done: Vec::new(),
            data_pool: DataPool::new(usize::from(depth)),
            max_io_size: opts.max_io_size,
            transfers: Transfers::with_capacity(depth),
            inflight_cids: CidSet::new(),
            sqhd: 0,
            closing: false,
            input_paused: false,
            violations: crate::telemetry::ViolationLog::default(),
        }
    }

    /// Runs the queue until it ends. Commands still running then are not dropped: they run
    /// to completion first (their completions go nowhere), so no device operation outlives the
    /// guards that protect what it touches, and the controller is released only once nothing
    /// it started is still writing.
    pub async fn run(
        mut self,
        wire: &mut Wire,
        root: CancellationToken,
        ticket: &mut Ticket,
        connect_by: tokio::time::Instant,
    ) -> Result<QueueExit, ConnError> {
        let result = self.serve(wire, &root, ticket, connect_by).await;
        self.finish_in_flight().await;
        self.unbind();
        result
    }

    /// Waits for every command still running (after the queue ended).
    async fn finish_in_flight(&mut self) {
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

    async fn serve(
        &mut self,
        wire: &mut Wire,
        root: &CancellationToken,
        ticket: &mut Ticket,
        connect_by: tokio::time::Instant,
    ) -> Result<QueueExit, ConnError> {
        self.decode_buffered(wire)?;
        loop {
            if self.bound.is_some() {
                ticket.connected();
            }
            wire.out.flush(&wire.stream)?;
            if self.closing && self.slots.is_empty() {
                wire.flush_all(DRAIN_TIMEOUT).await?;
                return Ok(QueueExit::Disconnected);
            }
            let token = self
                .bound
                .as_ref()
                .map_or_else(|| root.clone(), |b| b.token.clone());
            if self.input_paused && !self.closing && !wire.is_backlogged() {
                // The host read enough: go on with the PDUs that were already buffered.
                self.decode_buffered(wire)?;
            }
            let want_read = !self.closing && !wire.is_backlogged();
            let unbound = self.bound.is_none();
            let oob = self.bound.as_mut().and_then(|b| b.oob.as_mut());
            let running = !self.slots.is_empty();
            tokio::select! {
                biased;
                () = token.cancelled() => return self.on_cancel(wire, root).await,
                () = tokio::time::sleep_until(connect_by), if unbound => {
                    ticket.on_connect_timeout();
                    return Err(ConnError::Timeout);
                }
                () = self.slots.woken(), if running => self.run_woken(wire),
                Some(cqe) = recv_oob(oob) => self.send_completion(wire, Completion {
                    dw0: cqe.dw0,
                    dw1: cqe.dw1,
                    ..Completion::with_status(cqe.cid, cqe.status)
                }),
                r = wire.stream.readable(), if want_read => {
                    r?;
                    if self.read_and_dispatch(wire)? {
                        return Ok(QueueExit::HostClosed);
                    }
                }
                r = wire.stream.writable(), if !wire.out.is_empty() => r?,
            }
        }
    }

    /// The queue's token fired: shutdown drains, teardown just closes.
    async fn on_cancel(
        &mut self,
        wire: &mut Wire,
        root: &CancellationToken,
    ) -> Result<QueueExit, ConnError> {
        if !root.is_cancelled() {
            return Ok(QueueExit::TornDown);
        }
        let drain = async {
            while !self.slots.is_empty() {
                self.slots.woken().await;
                self.run_woken(wire);
            }
        };
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, drain).await;
        let _ = wire.flush_all(Duration::from_secs(2)).await;
        Ok(QueueExit::Shutdown)
    }

    /// Polls the woken commands and sends the completions of those that finished.
    fn run_woken(&mut self, wire: &mut Wire) {
        let mut done = std::mem::take(&mut self.done);
        self.slots.poll_woken(&mut done);
        for c in done.drain(..) {
            self.complete(wire, c);
        }
        self.done = done;
    }

    /// A command finished: send its data and completion.
    pub(super) fn complete(&mut self, wire: &mut Wire, done: Completion) {
        if done.after == After::CloseQueue {
            self.closing = true;
        }
        self.send_completion(wire, done);
        // Small completions wait for the end of the batch and go out in one writev; once
        // this much is queued (large reads), start sending, so the host works on the first
        // data while the next commands run. A failure shows again at the loop's own flush.
        if wire.out.queued_bytes() >= EAGER_FLUSH_BYTES {
            let _ = wire.out.flush(&wire.stream);
        }
    }

    pub(super) fn send_completion(&mut self, wire: &mut Wire, done: Completion) {
        self.inflight_cids.remove(done.cid);
        self.send_completion_keep_cid(wire, done);
    }

    pub(super) fn send_completion_keep_cid(&mut self, wire: &mut Wire, mut done: Completion) {
        let success = done.status == Status::SUCCESS;
        if let (true, Some(data)) = (success, done.data.take()) {
            let c2h_success = self.c2h_success_allowed();
            let pdu = C2hData {
                cccid: done.cid,
                datao: 0,
                last_pdu: true,
                success: c2h_success,
                data,
            };
            wire.out.push_c2h_data(&pdu, wire.tx);
            if c2h_success && done.dw0 == 0 && done.dw1 == 0 {
                return;
            }
        }
        let mut cqe = Cqe::new(done.cid, done.status);
        cqe.dw0 = done.dw0;
        cqe.dw1 = done.dw1;
        self.send_cqe(wire, cqe);
    }

    pub(super) fn send_cqe(&mut self, wire: &mut Wire, mut cqe: Cqe) {
        cqe.sqhd = self.sqhd;
        cqe.sqid = self.bound.as_ref().map_or(0, |b| b.ctx.qid);
        wire.out.push_cqe(cqe, wire.tx);
    }

    pub(super) fn c2h_success_allowed(&self) -> bool {
        self.bound.as_ref().is_some_and(|b| b.c2h_success)
    }
}

async fn recv_oob(oob: Option<&mut OobReceiver>) -> Option<Cqe> {
    match oob {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The data direction of a command: its opcode's, or for Fabrics commands its FCTYPE's.
fn direction_of(sqe: &Sqe) -> DataDirection {
    match fabrics_command_type(sqe) {
        Some(t) if sqe.opcode == AdminOpcode::FABRICS.0 => DataDirection::of(t.0),
        _ => DataDirection::of(sqe.opcode),
    }
}
