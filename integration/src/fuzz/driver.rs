//! Running one mutated session against a target over TCP: connections opened as the script
//! needs them (I/O queues after the admin queue connected), steps interleaved between them,
//! each encoded from what its connection learnt, mutated, cut into segments and written;
//! whatever the target answers is decoded with the host-side framer, both to learn (CNTLID,
//! R2Ts, the digests granted) and to catch a malformed PDU from the target, which is a bug
//! whatever the host sent.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use lamina_protocol::tcp::TxParams;
use lamina_protocol::{Framer, FramerConfig, Pdu};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::script::{self, ConnScript, Learnt, Step};
use super::{Rng, mutate};
use crate::host::ConnectOptions;

/// What one session saw.
#[derive(Debug, Default, Clone, Copy)]
pub struct Outcome {
    /// PDUs (or raw chunks) sent.
    pub sent: u64,
    /// PDUs received.
    pub received: u64,
    /// C2HTermReqs received.
    pub term_reqs: u64,
    /// Malformed PDUs received: always a target bug.
    pub malformed: u64,
}

struct Conn {
    stream: TcpStream,
    framer: Framer,
    rx: BytesMut,
    learnt: Learnt,
    closed: bool,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Option<Self> {
        let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
            .await
            .ok()?
            .ok()?;
        let _ = stream.set_nodelay(true);
        Some(Self {
            stream,
            framer: Framer::new(FramerConfig::host()),
            rx: BytesMut::with_capacity(64 * 1024),
            learnt: Learnt::default(),
            closed: false,
        })
    }

    /// Reads what arrives within `wait` and learns from it.
    async fn drain(&mut self, wait: Duration, out: &mut Outcome) {
        let deadline = tokio::time::Instant::now() + wait;
        while !self.closed {
            self.rx.reserve(64 * 1024);
            let read = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.rx));
            match read.await {
                Err(_) => return,
                Ok(Ok(0) | Err(_)) => self.closed = true,
                Ok(Ok(_)) => {}
            }
            loop {
                match self.framer.decode(&mut self.rx) {
                    Ok(Some(pdu)) => {
                        out.received += 1;
                        self.learn(&pdu, out);
                    }
                    Ok(None) => break,
                    Err(_) => {
                        out.malformed += 1;
                        self.closed = true;
                        return;
                    }
                }
            }
        }
    }

    fn learn(&mut self, pdu: &Pdu, out: &mut Outcome) {
        match pdu {
            Pdu::IcResp(r) => {
                let tx = TxParams {
                    digests: r.digests,
                    peer_pda: r.cpda,
                };
                self.learnt.tx = Some(tx);
                self.framer.set_digests(r.digests);
            }
            Pdu::CapsuleResp(r)
                if r.cqe.cid == 0xffe0
                    && r.cqe.status == lamina_protocol::nvme::Status::SUCCESS =>
            {
                self.learnt.cntlid = Some(u16::try_from(r.cqe.dw0 & 0xffff).unwrap_or(0xffff));
            }
            Pdu::R2t(r) => self.learnt.r2t = Some((r.cccid, r.ttag, r.r2to, r.r2tl)),
            Pdu::C2hTermReq(_) => out.term_reqs += 1,
            _ => {}
        }
    }

    async fn send(
        &mut self,
        rng: &mut Rng,
        step: &Step,
        opts: &ConnectOptions,
        rate: u64,
        out: &mut Outcome,
    ) {
        let Some(bytes) = script::encode(step, &mut self.learnt, opts) else {
            return;
        };
        let bytes = mutate::bytes(rng, bytes, rate);
        for chunk in mutate::segments(rng, &bytes) {
            let write = self.stream.write_all(&chunk);
            if !matches!(
                tokio::time::timeout(Duration::from_secs(2), write).await,
                Ok(Ok(()))
            ) {
                self.closed = true;
                return;
            }
            if rng.below(8) == 0 {
                tokio::task::yield_now().await;
            }
        }
        out.sent += 1;
    }
}

/// Runs `scripts` against `addr`: one PDU in `rate` is mutated.
pub async fn run(
    rng: &mut Rng,
    addr: SocketAddr,
    opts: &ConnectOptions,
    mut scripts: Vec<ConnScript>,
    rate: u64,
) -> Outcome {
    let mut out = Outcome::default();
    let settle = Duration::from_millis(2);
    let Some(admin_script) = scripts.first_mut().map(|s| std::mem::take(&mut s.steps)) else {
        return out;
    };
    let Some(mut admin) = Conn::open(addr).await else {
        return out;
    };
    // The admin queue first, up to its enable, so the I/O queues have a controller to join.
    let (head, tail) = admin_script.split_at(admin_script.len().min(3));
    for step in head {
        admin.send(rng, step, opts, rate, &mut out).await;
        admin.drain(Duration::from_millis(20), &mut out).await;
    }
    let mut conns = vec![(admin, tail.to_vec())];
    for s in scripts.iter().skip(1) {
        if let Some(mut c) = Conn::open(addr).await {
            c.learnt.cntlid = conns.first().and_then(|(a, _)| a.learnt.cntlid);
            conns.push((c, s.steps.clone()));
        }
    }
    // Interleave the rest, a step at a time from a random connection.
    loop {
        let live: Vec<usize> = (0..conns.len())
            .filter(|&i| !conns[i].0.closed && !conns[i].1.is_empty())
            .collect();
        let Some(&i) = live.get(usize::try_from(rng.below(live.len() as u64)).unwrap_or(0)) else {
            break;
        };
        let (conn, steps) = &mut conns[i];
        let step = steps.remove(0);
        conn.send(rng, &step, opts, rate, &mut out).await;
        conn.drain(settle, &mut out).await;
        if rng.below(64) == 0 {
            break; // a hang-up in the middle
        }
    }
    if rng.below(2) == 0 {
        for (c, _) in &mut conns {
            c.drain(Duration::from_millis(20), &mut out).await;
        }
    }
    out
}
