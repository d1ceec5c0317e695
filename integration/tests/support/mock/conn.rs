//! One connection of the mock target: framing, IC exchange, R2T/H2CData collection, C2HData
//! and CapsuleResp sending, KATO enforcement and AER completion.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use lamina_protocol::nvme::{Cqe, DataDirection, Sqe, Status, StatusCode};
use lamina_protocol::tcp::{
    C2hData, CapsuleCmd, CapsuleResp, DataLocation, Fes, H2cData, IcReq, IcResp, Pda, R2t, TermReq,
    TxParams,
};
use lamina_protocol::{Framer, FramerConfig, Pdu};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
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

#[derive(Debug)]
struct PendingWrite {
    sqe: Sqe,
    buf: BytesMut,
    len: u32,
    /// End of the range the last R2T asked for.
    asked: u32,
}

/// Connection state.
pub(crate) struct Conn {
    wr: OwnedWriteHalf,
    pub(crate) shared: Arc<Shared>,
    framer: Framer,
    tx: TxParams,
    pub(crate) qid: Option<u16>,
    pub(crate) cntlid: u16,
    pub(crate) sqflow_disabled: bool,
    pub(crate) kato: Option<Duration>,
    pub(crate) aers: Vec<u16>,
    pub(crate) events_tx: mpsc::UnboundedSender<CtrlEvent>,
    last_admin: Instant,
    pending: HashMap<u16, PendingWrite>,
    next_ttag: u16,
    io_count: u32,
    closed: bool,
}

