//! One connection of the mock target: the wire is `lamina_protocol::target::TargetQueue`'s
//! (IC exchange, Connect first, CIDs, SQ head, R2T/H2CData in `r2t_chunk` pieces, C2HData in
//! `c2h_chunk` pieces with SUCCESS when the host disabled SQ flow control, TermReqs); this
//! file moves bytes between the socket and that core, runs the mock's admin and I/O
//! commands, enforces KATO, completes AERs, and injects the wire faults (`BadDatao`,
//! `TermAfter`) a real target never makes.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use lamina_protocol::FramerConfig;
use lamina_protocol::nvme::{Sqe, Status, StatusCode};
use lamina_protocol::target::{Binding, Command, Completion, Input, QueueConfig, TargetQueue};
use lamina_protocol::tcp::{CommonHeader, DATA_DATAO_OFFSET, Fes, Pdu, PduType, TermReq, TxParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{CtrlEvent, Fault, Shared};

/// A command's answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: Status,
    pub(crate) dw0: u32,
    pub(crate) dw1: u32,
    pub(crate) data: Vec<u8>,
    /// No response now (an AER waits for an event; a fault drops it).
    pub(crate) defer: bool,
}

impl Reply {
    pub(crate) fn ok() -> Self {
        Self::status(Status::SUCCESS)
    }

    pub(crate) fn status(status: Status) -> Self {
        Self {
            status,
            dw0: 0,
            dw1: 0,
            data: Vec::new(),
            defer: false,
        }
    }

    pub(crate) fn error(code: StatusCode) -> Self {
        Self::status(Status::dnr(code))
    }

    pub(crate) fn dw0(dw0: u32) -> Self {
        Self { dw0, ..Self::ok() }
    }

    pub(crate) fn data(data: Vec<u8>) -> Self {
        Self { data, ..Self::ok() }
    }

    pub(crate) fn deferred() -> Self {
        Self {
            defer: true,
            ..Self::ok()
        }
    }
}

/// Connection state.
pub(crate) struct Conn {
    core: TargetQueue,
    pub(crate) shared: Arc<Shared>,
    pub(crate) qid: Option<u16>,
    pub(crate) cntlid: u16,
    pub(crate) sq_entries: u16,
    pub(crate) sqflow_disabled: bool,
    pub(crate) kato: Option<Duration>,
    pub(crate) aers: Vec<u16>,
    pub(crate) events_tx: mpsc::UnboundedSender<CtrlEvent>,
    last_admin: Instant,
    io_count: u32,
    closed: bool,
}

/// The queue core's configuration for the mock's knobs.
fn queue_config(shared: &Shared) -> QueueConfig {
    let cfg = shared.config;
    let mut framer = FramerConfig::target();
    framer.max_data_len = cfg.maxh2cdata;
    framer.max_in_capsule_data = (cfg.ioccsz * 16 - 64).max(8192);
    framer.max_plen = framer.plen_for_limits();
    QueueConfig {
        framer,
        max_transfer: if cfg.mdts == 0 {
            u32::MAX
        } else {
            4096u32 << cfg.mdts
        },
        transfer_tags: cfg.mqes.saturating_add(1),
        max_r2t: cfg.r2t_chunk,
        max_c2h_data: cfg.c2h_chunk,
        ..QueueConfig::default()
    }
}

pub(crate) async fn serve(mut stream: TcpStream, shared: Arc<Shared>) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let mut c = Conn {
        core: TargetQueue::new(queue_config(&shared), (), std::time::Instant::now()),
        shared,
        qid: None,
        cntlid: 0,
        sq_entries: 0,
        sqflow_disabled: false,
        kato: None,
        aers: Vec::new(),
        events_tx,
        last_admin: Instant::now(),
        io_count: 0,
        closed: false,
    };
    let mut rx = BytesMut::with_capacity(64 * 1024);
    while !c.closed {
        let deadline = c.kato.map(|k| c.last_admin + k);
        tokio::select! {
            n = stream.read_buf(&mut rx) => {
                if n? == 0 {
                    break;
                }
                c.drain(&mut rx);
            }
            Some(ev) = events.recv() => c.on_event(ev),
            () = sleep_until(deadline), if deadline.is_some() => break,
        }
        c.flush(&mut stream).await?;
    }
    c.shared.with_ctrl(c.cntlid, |s| s.events = None);
    Ok(())
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(d) = deadline {
        tokio::time::sleep_until(d).await;
    }
}

