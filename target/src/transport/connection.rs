//! One NVMe/TCP connection, which is one queue: the IC exchange, then a single task that reads
//! PDUs, runs commands concurrently and writes their completions.
//!
//! Only this module touches the `TcpStream`. The task owns all queue state without locks: the
//! framer and read buffer, the in-flight command futures (polled here, so a command never hops
//! threads to complete), the H2C transfers, and the output queue written with vectored
//! non-blocking writes. Every readable event reads everything the socket has (many PDUs per
//! `read`) into a pooled chunk (see [`super::pool`]); payloads are split off it as `Bytes`
//! and reach the backend without a copy. It ends when the host closes the connection or disconnects, when a
//! protocol violation is answered with a C2HTermReq, when the controller is torn down (KATO,
//! reset, admin queue gone), or at shutdown, when it stops reading and lets in-flight commands
//! finish for up to [`DRAIN_TIMEOUT`] before closing.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lamina_protocol::tcp::{Fes, IcResp, Pda, TermReq, TxParams};
use lamina_protocol::{DecodeError, Framer, FramerConfig, Pdu};
use tokio::net::TcpStream;

use super::admission::Ticket;
use super::output::Output;
use super::pool::ReadBuffer;
use super::queue::{QueueExit, new_queue};
use crate::context::Target;
use crate::options::ADMIN_IN_CAPSULE_DATA;
use crate::stats::TransportStats;

/// How long the ICResp may take to be sent.
pub const IC_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight commands may take to finish at shutdown.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Stop reading new PDUs while this much output waits for a slow host.
const OUT_HIGH_WATER: usize = 8 * 1024 * 1024;
/// Smallest read buffer chunk; chunks also hold at least four of the largest PDUs, so the
/// partial PDU copied when a chunk runs out is a small share of the traffic.
const READ_CHUNK: usize = 256 * 1024;
/// Free space below which a new chunk is taken before reading.
const MIN_READ: usize = 4096;
/// Read chunks a connection keeps for reuse at most (write payloads in flight pin theirs).
const MAX_READ_CHUNKS: usize = 64;

/// Why a connection ended.
#[derive(Debug)]
pub enum ConnError {
    /// The socket failed or the host went away.
    Io(io::Error),
    /// The host broke the protocol; a C2HTermReq was sent.
    Violation(String),
    /// The host sent an H2CTermReq.
    HostTerminated(Fes),
    /// No ICReq, or no successful Connect, in time.
    Timeout,
    /// Closed to make room for a new connection before it had connected.
    Evicted,
}

impl From<io::Error> for ConnError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// The socket side of a queue.
#[derive(Debug)]
pub struct Wire {
    /// The TCP stream.
    pub stream: TcpStream,
    /// Bytes read and not yet decoded.
    pub rbuf: ReadBuffer,
    /// The decoder.
    pub framer: Framer,
    /// Digest and alignment parameters for sending.
    pub tx: TxParams,
    /// Bytes to send.
    pub out: Output,
    /// Our address.
    pub local: SocketAddr,
    /// The host's address.
    pub peer: SocketAddr,
}