pub(crate) async fn serve(stream: TcpStream, shared: Arc<Shared>) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let (mut rd, wr) = stream.into_split();
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let mut config = FramerConfig::target();
    config.max_data_len = shared.config.maxh2cdata;
    config.max_in_capsule_data = (shared.config.ioccsz * 16 - 64).max(8192);
    config.max_plen = config.plen_for_limits();
    let mut c = Conn {
        wr,
        shared,
        framer: Framer::new(config),
        tx: TxParams::INITIAL,
        qid: None,
        cntlid: 0,
        sqflow_disabled: false,
        kato: None,
        aers: Vec::new(),
        events_tx,
        last_admin: Instant::now(),
        pending: HashMap::new(),
        next_ttag: 1,
        io_count: 0,
        closed: false,
    };
    let mut rx = BytesMut::with_capacity(64 * 1024);
    while !c.closed {
        let deadline = c.kato.map(|k| c.last_admin + k);
        tokio::select! {
            n = rd.read_buf(&mut rx) => {
                if n? == 0 {
                    break;
                }
                c.drain(&mut rx).await?;
            }
            Some(ev) = events.recv() => c.on_event(ev).await?,
            () = sleep_until(deadline), if deadline.is_some() => break,
        }
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
    async fn drain(&mut self, rx: &mut BytesMut) -> anyhow::Result<()> {
        while !self.closed {
            match self.framer.decode(rx) {
                Ok(Some(pdu)) => self.on_pdu(pdu).await?,
                Ok(None) => return Ok(()),
                Err(e) => {
                    if let Some(t) = e.term_req() {
                        self.send(&Pdu::C2hTermReq(t)).await?;
                    }
                    self.closed = true;
                }
            }
        }
        Ok(())
    }

    async fn on_pdu(&mut self, pdu: Pdu) -> anyhow::Result<()> {
        match pdu {
            Pdu::IcReq(req) => self.on_icreq(req).await,
            Pdu::CapsuleCmd(cmd) => self.on_capsule(cmd).await,
            Pdu::H2cData(d) => self.on_h2c(d).await,
            Pdu::H2cTermReq(_) => {
                self.closed = true;
                Ok(())
            }
            other => bail!("unexpected {other:?}"),
        }
    }

    async fn on_icreq(&mut self, req: IcReq) -> anyhow::Result<()> {
        let resp = IcResp {
            pfv: 0,
            cpda: Pda(0),
            digests: req.digests,
            maxh2cdata: self.shared.config.maxh2cdata,
        };
        self.send(&Pdu::IcResp(resp)).await?;
        self.framer.set_digests(req.digests);
        self.tx = TxParams {
            digests: req.digests,
            peer_pda: req.hpda,
        };
        Ok(())
    }

    async fn on_capsule(&mut self, cmd: CapsuleCmd) -> anyhow::Result<()> {
        let cid = cmd.sqe.cid;
        let location = match cmd.data_location() {
            Ok(l) => l,
            Err(code) => return self.reply(cid, Reply::error(code)).await,
        };
        let dir = DataDirection::of(fctype_or_opcode(&cmd.sqe));
        match (location, dir) {
            (DataLocation::Transport(len), DataDirection::HostToController) => {
                self.pending.insert(
                    cid,
                    PendingWrite {
                        sqe: cmd.sqe,
                        buf: BytesMut::with_capacity(usize::try_from(len)?),
                        len,
                        asked: 0,
                    },
                );
                self.ask_more(cid).await
            }
            (DataLocation::Transport(len), _) => self.execute(cmd.sqe, Bytes::new(), len).await,
            _ => self.execute(cmd.sqe, cmd.data, 0).await,
        }
    }

    async fn ask_more(&mut self, cid: u16) -> anyhow::Result<()> {
        let chunk = self.shared.config.r2t_chunk;
        let Some(p) = self.pending.get_mut(&cid) else {
            return Ok(());
        };
        let r2t = R2t {
            cccid: cid,
            ttag: self.next_ttag,
            r2to: p.asked,
            r2tl: chunk.min(p.len - p.asked),
        };
        p.asked += r2t.r2tl;
        self.next_ttag = self.next_ttag.wrapping_add(1).max(1);
        self.send(&Pdu::R2t(r2t)).await
    }

    async fn on_h2c(&mut self, d: H2cData) -> anyhow::Result<()> {
        let p = self
            .pending
            .get_mut(&d.cccid)
            .context("H2CData for unknown command")?;
        if usize::try_from(d.datao)? != p.buf.len() {
            let term = TermReq {
                fes: Fes::DATA_OUT_OF_RANGE,
                fei: 0,
                header: Bytes::new(),
            };
            self.send(&Pdu::C2hTermReq(term)).await?;
            self.closed = true;
            return Ok(());
        }
        p.buf.extend_from_slice(&d.data);
        let received = u32::try_from(p.buf.len())?;
        if received < p.asked {
            return Ok(());
        }
        if received < p.len {
            return self.ask_more(d.cccid).await;
        }
        let p = self.pending.remove(&d.cccid).context("pending")?;
        self.execute(p.sqe, p.buf.freeze(), 0).await
    }

    async fn execute(&mut self, sqe: Sqe, data: Bytes, read_len: u32) -> anyhow::Result<()> {
        let cid = sqe.cid;
        // Fabrics commands (Connect, Disconnect) are served on any queue.
        let fabrics = lamina_protocol::fabrics::fabrics_command_type(&sqe).is_some();
        let admin = fabrics || self.qid.is_none_or(|q| q == 0);
        if admin {
            self.last_admin = Instant::now();
            let reply = super::admin::execute(self, &sqe, &data, read_len);
            return self.reply(cid, reply).await;
        }
        self.io_count += 1;
        if let Fault::TermAfter(n) = self.shared.config.fault
            && self.io_count > n
        {
            let term = TermReq {
                fes: Fes::PDU_SEQUENCE_ERROR,
                fei: 0,
                header: Bytes::new(),
            };
            self.send(&Pdu::C2hTermReq(term)).await?;
            self.closed = true;
            return Ok(());
        }
        let reply = super::io::execute(&self.shared, &sqe, &data, read_len);
        self.reply(cid, reply).await
    }

    async fn on_event(&mut self, ev: CtrlEvent) -> anyhow::Result<()> {
        let CtrlEvent::Aen(dw0) = ev;
        if self.aers.is_empty() {
            return Ok(());
        }
        let cid = self.aers.remove(0);
        self.reply(cid, Reply::dw0(dw0)).await
    }

    pub(crate) async fn reply(&mut self, cid: u16, reply: Reply) -> anyhow::Result<()> {
        if reply.defer {
            return Ok(());
        }
        let mut out = BytesMut::new();
        let ok = reply.status.code.is_success();
        let data = Bytes::from(reply.data);
        let chunk = usize::try_from(self.shared.config.c2h_chunk)?;
        let bad_datao = self.shared.config.fault == Fault::BadDatao && self.qid != Some(0);
        let mut at = 0;
        while at < data.len() {
            let end = (at + chunk).min(data.len());
            let last = end == data.len();
            let datao = u32::try_from(at)? + if bad_datao { 512 } else { 0 };
            Pdu::C2hData(C2hData {
                cccid: cid,
                datao,
                last_pdu: last,
                success: last && ok && self.sqflow_disabled,
                data: data.slice(at..end),
            })
            .encode(self.tx, &mut out)?;
            at = end;
        }
        if data.is_empty() || !ok || !self.sqflow_disabled {
            let cqe = Cqe {
                dw0: reply.dw0,
                dw1: reply.dw1,
                sqid: self.qid.unwrap_or(0),
                ..Cqe::new(cid, reply.status)
            };
            Pdu::CapsuleResp(CapsuleResp { cqe }).encode(self.tx, &mut out)?;
        }
        self.wr.write_all(&out).await?;
        Ok(())
    }

    async fn send(&mut self, pdu: &Pdu) -> anyhow::Result<()> {
        let mut out = BytesMut::new();
        pdu.encode(self.tx, &mut out)?;
        self.wr.write_all(&out).await?;
        Ok(())
    }
}

/// Direction comes from FCTYPE for Fabrics commands (Connect is host-to-controller).
fn fctype_or_opcode(sqe: &Sqe) -> u8 {
    match lamina_protocol::fabrics::fabrics_command_type(sqe) {
        Some(t) => t.0,
        None => sqe.opcode,
    }
}
