//! One NVMe/TCP connection, which is one queue: the only code that touches its `TcpStream`.
//!
//! A single task reads what the socket has into a pooled read buffer (many PDUs per `read`;
//! see [`super::pool`]), hands the bytes to the queue's sans-IO core (which decodes them and
//! decides what every PDU does), runs the commands the core passes up (see [`super::queue`]),
//! and writes what the core hands back with vectored non-blocking writes. Payloads are split
//! off the read buffer as `Bytes` and reach the backend without a copy. The task owns all of
//! it without locks. It ends when the host closes the connection or disconnects, when the core
//! ends the queue (a protocol violation, answered with the C2HTermReq the core queued, or no
//! ICReq and Connect in time), when the controller is torn down (KATO, reset, admin queue
//! gone), or at shutdown, when it stops reading and lets in-flight commands finish for up to
//! [`DRAIN_TIMEOUT`] before closing.
//!
//! A write whose slices include a payload of at least the `zero_copy_min` setting goes with
//! `MSG_ZEROCOPY` (see [`super::zero_copy`]): the core keeps what it took until the kernel
//! reports it sent, which the task reads from the socket's error queue when the reactor
//! signals it. Before the socket closes, the task waits briefly for the last completions and
//! resets the connection if they do not come, so a recycled buffer is never sent as data.

use std::future::Future;
use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use lamina_protocol::target::{Input, QueueError, Sent};
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::Network;
use super::admission::Ticket;
use super::busy_poll::BusyPoll;
use super::pool::ReadBuffer;
use super::queue::{Core, Queue, QueueEvent, new_queue};
use super::tls::{self, TlsLink};
use super::zero_copy;
use crate::plane::command::Completion;
use crate::plane::connect::ConnectSite;
use crate::plane::stats::TransportStats;

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
/// Input handled between two writes of the completions ready (see `decode_buffered`).
const ANSWER_EVERY: usize = 32 * 1024;
/// Bytes lent to zero-copy sends past which a write first reads the completions waiting.
const LENT_HIGH_WATER: usize = 16 * 1024 * 1024;
/// How long a closing connection waits for its last zero-copy completions.
const LENT_DRAIN: Duration = Duration::from_secs(2);

/// Why a connection ended with an error.
#[derive(Debug)]
pub enum ConnError {
    /// The socket failed or the host went away.
    Io(io::Error),
    /// The queue's core ended it (a violation, whose TermReq was sent; an H2CTermReq; no
    /// ICReq and Connect in time).
    Queue(QueueError),
    /// Closed to make room for a new connection before it had connected.
    Evicted,
}

impl From<io::Error> for ConnError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<QueueError> for ConnError {
    fn from(e: QueueError) -> Self {
        Self::Queue(e)
    }
}

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

/// The socket and its read buffer.
#[derive(Debug)]
struct Socket {
    stream: Arc<TcpStream>,
    /// On a secure-channel port: the TLS connection all input and output goes through.
    tls: Option<Box<TlsLink>>,
    /// How writes go out (zero-copy or not).
    tx: Tx,
    rbuf: ReadBuffer,
    /// Decoding stopped with PDUs left in the read buffer because the output backed up.
    input_paused: bool,
    /// Whether to poll for the next command before parking (see [`super::busy_poll`]).
    poll: BusyPoll,
}

/// What a read of the socket found (and, for a busy poll, how it ended).
enum Read {
    /// Input came and was handled.
    Input,
    /// The host closed the connection.
    Closed,
    /// Nothing to read (for a busy poll: the budget passed, or the queue's token fired).
    Nothing,
    /// (Busy poll only.) A running command was woken: its completion may be ready.
    Woken,
}

/// How a connection writes.
#[derive(Debug)]
struct Tx {
    /// Smallest payload sent with `MSG_ZEROCOPY`; 0: never (off, or the socket refused it).
    zero_copy_min: usize,
    stats: Arc<TransportStats>,
}