impl Wire {
    /// Reads what the socket has, without blocking, up to the end of the current read chunk
    /// (the caller decodes, then reads again: the socket stays readable); `Ok(0)` means the
    /// host closed.
    pub fn read_available(&mut self) -> io::Result<usize> {
        // The buffer holds at most one partial PDU here (everything complete was decoded), so
        // moving to a new chunk copies little.
        self.rbuf.make_room();
        let mut total = 0;
        loop {
            if self.rbuf.buf.capacity() == self.rbuf.buf.len() {
                return Ok(total);
            }
            match self.stream.try_read_buf(&mut self.rbuf.buf) {
                Ok(0) => return if total == 0 { Ok(0) } else { Ok(total) },
                Ok(n) => total += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return if total == 0 { Err(e) } else { Ok(total) };
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Decodes the next buffered PDU.
    pub fn next_pdu(&mut self) -> Result<Option<Pdu>, DecodeError> {
        self.rbuf.fit_pending();
        let pdu = self.framer.decode(&mut self.rbuf.buf);
        match &pdu {
            Ok(Some(p)) => self.out.stats().on_pdu_rx(p.pdu_type().0),
            Err(DecodeError::HeaderDigest { .. }) => {
                self.out
                    .stats()
                    .header_digest_errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Err(DecodeError::DataDigest { .. }) => {
                self.out
                    .stats()
                    .data_digest_errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            _ => {}
        }
        pdu
    }

    /// Sends a C2HTermReq for `term` and flushes what can be flushed.
    pub fn terminate(&mut self, term: &TermReq) {
        self.out.push_term_req(term, self.tx);
        let _ = self.out.flush(&self.stream);
    }

    /// Writes until the output queue is empty or `deadline` passes.
    pub async fn flush_all(&mut self, deadline: Duration) -> io::Result<()> {
        let flush = async {
            while !self.out.flush(&self.stream)? {
                self.stream.writable().await?;
            }
            Ok(())
        };
        tokio::time::timeout(deadline, flush)
            .await
            .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
    }

    /// Whether reading should pause because the host does not read its completions.
    pub fn is_backlogged(&self) -> bool {
        self.out.queued_bytes() > OUT_HIGH_WATER
    }
}

/// Serves one accepted connection to its end, as [`serve`] does, with a panic while serving
/// it caught here: that connection closes (its socket and queue state are dropped, the
/// commands it started have finished or run on detached), the panic is logged and counted
/// (`lamina_connection_panics_total`), and every other connection and the management plane go
/// on. Sizes a peer controls are checked before anything is allocated for them, so a panic
/// here is a bug, not an input the target failed to check.
pub async fn serve_guarded(stream: TcpStream, target: Arc<Target>, ticket: Ticket) {
    let stats = target.transport_stats.clone();
    contain_panic(serve(stream, target, ticket), &stats).await;
}

/// Runs `work`; a panic in it is logged and counted instead of unwinding further.
async fn contain_panic(work: impl std::future::Future<Output = ()>, stats: &TransportStats) {
    use futures::FutureExt;
    if let Err(panic) = std::panic::AssertUnwindSafe(work).catch_unwind().await {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(panic = %what, "a connection task panicked: connection closed");
        stats
            .connection_panics
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Serves one accepted connection to its end. It must complete the ICReq and a Fabrics Connect
/// within the ticket's connect timeout, and ends early if the ticket is evicted.
pub async fn serve(stream: TcpStream, target: Arc<Target>, mut ticket: Ticket) {
    let (Ok(local), Ok(peer)) = (stream.local_addr(), stream.peer_addr()) else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let span = tracing::info_span!("conn", %peer, qid = tracing::field::Empty,
        cntlid = tracing::field::Empty, hostnqn = tracing::field::Empty);
    let stats = target.transport_stats.clone();
    crate::stats::gauge_add(&stats.connections, 1);
    stats
        .connections_total
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let run = async move {
        let opts = target.options();
        let mut framer_cfg = FramerConfig::target();
        framer_cfg.max_data_len = opts.io_unit_size;
        framer_cfg.max_in_capsule_data = opts.in_capsule_data_size.max(ADMIN_IN_CAPSULE_DATA);
        framer_cfg.max_plen = opts
            .io_unit_size
            .max(framer_cfg.max_in_capsule_data)
            .saturating_add(256);
        let max_pdu = usize::try_from(framer_cfg.max_plen).unwrap_or(READ_CHUNK);
        let chunk = READ_CHUNK.max(max_pdu.saturating_mul(4));
        let mut wire = Wire {
            stream,
            rbuf: ReadBuffer::new(chunk, MAX_READ_CHUNKS, MIN_READ, max_pdu),
            framer: Framer::new(framer_cfg),
            tx: TxParams::INITIAL,
            out: Output::new(target.transport_stats.clone()),
            local,
            peer,
        };
        let deadline = tokio::time::Instant::now() + ticket.connect_timeout();
        let shaken = tokio::select! {
            r = tokio::time::timeout_at(deadline, handshake(&mut wire, opts.io_unit_size)) => {
                r.unwrap_or(Err(ConnError::Timeout))
            }
            () = ticket.token.cancelled() => Err(ConnError::Evicted),
        };
        if let Err(e) = shaken {
            if matches!(e, ConnError::Timeout) {
                ticket.on_connect_timeout();
            }
            log_end(&e);
            return;
        }
        let root = ticket.token.clone();
        let queue = new_queue(target, local, peer);
        match queue.run(&mut wire, root, &mut ticket, deadline).await {
            Ok(exit) => tracing::debug!(?exit, "connection closed"),
            Err(e) => log_end(&e),
        }
    };
    tracing::Instrument::instrument(run, span).await;
    crate::stats::gauge_add(&stats.connections, -1);
}

fn log_end(e: &ConnError) {
    match e {
        ConnError::Io(e) => tracing::debug!(error = %e, "connection closed"),
        ConnError::Violation(what) => {
            tracing::warn!(violation = %what, "protocol violation: sent C2HTermReq, closing");
        }
        ConnError::HostTerminated(fes) => {
            tracing::warn!(?fes, "host terminated the connection (H2CTermReq)");
        }
        ConnError::Timeout => tracing::debug!("no ICReq and Connect in time: closing"),
        ConnError::Evicted => {
            tracing::debug!("closed before Connect to make room for a new connection");
        }
    }
}

/// The ICReq/ICResp exchange (the caller bounds it in time).
async fn handshake(wire: &mut Wire, maxh2cdata: u32) -> Result<(), ConnError> {
    let pdu = read_one(wire).await?;
    let Pdu::IcReq(req) = pdu else {
        return Err(violation(
            wire,
            Fes::PDU_SEQUENCE_ERROR,
            0,
            "first PDU is not an ICReq",
        ));
    };
    let resp = IcResp {
        pfv: 0,
        cpda: Pda(0),
        digests: req.digests,
        maxh2cdata,
    };
    wire.out.push_pdu(&Pdu::IcResp(resp), TxParams::INITIAL);
    wire.flush_all(IC_TIMEOUT).await?;
    wire.framer.set_digests(req.digests);
    wire.tx = TxParams {
        digests: req.digests,
        peer_pda: req.hpda,
    };
    Ok(())
}

/// Reads until one PDU decodes.
async fn read_one(wire: &mut Wire) -> Result<Pdu, ConnError> {
    loop {
        match wire.next_pdu() {
            Ok(Some(pdu)) => return Ok(pdu),
            Ok(None) => {}
            Err(e) => return Err(decode_failure(wire, &e)),
        }
        wire.stream.readable().await?;
        match wire.read_available() {
            Ok(0) => return Err(ConnError::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Answers a fatal decode error with its TermReq.
pub fn decode_failure(wire: &mut Wire, e: &DecodeError) -> ConnError {
    if let Some(term) = e.term_req() {
        wire.terminate(&term);
    }
    ConnError::Violation(e.to_string())
}

/// Sends a TermReq for a violation found above the codec.
pub fn violation(wire: &mut Wire, fes: Fes, fei: u32, what: &str) -> ConnError {
    let term = TermReq {
        fes,
        fei: if fes.has_fei() { fei } else { 0 },
        header: bytes::Bytes::new(),
    };
    wire.terminate(&term);
    ConnError::Violation(what.to_owned())
}

/// Why the queue loop ended without error.
pub fn describe(exit: &QueueExit) -> &'static str {
    match exit {
        QueueExit::HostClosed => "host closed the connection",
        QueueExit::Disconnected => "host disconnected the queue",
        QueueExit::TornDown => "controller torn down",
        QueueExit::Shutdown => "target shutting down",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[tokio::test]
    async fn a_panicking_connection_is_contained_and_counted() {
        let stats = TransportStats::default();
        contain_panic(async { panic!("boom") }, &stats).await;
        contain_panic(async {}, &stats).await;
        assert_eq!(stats.connection_panics.load(Ordering::Relaxed), 1);
    }
}