impl Conn {
    /// Hands every complete PDU to the core and runs the commands it yields.
    fn drain(&mut self, rx: &mut BytesMut) {
        while !self.closed {
            match self.core.handle_input(rx) {
                Ok(Input::NeedMore) => return,
                Ok(Input::Handled { .. }) => {}
                Ok(Input::Connect(command)) => self.execute(command),
                Ok(Input::Command {
                    command,
                    gives_up_parked,
                }) => {
                    if gives_up_parked {
                        self.aers.retain(|cid| *cid != command.sqe.cid);
                    }
                    self.execute(command);
                }
                // Its TermReq (if any) is queued; nothing more is read.
                Err(_) => self.closed = true,
            }
        }
    }

    fn execute(&mut self, command: Command) {
        let Command { sqe, data, c2h_len } = command;
        // Fabrics commands (Connect, Disconnect) are served on any queue.
        let fabrics = lamina_protocol::fabrics::fabrics_command_type(&sqe).is_some();
        let admin = fabrics || self.qid.is_none_or(|q| q == 0);
        if admin {
            self.last_admin = Instant::now();
            let bound = self.qid.is_some();
            let reply = super::admin::execute(self, &sqe, &data, c2h_len);
            if let (false, Some(qid)) = (bound, self.qid) {
                self.core.bind(Binding {
                    qid,
                    sq_entries: self.sq_entries,
                    sq_flow_control_disabled: self.sqflow_disabled,
                });
            }
            return self.reply(&sqe, reply);
        }
        self.io_count += 1;
        if let Fault::TermAfter(n) = self.shared.config.fault
            && self.io_count > n
        {
            self.closed = true;
            return;
        }
        let reply = super::io::execute(&self.shared, &sqe, &data, c2h_len);
        self.reply(&sqe, reply);
    }

    fn on_event(&mut self, ev: CtrlEvent) {
        let CtrlEvent::Aen(dw0) = ev;
        if self.aers.is_empty() {
            return;
        }
        let cid = self.aers.remove(0);
        self.core.complete_parked(Completion::dw0(cid, dw0));
    }

    fn reply(&mut self, sqe: &Sqe, reply: Reply) {
        if reply.defer {
            self.core.park(sqe.cid);
            return;
        }
        self.core.complete(Completion {
            dw0: reply.dw0,
            dw1: reply.dw1,
            data: (!reply.data.is_empty()).then(|| Bytes::from(reply.data)),
            ..Completion::with_status(sqe.cid, reply.status)
        });
    }

    /// Writes what the core queued, with the wire faults applied; after `TermAfter` fired,
    /// a C2HTermReq of the mock's own (TermReqs carry no digest, so no negotiated parameter
    /// is needed to encode it).
    async fn flush(&mut self, stream: &mut TcpStream) -> anyhow::Result<()> {
        let mut out = BytesMut::new();
        let _ = self.core.poll_transmit(|iov| {
            for s in iov {
                out.extend_from_slice(s);
            }
            Ok(iov.iter().map(|s| s.len()).sum())
        });
        if self.shared.config.fault == Fault::BadDatao && self.qid.is_some_and(|q| q != 0) {
            shift_c2h_datao(&mut out, 512);
        }
        if self.closed && matches!(self.shared.config.fault, Fault::TermAfter(_)) {
            let term = TermReq {
                fes: Fes::PDU_SEQUENCE_ERROR,
                fei: 0,
                header: Bytes::new(),
            };
            Pdu::C2hTermReq(term).encode(TxParams::INITIAL, &mut out)?;
        }
        stream.write_all(&out).await?;
        Ok(())
    }
}

/// Adds `by` to the DATAO of every C2HData PDU in `out` (the mock's `BadDatao` fault; with
/// header digests on, the host sees a digest error instead).
fn shift_c2h_datao(out: &mut BytesMut, by: u32) {
    let datao = DATA_DATAO_OFFSET;
    let mut at = 0;
    while let Some(ch) = out.get(at..).and_then(CommonHeader::parse) {
        let plen = ch.plen as usize;
        if ch.pdu_type == PduType::C2H_DATA
            && let Some(field) = out.get_mut(at + datao..at + datao + 4)
        {
            let old = u32::from_le_bytes([field[0], field[1], field[2], field[3]]);
            field.copy_from_slice(&(old + by).to_le_bytes());
        }
        if plen == 0 {
            return;
        }
        at += plen;
    }
}