/// Writes what `core` has queued, as much as the socket takes without blocking; `Ok(true)`
/// when all of it was sent.
fn write_out(
    stream: &TcpStream,
    tx: &Tx,
    tls: Option<&mut TlsLink>,
    core: &mut Core,
) -> io::Result<bool> {
    if let Some(tls) = tls {
        match tls.flush_staged() {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
            _ => {}
        }
        let done = core.poll_transmit(|iov| tls.write_vectored(iov))?;
        return Ok(done && !tls.has_staged());
    }
    if tx.zero_copy_min == 0 {
        return core.poll_transmit(|iov| stream.try_write_vectored(iov));
    }
    if core.zero_copy_pending() > LENT_HIGH_WATER {
        reap(stream, tx, core)?;
    }
    core.poll_transmit_zero_copy(|iov| {
        if iov.iter().any(|s| s.len() >= tx.zero_copy_min) {
            match stream.try_io(Interest::WRITABLE, || zero_copy::send(stream.as_fd(), iov)) {
                Ok(bytes) => {
                    return Ok(Sent {
                        bytes,
                        zero_copy: true,
                    });
                }
                // No option memory left for another pending completion: copy this one.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {}
                Err(e) => return Err(e),
            }
        }
        stream.try_write_vectored(iov).map(Sent::copied)
    })
}

