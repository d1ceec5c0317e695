//! [`RawHost`]: a PDU-level client for negative tests. It sends arbitrary bytes or hand-built
//! PDUs (malformed ones included) and reads back what the target answers, decoded and checked
//! by the protocol crate's host-side framer, C2HTermReq included, every wait bounded by a
//! timeout.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use lamina_protocol::fabrics::{ConnectCommand, ConnectData};
use lamina_protocol::nvme::{Cqe, SglDescriptor, Sqe};
use lamina_protocol::tcp::{CapsuleCmd, Digests, IcReq, IcResp, TermReq, TxParams};
use lamina_protocol::{DecodeError, Framer, FramerConfig, Pdu};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::host::error::{HostError, Violation};
use crate::host::options::ConnectOptions;

/// What [`RawHost::recv`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawEvent {
    /// A well-formed PDU.
    Pdu(Pdu),
    /// Bytes the host-side framer rejects (the target sent something malformed).
    Malformed(DecodeError),
    /// The target closed the connection.
    Closed,
}

/// A raw NVMe/TCP connection.
#[derive(Debug)]
pub struct RawHost {
    stream: TcpStream,
    framer: Framer,
    rx: BytesMut,
    tx: TxParams,
    timeout: Duration,
}

impl RawHost {
    /// Opens a TCP connection (with `TCP_NODELAY`); nothing is sent yet. Waits default to 5 s.
    pub async fn connect(addr: SocketAddr) -> Result<Self, HostError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| HostError::io("TCP connect", e))?;
        stream
            .set_nodelay(true)
            .map_err(|e| HostError::io("set TCP_NODELAY", e))?;
        Ok(Self {
            stream,
            framer: Framer::new(FramerConfig::host()),
            rx: BytesMut::with_capacity(64 * 1024),
            tx: TxParams::INITIAL,
            timeout: Duration::from_secs(5),
        })
    }

    /// Changes the limit of every later wait.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Digests used to encode PDUs and expected by the framer from now on.
    pub fn set_digests(&mut self, digests: Digests) {
        self.tx.digests = digests;
        self.framer.set_digests(digests);
    }

    /// Parameters used by [`RawHost::send_pdu`].
    pub fn tx_params_mut(&mut self) -> &mut TxParams {
        &mut self.tx
    }

    /// The receive framer's configuration (limits, alignment).
    pub fn framer_config_mut(&mut self) -> &mut FramerConfig {
        self.framer.config_mut()
    }

    /// Sends `bytes` as they are.
    pub async fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), HostError> {
        let write = self.stream.write_all(bytes);
        tokio::time::timeout(self.timeout, write)
            .await
            .map_err(|_| self.timed_out("send"))?
            .map_err(|e| HostError::io("send", e))
    }

    /// Encodes `pdu` with the current digests and sends it.
    pub async fn send_pdu(&mut self, pdu: &Pdu) -> Result<(), HostError> {
        let mut buf = BytesMut::new();
        pdu.encode(self.tx, &mut buf)
            .map_err(|e| HostError::InvalidRequest(format!("cannot encode: {e}")))?;
        self.send_bytes(&buf).await
    }

    /// Waits for the next PDU, a framing error, or the end of the connection.
    pub async fn recv(&mut self) -> Result<RawEvent, HostError> {
        let limit = self.timeout;
        tokio::time::timeout(limit, self.recv_inner())
            .await
            .map_err(|_| self.timed_out("receive"))?
    }

    async fn recv_inner(&mut self) -> Result<RawEvent, HostError> {
        loop {
            match self.framer.decode(&mut self.rx) {
                Ok(Some(pdu)) => return Ok(RawEvent::Pdu(pdu)),
                Ok(None) => {}
                Err(e) => return Ok(RawEvent::Malformed(e)),
            }
            self.rx.reserve(64 * 1024);
            let n = self
                .stream
                .read_buf(&mut self.rx)
                .await
                .map_err(|e| HostError::io("receive", e))?;
            if n == 0 {
                return Ok(RawEvent::Closed);
            }
        }
    }

    /// The next PDU; a framing error or the end of the connection is an error.
    pub async fn recv_pdu(&mut self) -> Result<Pdu, HostError> {
        match self.recv().await? {
            RawEvent::Pdu(p) => Ok(p),
            RawEvent::Malformed(e) => Err(HostError::Protocol(Violation::Decode(e))),
            RawEvent::Closed => Err(HostError::ConnectionClosed),
        }
    }

    /// Waits for a C2HTermReq (skipping other PDUs) and returns it.
    pub async fn expect_term_req(&mut self) -> Result<TermReq, HostError> {
        loop {
            if let Pdu::C2hTermReq(t) = self.recv_pdu().await? {
                return Ok(t);
            }
        }
    }

    /// Waits until the target closes the connection, skipping whatever it sends before.
    pub async fn expect_closed(&mut self) -> Result<(), HostError> {
        loop {
            match self.recv().await? {
                RawEvent::Closed => return Ok(()),
                RawEvent::Pdu(_) => {}
                // The framer will not get past it: discard what is buffered and keep reading.
                RawEvent::Malformed(_) => {
                    self.rx.clear();
                    self.framer = Framer::new(*self.framer.config());
                }
            }
        }
    }

    /// Sends `req` and waits for the ICResp; turns on the digests it grants.
    pub async fn handshake(&mut self, req: IcReq) -> Result<IcResp, HostError> {
        self.send_pdu(&Pdu::IcReq(req)).await?;
        match self.recv_pdu().await? {
            Pdu::IcResp(resp) => {
                self.tx.peer_pda = resp.cpda;
                self.set_digests(resp.digests);
                Ok(resp)
            }
            Pdu::C2hTermReq(t) => Err(HostError::Terminated {
                fes: t.fes,
                fei: t.fei,
            }),
            other => Err(HostError::Protocol(Violation::NotIcResp(other.pdu_type()))),
        }
    }

    /// Sends a command capsule with in-capsule `data` (DPTR set to match unless `sqe.dptr`
    /// already describes something) and returns the CapsuleResp's CQE.
    pub async fn command(&mut self, mut sqe: Sqe, data: Bytes) -> Result<Cqe, HostError> {
        if sqe.dptr == SglDescriptor::default() {
            let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
            sqe.dptr = if data.is_empty() {
                SglDescriptor::transport(0)
            } else {
                SglDescriptor::in_capsule(0, len)
            };
        }
        self.send_pdu(&Pdu::CapsuleCmd(CapsuleCmd { sqe, data }))
            .await?;
        loop {
            match self.recv_pdu().await? {
                Pdu::CapsuleResp(r) if r.cqe.cid == sqe.cid => return Ok(r.cqe),
                Pdu::C2hTermReq(t) => {
                    return Err(HostError::Terminated {
                        fes: t.fes,
                        fei: t.fei,
                    });
                }
                _ => {}
            }
        }
    }

    /// Fabrics Connect for queue `qid` (`cntlid` FFFFh for an admin queue), data in the capsule.
    pub async fn connect_queue(
        &mut self,
        opts: &ConnectOptions,
        qid: u16,
        queue_size: u16,
        cntlid: u16,
    ) -> Result<Cqe, HostError> {
        let sqe = ConnectCommand {
            cid: 1,
            qid,
            sqsize: queue_size.saturating_sub(1),
            kato_ms: if qid == 0 { opts.kato_ms } else { 0 },
            ..ConnectCommand::default()
        }
        .to_sqe();
        let data = ConnectData {
            hostid: opts.hostid,
            cntlid,
            subnqn: opts.subnqn.clone(),
            hostnqn: opts.hostnqn.clone(),
        };
        let mut buf = BytesMut::new();
        data.encode(&mut buf);
        self.command(sqe, buf.freeze()).await
    }

    fn timed_out(&self, op: &'static str) -> HostError {
        HostError::Timeout {
            op,
            after: self.timeout,
        }
    }
}
