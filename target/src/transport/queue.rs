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

    /// Reads and handles every PDU available; `Ok(true)` when the host closed.
    fn read_and_dispatch(&mut self, wire: &mut Wire) -> Result<bool, ConnError> {
        match wire.read_available() {
            Ok(0) => return Ok(true),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        self.decode_buffered(wire)?;
        Ok(false)
    }

    /// Handles every complete PDU in the read buffer (including any that arrived in the same
    /// segment as the ICReq, before the queue loop started), until the output backs up: a
    /// host that does not read its completions gets no more commands started, so what it
    /// costs is bounded by the output high-water mark, not by how much it sent.
    fn decode_buffered(&mut self, wire: &mut Wire) -> Result<(), ConnError> {
        let mut since_flush = 0usize;
        self.input_paused = false;
        loop {
            if wire.is_backlogged() {
                wire.out.flush(&wire.stream)?;
                if wire.is_backlogged() {
                    self.input_paused = true;
                    return Ok(());
                }
            }
            match wire.next_pdu() {
                Ok(Some(pdu)) => {
                    since_flush += pdu_len(&pdu);
                    self.on_pdu(wire, pdu)?;
                    // Send what has completed so far every ANSWER_EVERY bytes of input, so a
                    // host that sent a burst gets its first completions (and refills) while
                    // the rest of the burst runs, instead of the two sides taking turns.
                    if since_flush >= ANSWER_EVERY {
                        since_flush = 0;
                        wire.out.flush(&wire.stream)?;
                    }
                }
                Ok(None) => return Ok(()),
                Err(lamina_protocol::DecodeError::DataDigest {
                    command_id,
                    pdu_type,
                    ..
                }) => {
                    self.on_data_digest_error(wire, pdu_type, command_id)?;
                }
                Err(e) => return Err(decode_failure(wire, &e)),
            }
        }
    }

    fn on_pdu(&mut self, wire: &mut Wire, pdu: Pdu) -> Result<(), ConnError> {
        match pdu {
            Pdu::CapsuleCmd(cmd) => self.on_command(wire, cmd),
            Pdu::H2cData(data) => self.on_h2c_data(wire, &data),
            Pdu::H2cTermReq(t) => Err(ConnError::HostTerminated(t.fes)),
            _ => Err(violation(
                wire,
                Fes::PDU_SEQUENCE_ERROR,
                0,
                "unexpected PDU after the IC exchange",
            )),
        }
    }

    /// Data digest mismatch: the command fails with Transient Transport Error (NVMe/TCP 1.0);
    /// the stream stays in sync, so the connection lives on. A capsule whose CID is still in
    /// flight is a duplicate all the same (a transport error), and H2CData for no transfer of
    /// that CID is a sequence error: neither may release another command's CID.
    fn on_data_digest_error(
        &mut self,
        wire: &mut Wire,
        pdu_type: PduType,
        cid: u16,
    ) -> Result<(), ConnError> {
        crate::violation!(
            self.violations,
            cid,
            ?pdu_type,
            "data digest error: completing the command with Transient Transport Error"
        );
        let c = Completion::with_status(cid, Status::new(StatusCode::TRANSIENT_TRANSPORT_ERROR));
        if pdu_type == PduType::CAPSULE_CMD {
            self.admit(wire, cid)?;
            // The capsule took an SQ slot even though its command never starts.
            self.sqhd = self.next_sqhd();
            self.send_completion(wire, c);
        } else if self.transfers.abort_command(cid) {
            self.send_completion(wire, c);
        } else {
            return Err(violation(
                wire,
                Fes::PDU_SEQUENCE_ERROR,
                0,
                "H2CData with a bad digest for no transfer in progress",
            ));
        }
        Ok(())
    }

    /// Takes `cid` into the in-flight set: a CID still in flight, or more commands than the
    /// SQ holds, end the connection with a transport error (NVMe/TCP 1.0 §3.3: a host must not
    /// reuse a CID in flight nor overrun the submission queue).
    fn admit(&mut self, wire: &mut Wire, cid: u16) -> Result<(), ConnError> {
        if !self.inflight_cids.insert(cid) {
            return Err(violation(
                wire,
                Fes::INVALID_HEADER_FIELD,
                CAPSULE_CID_OFFSET,
                "a command reused the CID of one still in flight",
            ));
        }
        let depth = self
            .bound
            .as_ref()
            .map_or(usize::from(u16::MAX), |b| usize::from(b.sqsize.max(1)));
        if self.inflight_cids.len() > depth {
            return Err(violation(
                wire,
                Fes::PDU_SEQUENCE_ERROR,
                0,
                "more commands in flight than the submission queue holds",
            ));
        }
        Ok(())
    }

    fn on_command(&mut self, wire: &mut Wire, cmd: CapsuleCmd) -> Result<(), ConnError> {
        let sqe = cmd.sqe;
        self.sqhd = self.next_sqhd();
        if let Some(b) = &self.bound {
            b.ctx.ctrl.touch();
        }
        self.admit(wire, sqe.cid)?;
        let location = match cmd.data_location() {
            Ok(l) => l,
            Err(code) => {
                self.send_completion(wire, Completion::error(sqe.cid, code));
                return Ok(());
            }
        };
        let direction = direction_of(&sqe);
        match (location, direction) {
            (
                DataLocation::InCapsule(_),
                DataDirection::HostToController | DataDirection::Bidirectional,
            ) => {
                self.dispatch(
                    wire,
                    Request {
                        sqe,
                        data: cmd.data,
                        c2h_len: 0,
                        buf: bytes::BytesMut::new(),
                    },
                );
            }
            (DataLocation::Transport(len), DataDirection::HostToController) => {
                self.start_transfer(wire, sqe, len);
            }
            (DataLocation::Transport(len), DataDirection::ControllerToHost)
                if len > self.max_io_size.max(crate::options::ADMIN_IN_CAPSULE_DATA) =>
            {
                // Beyond MDTS: refused before anything is built for it.
                self.send_completion(wire, Completion::error(sqe.cid, StatusCode::INVALID_FIELD));
            }
            (DataLocation::Transport(len), DataDirection::ControllerToHost) => {
                // I/O reads fill a pooled buffer; admin commands build their own data.
                let is_io = self.bound.as_ref().is_some_and(|b| b.ctx.qid != 0);
                let buf = if is_io && len <= self.max_io_size {
                    self.data_pool.take(usize::try_from(len).unwrap_or(0))
                } else {
                    BytesMut::new()
                };
                self.dispatch(
                    wire,
                    Request {
                        sqe,
                        data: Bytes::new(),
                        c2h_len: len,
                        buf,
                    },
                );
            }
            (DataLocation::None, _) => {
                self.dispatch(
                    wire,
                    Request {
                        sqe,
                        data: Bytes::new(),
                        c2h_len: 0,
                        buf: BytesMut::new(),
                    },
                );
            }
            _ => self.send_completion(wire, Completion::error(sqe.cid, StatusCode::INVALID_FIELD)),
        }
        Ok(())
    }

    fn next_sqhd(&self) -> u16 {
        let size = self.bound.as_ref().map_or(u16::MAX, |b| b.sqsize.max(1));
        if size == u16::MAX {
            self.sqhd.wrapping_add(1)
        } else {
            (self.sqhd + 1) % size
        }
    }

    fn start_transfer(&mut self, wire: &mut Wire, sqe: Sqe, len: u32) {
        let max = self
            .target
            .options()
            .max_io_size
            .max(crate::options::ADMIN_IN_CAPSULE_DATA);
        if len > max {
            return self
                .send_completion(wire, Completion::error(sqe.cid, StatusCode::INVALID_FIELD));
        }
        let Some(ttag) = self.transfers.start(sqe, len) else {
            return self
                .send_completion(wire, Completion::error(sqe.cid, StatusCode::INTERNAL_ERROR));
        };
        let r2t = R2t {
            cccid: sqe.cid,
            ttag,
            r2to: 0,
            r2tl: len,
        };
        wire.out.push_r2t(&r2t, wire.tx);
    }

    fn on_h2c_data(&mut self, wire: &mut Wire, pdu: &H2cData) -> Result<(), ConnError> {
        match self.transfers.on_data(pdu) {
            Ok(None) => Ok(()),
            Ok(Some((sqe, data))) => {
                self.dispatch(
                    wire,
                    Request {
                        sqe,
                        data,
                        c2h_len: 0,
                        buf: BytesMut::new(),
                    },
                );
                Ok(())
            }
            Err(v) => Err(Self::h2c_violation(wire, pdu, v)),
        }
    }

    fn h2c_violation(wire: &mut Wire, pdu: &H2cData, v: Violation) -> ConnError {
        let mut head = BytesMut::new();
        let _ = pdu.encode_head(wire.tx, &mut head);
        head.truncate(lamina_protocol::ErrorHeader::MAX_LEN.min(head.len()));
        let term = TermReq {
            fes: v.fes,
            fei: if v.fes.has_fei() { v.field_offset } else { 0 },
            header: head.freeze(),
        };
        wire.terminate(&term);
        ConnError::Violation(v.what.to_owned())
    }

    /// Starts a command whose data is all here.
    fn dispatch(&mut self, wire: &mut Wire, req: Request) {
        let sqe = req.sqe;
        if fabrics_command_type(&sqe) == Some(FabricsCommandType::CONNECT) {
            let c = self.on_connect(&req);
            return self.send_completion(wire, c);
        }
        let Some(bound) = &self.bound else {
            return self.send_completion(
                wire,
                Completion::error(sqe.cid, StatusCode::COMMAND_SEQUENCE_ERROR),
            );
        };
        let task = match (self.exec)(&bound.ctx, req) {
            Dispatched::Io(f) => Either::Left(f),
            Dispatched::Other(Started::Running(f)) => Either::Right(f),
            Dispatched::Other(Started::Parked) => return,
        };
        if let Some(done) = self.slots.start(task) {
            self.complete(wire, done);
        }
    }

    fn on_connect(&mut self, req: &Request) -> Completion {
        let cid = req.sqe.cid;
        if self.bound.is_some() {
            return Completion::error(cid, StatusCode::COMMAND_SEQUENCE_ERROR);
        }
        let Ok(cmd) = ConnectCommand::try_from(&req.sqe) else {
            return Completion::error(cid, StatusCode::INVALID_FIELD);
        };
        let data = match ConnectData::decode(&req.data) {
            Ok(d) => d,
            Err(e) => {
                let mut c = Completion::error(cid, StatusCode::CONNECT_INVALID_PARAMETERS);
                if let Some(p) =
                    lamina_protocol::fabrics::ConnectInvalidParameter::from_data_error(&e)
                {
                    c.dw0 = p.dw0();
                } else {
                    c.status = Status::dnr(StatusCode::INVALID_FIELD);
                }
                return c;
            }
        };
        match connect(&self.target, &cmd, &data, self.site) {
            Ok((joined, cqe)) => {
                self.bind(joined, cmd.sqsize.saturating_add(1));
                Completion {
                    dw0: cqe.dw0,
                    ..Completion::ok(cid)
                }
            }
            Err(cqe) => {
                tracing::info!(subnqn = %data.subnqn.as_str(), hostnqn = %data.hostnqn.as_str(),
                    qid = cmd.qid, status = ?cqe.status.code, "connect refused");
                Completion {
                    dw0: cqe.dw0,
                    ..Completion::with_status(cid, cqe.status)
                }
            }
        }
    }

    fn bind(&mut self, joined: Joined, sqsize: u16) {
        let span = tracing::Span::current();
        let ctrl = joined.controller().clone();
        span.record("cntlid", ctrl.cntlid());
        span.record("hostnqn", ctrl.host().hostnqn.as_str());
        let (qid, token, oob, registration) = match joined {
            Joined::Admin { ctrl, oob } => (0, ctrl.cancel_token().child_token(), Some(oob), None),
            Joined::Io {
                qid,
                registration,
                token,
                ..
            } => (qid, token, None, Some(registration)),
        };
        span.record("qid", qid);
        let c2h_success = ctrl.sq_flow_control_disabled() && self.target.options().c2h_success;
        let gauge = if qid == 0 {
            &self.target.transport_stats.admin_queues
        } else {
            &self.target.transport_stats.io_queues
        };
        crate::stats::gauge_add(gauge, 1);
        if qid == 0 {
            tracing::info!(subnqn = %ctrl.subsystem().nqn(), "host connected: controller created");
        } else {
            tracing::debug!("I/O queue connected");
        }
        let ctx = QueueCtx {
            target: self.target.clone(),
            ctrl,
            qid,
            max_io_size: self.max_io_size,
        };
        self.bound = Some(Bound {
            ctx,
            token,
            oob,
            registration,
            sqsize,
            c2h_success,
        });
    }

    /// Releases the queue's hold on its controller.
    fn unbind(&mut self) {
        let Some(b) = self.bound.take() else { return };
        let stats = &self.target.transport_stats;
        let gauge = if b.ctx.qid == 0 {
            &stats.admin_queues
        } else {
            &stats.io_queues
        };
        crate::stats::gauge_add(gauge, -1);
        let ctrl = &b.ctx.ctrl;
        if b.ctx.qid == 0 {
            if !ctrl.is_torn_down() {
                tracing::info!(
                    "host disconnected: admin queue closed, tearing the controller down"
                );
            }
            ctrl.tear_down();
        } else if let Some(reg) = b.registration {
            ctrl.remove_io_queue(b.ctx.qid, reg);
        }
    }

    /// A command finished: send its data and completion.
    fn complete(&mut self, wire: &mut Wire, done: Completion) {
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

    fn send_completion(&mut self, wire: &mut Wire, done: Completion) {
        self.inflight_cids.remove(done.cid);
        self.send_completion_keep_cid(wire, done);
    }

    fn send_completion_keep_cid(&mut self, wire: &mut Wire, mut done: Completion) {
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

    fn send_cqe(&mut self, wire: &mut Wire, mut cqe: Cqe) {
        cqe.sqhd = self.sqhd;
        cqe.sqid = self.bound.as_ref().map_or(0, |b| b.ctx.qid);
        wire.out.push_cqe(cqe, wire.tx);
    }

    fn c2h_success_allowed(&self) -> bool {
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