/// Reads every zero-copy completion waiting on the socket's error queue and releases what
/// those sends took.
fn reap(stream: &TcpStream, tx: &Tx, core: &mut Core) -> io::Result<()> {
    loop {
        match zero_copy::completed(stream.as_fd()) {
            Ok(Some(c)) => {
                core.zero_copy_complete(c.first, c.last);
                let sends = u64::from(c.last.wrapping_sub(c.first)) + 1;
                let counter = if c.copied {
                    &tx.stats.zero_copy_copied
                } else {
                    &tx.stats.zero_copy_sends
                };
                counter.fetch_add(sends, Ordering::Relaxed);
            }
            Ok(None) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

fn backlogged(core: &Core) -> bool {
    core.pending_output() > OUT_HIGH_WATER
}

impl Socket {
    /// Reads what the socket has, without blocking, up to the end of the current read chunk
    /// (the caller decodes, then reads again: the socket stays readable); `Ok(0)` means the
    /// host closed.
    fn read_available(&mut self) -> io::Result<usize> {
        // The buffer holds at most one partial PDU here (everything complete was decoded), so
        // moving to a new chunk copies little.
        self.rbuf.make_room();
        let mut total = 0;
        loop {
            if self.rbuf.buf.capacity() == self.rbuf.buf.len() {
                return Ok(total);
            }
            let read = match self.tls.as_deref_mut() {
                Some(tls) => tls.read_into(&mut self.rbuf.buf),
                None => self.stream.try_read_buf(&mut self.rbuf.buf),
            };
            match read {
                Ok(0) => return Ok(total),
                Ok(n) => total += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return if total == 0 { Err(e) } else { Ok(total) };
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes until the output is all sent or `deadline` passes.
    async fn flush_all(&mut self, core: &mut Core, deadline: Duration) -> io::Result<()> {
        let flush = async {
            while !write_out(&self.stream, &self.tx, self.tls.as_deref_mut(), core)? {
                let ready = self.stream.ready(Interest::WRITABLE).await?;
                self.after_write_wait(ready, core)?;
            }
            Ok(())
        };
        tokio::time::timeout(deadline, flush)
            .await
            .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
    }

    /// After a wait for the socket to take more output. A zero-copy completion raises
    /// EPOLLERR, which the reactor reads as a closed write side and keeps for good, so every
    /// later wait would return at once: read the completions and register the socket afresh
    /// so the next wait is a real one. (A socket that really closed fails the next write.)
    fn after_write_wait(&mut self, ready: tokio::io::Ready, core: &mut Core) -> io::Result<()> {
        if self.tx.zero_copy_min == 0 || !ready.is_write_closed() {
            return Ok(());
        }
        reap(&self.stream, &self.tx, core)?;
        let fresh = self.stream.as_fd().try_clone_to_owned()?;
        let fresh = TcpStream::from_std(std::net::TcpStream::from(fresh))?;
        // Dropping the old handle deregisters and closes its descriptor; the socket stays
        // open through the new one.
        drop(std::mem::replace(&mut self.stream, Arc::new(fresh)));
        Ok(())
    }

    /// The reactor signalled the error queue: read the completions, and clear that signal.
    fn on_error_queue(&self, core: &mut Core) -> io::Result<()> {
        match self.stream.try_io(Interest::ERROR, || {
            reap(&self.stream, &self.tx, core)?;
            Err::<(), _>(io::ErrorKind::WouldBlock.into())
        }) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            other => other,
        }
    }

    /// Before the socket closes: waits up to [`LENT_DRAIN`] for the completions of the
    /// zero-copy sends still out; if some do not come, the connection is reset rather than
    /// closed, so the kernel drops their data instead of sending buffers that are about to be
    /// reused.
    async fn settle_lent(&mut self, core: &mut Core) {
        let until = tokio::time::Instant::now() + LENT_DRAIN;
        while core.zero_copy_outstanding() > 0 {
            if reap(&self.stream, &self.tx, core).is_err() {
                break;
            }
            if core.zero_copy_outstanding() == 0 {
                return;
            }
            let wait = self.stream.ready(Interest::ERROR);
            match tokio::time::timeout_at(until, wait).await {
                Ok(Ok(_)) => {
                    let _ = self.on_error_queue(core);
                }
                Ok(Err(_)) | Err(_) => break,
            }
        }
        if core.zero_copy_outstanding() > 0 {
            tracing::debug!(
                sends = core.zero_copy_outstanding(),
                "zero-copy sends still pending at close: resetting the connection"
            );
            let _ = socket2::SockRef::from(&*self.stream).set_linger(Some(Duration::ZERO));
        }
    }

    /// Polls the commands that were woken and writes the completions they produced.
    fn answer_woken<F>(&mut self, q: &mut Queue<F>)
    where
        F: Future<Output = Completion> + Send + 'static,
    {
        let (stream, tx, mut tls) = (&self.stream, &self.tx, self.tls.as_deref_mut());
        q.run_woken(|core| {
            let _ = write_out(stream, tx, tls.as_deref_mut(), core);
        });
    }

    /// Reads and handles every PDU available.
    fn read_and_dispatch<F>(&mut self, q: &mut Queue<F>) -> Result<Read, ConnError>
    where
        F: Future<Output = Completion> + Send + 'static,
    {
        match self.read_available() {
            Ok(0) => return Ok(Read::Closed),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Read::Nothing),
            Err(e) => return Err(e.into()),
        }
        self.decode_buffered(q)?;
        Ok(Read::Input)
    }

    /// Hands every complete PDU in the read buffer to the core (including any that arrived
    /// in the same segment as the ICReq), until the output backs up: a host that does not
    /// read its completions gets no more commands started, so what it costs is bounded by
    /// the output high-water mark, not by how much it sent.
    fn decode_buffered<F>(&mut self, q: &mut Queue<F>) -> Result<(), ConnError>
    where
        F: Future<Output = Completion> + Send + 'static,
    {
        // The file reads and writes these commands start go to the kernel together, with one
        // system call, when this returns (or every few dozen).
        let _batch = lamina_lvol::device::batch_submissions();
        let mut since_flush = 0usize;
        self.input_paused = false;
        loop {
            if backlogged(&q.core) {
                write_out(&self.stream, &self.tx, self.tls.as_deref_mut(), &mut q.core)?;
                if backlogged(&q.core) {
                    self.input_paused = true;
                    return Ok(());
                }
            }
            self.rbuf.fit_pending();
            let before = self.rbuf.buf.len();
            let input = q.core.handle_input(&mut self.rbuf.buf)?;
            if matches!(input, Input::NeedMore) {
                return Ok(());
            }
            since_flush += before - self.rbuf.buf.len();
            // Send what has completed so far every ANSWER_EVERY bytes of input, so a host
            // that sent a burst gets its first completions (and refills) while the rest of
            // the burst runs, instead of the two sides taking turns; and as soon as large
            // reads have queued enough.
            if q.on_input(input) || since_flush >= ANSWER_EVERY {
                since_flush = 0;
                write_out(&self.stream, &self.tx, self.tls.as_deref_mut(), &mut q.core)?;
            }
        }
    }

    /// Yields to the runtime (which runs every other ready task and polls the reactor without
    /// sleeping) and reads again, until input comes, a running command is woken (a file
    /// read's completion reaped on this runtime), or `budget` passes.
    async fn spin<F>(
        &mut self,
        q: &mut Queue<F>,
        token: &CancellationToken,
        budget: Duration,
    ) -> Result<Read, ConnError>
    where
        F: Future<Output = Completion> + Send + 'static,
    {
        let until = Instant::now() + budget;
        loop {
            tokio::task::yield_now().await;
            match self.read_and_dispatch(q)? {
                Read::Nothing => {}
                found => return Ok(found),
            }
            if q.has_woken() {
                return Ok(Read::Woken);
            }
            if token.is_cancelled() || Instant::now() >= until {
                return Ok(Read::Nothing);
            }
        }
    }

    /// Runs the queue until it ends.
    async fn drive<F>(
        &mut self,
        q: &mut Queue<F>,
        root: &CancellationToken,
        ticket: &mut Ticket,
    ) -> Result<QueueExit, ConnError>
    where
        F: Future<Output = Completion> + Send + 'static,
    {
        loop {
            if q.is_bound() {
                ticket.connected();
            }
            write_out(&self.stream, &self.tx, self.tls.as_deref_mut(), &mut q.core)?;
            let closing = q.core.is_closing();
            if closing && !q.is_running() {
                self.flush_all(&mut q.core, DRAIN_TIMEOUT).await?;
                return Ok(QueueExit::Disconnected);
            }
            if self.input_paused && !closing && !backlogged(&q.core) {
                // The host read enough: go on with the PDUs that were already buffered.
                self.decode_buffered(q)?;
            }
            let token = q.token(root);
            let want_read = !closing && !backlogged(&q.core);
            // Only a queue not bound yet has a deadline (its ICReq and Connect).
            let deadline = if q.is_bound() {
                None
            } else {
                q.core.poll_timeout(std::time::Instant::now())?
            };
            let sleep = deadline.map(tokio::time::Instant::from_std);
            let has_output =
                q.core.has_output() || self.tls.as_ref().is_some_and(|t| t.has_staged());
            let lent = q.core.zero_copy_outstanding() > 0;
            // Everything answered on an I/O queue (and what runs, if anything, waits for its
            // device): poll for the host's next command, or the device's completion, a little
            // before parking.
            let mut parked_at = None;
            if want_read && !has_output && !self.input_paused && q.is_io_queue() {
                match self.poll.before_wait() {
                    Some(budget) => match self.spin(q, &token, budget).await? {
                        Read::Input => {
                            self.poll.hit();
                            continue;
                        }
                        Read::Woken => {
                            self.poll.hit();
                            self.answer_woken(q);
                            continue;
                        }
                        Read::Closed => return Ok(QueueExit::HostClosed),
                        Read::Nothing => self.poll.miss(),
                    },
                    None => parked_at = Some(Instant::now()),
                }
            }
            // Input decrypted but not yet taken: the socket may never signal it.
            if want_read && !token.is_cancelled() && self.tls.as_ref().is_some_and(|t| t.pending())
            {
                if let Read::Closed = self.read_and_dispatch(q)? {
                    return Ok(QueueExit::HostClosed);
                }
                continue;
            }
            tokio::select! {
                biased;
                () = token.cancelled() => return self.on_cancel(q, root).await,
                () = sleep_until(sleep), if sleep.is_some() => {}
                event = q.next_event() => match event {
                    QueueEvent::Woken => self.answer_woken(q),
                    QueueEvent::Oob(cqe) => q.on_oob(cqe),
                },
                r = self.stream.readable(), if want_read => {
                    r?;
                    if let Some(t) = parked_at {
                        self.poll.parked(t.elapsed());
                    }
                    if let Read::Closed = self.read_and_dispatch(q)? {
                        return Ok(QueueExit::HostClosed);
                    }
                }
                r = self.stream.ready(Interest::WRITABLE), if has_output => {
                    self.after_write_wait(r?, &mut q.core)?;
                }
                r = self.stream.ready(Interest::ERROR), if lent => {
                    r?;
                    self.on_error_queue(&mut q.core)?;
                }
            }
        }
    }

    /// The queue's token fired: shutdown (or eviction before Connect) drains, teardown just
    /// closes.
    async fn on_cancel<F>(
        &mut self,
        q: &mut Queue<F>,
        root: &CancellationToken,
    ) -> Result<QueueExit, ConnError>
    where
        F: Future<Output = Completion> + Send + 'static,
    {
        if !root.is_cancelled() {
            return Ok(QueueExit::TornDown);
        }
        if !q.is_bound() && !q.shutting_down() {
            return Err(ConnError::Evicted);
        }
        let until = tokio::time::Instant::now() + DRAIN_TIMEOUT;
        while q.is_running() {
            if tokio::time::timeout_at(until, q.woken()).await.is_err() {
                break;
            }
            self.answer_woken(q);
        }
        let _ = self.flush_all(&mut q.core, Duration::from_secs(2)).await;
        Ok(QueueExit::Shutdown)
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Serves one accepted connection to its end, as [`serve`] does, with a panic while serving
/// it caught here: that connection closes (its socket and queue state are dropped, the
/// commands it started have finished or run on detached), the panic is logged and counted
/// (`lamina_connection_panics_total`), and every other connection and the management plane go
/// on. Sizes a peer controls are checked before anything is allocated for them, so a panic
/// here is a bug, not an input the target failed to check.
pub async fn serve_guarded(stream: TcpStream, target: Arc<Network>, ticket: Ticket, secure: bool) {
    let stats = target.transport_stats.clone();
    contain_panic(serve(stream, target, ticket, secure), &stats).await;
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
/// (and on a `secure` port the TLS handshake first) within the ticket's connect timeout, and
/// ends early if the ticket is evicted.
pub async fn serve(stream: TcpStream, target: Arc<Network>, mut ticket: Ticket, secure: bool) {
    let (Ok(local), Ok(peer)) = (stream.local_addr(), stream.peer_addr()) else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let span = tracing::info_span!("conn", %peer, qid = tracing::field::Empty,
        cntlid = tracing::field::Empty, hostnqn = tracing::field::Empty);
    let stats = target.transport_stats.clone();
    crate::plane::stats::gauge_add(&stats.connections, 1);
    stats
        .connections_total
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let run = async move {
        let stream = Arc::new(stream);
        let (tls, tls_peer) = if secure {
            let handshake = tls::accept(&target.plane, stream.clone(), ticket.connect_timeout());
            let done = tokio::select! {
                () = ticket.token.cancelled() => return,
                r = handshake => r,
            };
            match done {
                Ok((link, who)) => {
                    target.transport_stats.on_tls_handshake("success");
                    tracing::debug!(hostnqn = %who.hostnqn, subnqn = %who.subnqn,
                        cipher = link.cipher(), identity_version = who.version, key = %who.key,
                        derivation = who.derivation.name(),
                        "TLS handshake done");
                    (Some(Box::new(link)), Some(Arc::new(who)))
                }
                Err(e) => {
                    target.transport_stats.on_tls_handshake(e.label());
                    tracing::warn!(reason = e.label(), error = %e, "TLS handshake refused: closing");
                    if matches!(e, tls::HandshakeError::Timeout(_)) {
                        ticket.on_connect_timeout();
                    }
                    return;
                }
            }
        } else {
            (None, None)
        };
        let site = ConnectSite {
            local,
            peer,
            tls: tls_peer,
        };
        let mut queue = new_queue(target.plane.clone(), site, ticket.connect_timeout());
        let max_pdu = usize::try_from(queue.max_pdu()).unwrap_or(READ_CHUNK);
        let chunk = READ_CHUNK.max(max_pdu.saturating_mul(4));
        // TLS encrypts into its own buffers: nothing is sent from the payload's memory.
        let zero_copy_min = match target.settings.zero_copy_min {
            _ if tls.is_some() => 0,
            0 => 0,
            min if zero_copy::enable(stream.as_fd()).is_ok() => min,
            _ => 0,
        };
        let mut socket = Socket {
            stream,
            tls,
            tx: Tx {
                zero_copy_min,
                stats: target.transport_stats.clone(),
            },
            rbuf: ReadBuffer::new(chunk, MAX_READ_CHUNKS, MIN_READ, max_pdu),
            input_paused: false,
            poll: BusyPoll::new(target.settings.busy_poll),
        };
        let root = ticket.token.clone();
        let result = socket.drive(&mut queue, &root, &mut ticket).await;
        if result.is_err() {
            // The TermReq the core queued, if it did.
            let _ = write_out(
                &socket.stream,
                &socket.tx,
                socket.tls.as_deref_mut(),
                &mut queue.core,
            );
        }
        // Commands still running are not dropped: they run to completion first (their
        // completions go nowhere), and the controller is released only once nothing the
        // queue started is still writing.
        queue.finish_in_flight().await;
        queue.unbind();
        socket.settle_lent(&mut queue.core).await;
        if let Some(t) = socket.tls.as_deref_mut() {
            t.close();
        }
        match result {
            Ok(exit) => tracing::debug!(?exit, "connection closed"),
            Err(e) => {
                if matches!(e, ConnError::Queue(QueueError::Timeout(_))) {
                    ticket.on_connect_timeout();
                }
                log_end(&e);
            }
        }
    };
    tracing::Instrument::instrument(run, span).await;
    crate::plane::stats::gauge_add(&stats.connections, -1);
}

fn log_end(e: &ConnError) {
    match e {
        ConnError::Io(e) => tracing::debug!(error = %e, "connection closed"),
        ConnError::Queue(QueueError::HostTerminated(fes)) => {
            tracing::warn!(?fes, "host terminated the connection (H2CTermReq)");
        }
        ConnError::Queue(QueueError::Timeout(_)) => {
            tracing::debug!("no ICReq and Connect in time: closing");
        }
        ConnError::Queue(e) => {
            tracing::warn!(violation = %e, fes = ?e.fes(), cause = ?e.cause(),
                "protocol violation: sent C2HTermReq, closing");
        }
        ConnError::Evicted => {
            tracing::debug!("closed before Connect to make room for a new connection");
        }
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
