//! The queue loop: what one connection does after the IC exchange.
//!
//! Until a Fabrics Connect arrives the queue is unbound and accepts nothing else (Command
//! Sequence Error). Connect binds it to a controller as its admin queue or one of its I/O
//! queues. Commands then run concurrently as futures polled by this task; their completions go
//! out in completion order, reads as C2HData (with the SUCCESS flag and no response capsule when
//! the host disabled SQ flow control), everything else as a response capsule carrying the SQ
//! head pointer.

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

use super::connection::{
    ConnError, DRAIN_TIMEOUT, Running, Wire, decode_failure, next_completion, violation,
};
use super::transfer::{Transfers, Violation};
use crate::command::{After, Completion, QueueCtx, Request};
use crate::context::Target;
use crate::controller::OobReceiver;
use crate::controller::connect::{ConnectSite, Joined, connect};

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
}

/// The state of one queue.
#[derive(Debug)]
pub struct Queue {
    target: Arc<Target>,
    site: ConnectSite,
    bound: Option<Bound>,
    running: Running,
    transfers: Transfers,
    inflight_cids: std::collections::HashSet<u16>,
    sqhd: u16,
    closing: bool,
    violations: crate::telemetry::ViolationLog,
}

impl Queue {
    /// A new, unbound queue.
    pub fn new(target: Arc<Target>, local: SocketAddr, peer: SocketAddr) -> Self {
        let depth = target
            .options()
            .max_queue_depth
            .max(target.options().max_aq_depth);
        Self {
            target,
            site: ConnectSite { local, peer },
            bound: None,
            running: Running::new(),
            transfers: Transfers::with_capacity(depth),
            inflight_cids: std::collections::HashSet::new(),
            sqhd: 0,
            closing: false,
            violations: crate::telemetry::ViolationLog::default(),
        }
    }

    /// Runs the queue until it ends.
    pub async fn run(
        mut self,
        wire: &mut Wire,
        root: CancellationToken,
    ) -> Result<QueueExit, ConnError> {
        let result = self.serve(wire, &root).await;
        self.unbind();
        result
    }

    async fn serve(
        &mut self,
        wire: &mut Wire,
        root: &CancellationToken,
    ) -> Result<QueueExit, ConnError> {
        loop {
            wire.out.flush(&wire.stream)?;
            if self.closing && self.running.is_empty() {
                wire.flush_all(DRAIN_TIMEOUT).await?;
                return Ok(QueueExit::Disconnected);
            }
            let token = self
                .bound
                .as_ref()
                .map_or_else(|| root.clone(), |b| b.token.clone());
            let want_read = !self.closing && !wire.is_backlogged();
            let oob = self.bound.as_mut().and_then(|b| b.oob.as_mut());
            tokio::select! {
                biased;
                () = token.cancelled() => return self.on_cancel(wire, root).await,
                Some(done) = next_completion(&mut self.running) => self.complete(wire, done),
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
            while !self.running.is_empty() {
                let Some(done) = next_completion(&mut self.running).await else {
                    break;
                };
                self.complete(wire, done);
            }
        };
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, drain).await;
        let _ = wire.flush_all(Duration::from_secs(2)).await;
        Ok(QueueExit::Shutdown)
    }

    /// Reads and handles every PDU available; `Ok(true)` when the host closed.
    fn read_and_dispatch(&mut self, wire: &mut Wire) -> Result<bool, ConnError> {
        match wire.read_available() {
            Ok(0) => return Ok(true),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        loop {
            match wire.next_pdu() {
                Ok(Some(pdu)) => self.on_pdu(wire, pdu)?,
                Ok(None) => return Ok(false),
                Err(lamina_protocol::DecodeError::DataDigest {
                    command_id,
                    pdu_type,
                    ..
                }) => {
                    self.on_data_digest_error(wire, pdu_type, command_id);
                }
                Err(e) => return Err(decode_failure(wire, &e)),
            }
        }
    }

    fn on_pdu(&mut self, wire: &mut Wire, pdu: Pdu) -> Result<(), ConnError> {
        match pdu {
            Pdu::CapsuleCmd(cmd) => {
                self.on_command(wire, cmd);
                Ok(())
            }
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
    /// the stream stays in sync, so the connection lives on.
    fn on_data_digest_error(&mut self, wire: &mut Wire, pdu_type: PduType, cid: u16) {
        crate::violation!(
            self.violations,
            cid,
            ?pdu_type,
            "data digest error: completing the command with Transient Transport Error"
        );
        if pdu_type == PduType::CAPSULE_CMD {
            // The capsule took an SQ slot even though its command never starts.
            self.sqhd = self.next_sqhd();
        } else {
            self.transfers.abort_command(cid);
        }
        let c = Completion::with_status(cid, Status::new(StatusCode::TRANSIENT_TRANSPORT_ERROR));
        self.send_completion(wire, c);
    }

    fn on_command(&mut self, wire: &mut Wire, cmd: CapsuleCmd) {
        let sqe = cmd.sqe;
        self.sqhd = self.next_sqhd();
        if let Some(b) = &self.bound {
            b.ctx.ctrl.touch();
        }
        if !self.inflight_cids.insert(sqe.cid) {
            let c = Completion::error(sqe.cid, StatusCode::COMMAND_ID_CONFLICT);
            // The original command keeps its CID; answer the duplicate without releasing it.
            self.send_completion_keep_cid(wire, &c);
            return;
        }
        let location = match cmd.data_location() {
            Ok(l) => l,
            Err(code) => return self.send_completion(wire, Completion::error(sqe.cid, code)),
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
                    },
                );
            }
            (DataLocation::Transport(len), DataDirection::HostToController) => {
                self.start_transfer(wire, sqe, len);
            }
            (DataLocation::Transport(len), DataDirection::ControllerToHost) => {
                self.dispatch(
                    wire,
                    Request {
                        sqe,
                        data: Bytes::new(),
                        c2h_len: len,
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
                    },
                );
            }
            _ => self.send_completion(wire, Completion::error(sqe.cid, StatusCode::INVALID_FIELD)),
        }
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
        match crate::dispatch::execute(&bound.ctx, req) {
            crate::dispatch::Started::Running(f) => self.running.push(f),
            crate::dispatch::Started::Parked => {}
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
        };
        self.bound = Some(Bound {
            ctx,
            token,
            oob,
            registration,
            sqsize,
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
    }

    fn send_completion(&mut self, wire: &mut Wire, done: Completion) {
        self.inflight_cids.remove(&done.cid);
        self.send_completion_keep_cid(wire, &done);
    }

    fn send_completion_keep_cid(&mut self, wire: &mut Wire, done: &Completion) {
        let success = done.status == Status::SUCCESS;
        if let (true, Some(data)) = (success, &done.data) {
            let c2h_success = self.c2h_success_allowed();
            let pdu = C2hData {
                cccid: done.cid,
                datao: 0,
                last_pdu: true,
                success: c2h_success,
                data: data.clone(),
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
        self.bound.as_ref().is_some_and(|b| {
            b.ctx.ctrl.sq_flow_control_disabled() && self.target.options().c2h_success
        })
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
