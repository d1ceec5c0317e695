//! io_uring file I/O for Lamina's file and block-device backends.
//!
//! `lamina-lvol` forbids `unsafe` code, and handing a buffer to the kernel is inherently
//! unsafe: the memory must stay valid and untouched until the kernel says it is done, even if
//! the caller gives up waiting. This crate is the one place that does it, behind a safe API
//! where the ring *owns* every buffer while its operation is in flight:
//!
//! - [`UringFile::read_at`] takes a `BytesMut` and gives it back with the bytes appended;
//! - [`UringFile::write_at`] takes the `Bytes` to write (zero-copy: a slice of the socket
//!   buffer) and drops its reference only when the write has completed;
//! - [`UringFile::sync_data`] is `fdatasync`.
//!
//! If the future is dropped before completion, the operation is *abandoned*: its buffer stays
//! in the ring's slot until the completion arrives, then is released. Short reads and writes
//! are continued by the ring until the whole range is done (a read past the end of the file is
//! an `UnexpectedEof` error).
//!
//! # Threading
//!
//! Futures submit their request themselves, from the task that polls them, so submission
//! never hops threads: one `io_uring_enter` per request, or one per burst under a [`Plug`].
//! Completions are reaped by `reaper`: created on a tokio runtime (the target's case), a task
//! on that runtime, woken through an eventfd the ring signals and the runtime's reactor
//! watches, so a completion wakes the runtime's own thread once and no other thread runs;
//! without a runtime, a completion thread blocked in `io_uring_enter`. Either records each
//! result in its slot and wakes the waiting task. Operations live in a fixed slab of slots
//! sized at creation (a request that finds no free slot waits for one), so steady-state I/O
//! allocates nothing. No busy polling: an idle ring costs nothing. The slab and the submission
//! queue are guarded by one short mutex (never held across a syscall).
//!
//! [`UringFile::new`] fails when the kernel has no io_uring (or a sandbox forbids it, as
//! Docker's default seccomp profile does): callers detect that at run time and keep a
//! thread-pool fallback.

use std::collections::VecDeque;
use std::fs::File;
use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use io_uring::{IoUring, opcode, types};
use parking_lot::Mutex;

mod plug;
mod reaper;

pub use plug::{MAX_DEFERRED, Plug, plug};

/// `user_data` of the no-op that wakes the reaper to stop.
const EXIT: u64 = u64::MAX;

/// A buffer owned by an operation.
#[derive(Debug)]
enum Buf {
    None,
    Read(BytesMut),
    Write(Bytes),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
    SyncData,
}

/// One operation slot.
#[derive(Debug)]
struct Op {
    kind: Kind,
    buf: Buf,
    /// File offset of the whole request.
    offset: u64,
    /// Bytes of the request (0 for sync).
    len: usize,
    /// Bytes done so far (short reads and writes are continued).
    done: usize,
    /// Length of the read buffer before the request (reads append).
    start: usize,
    result: Option<io::Result<()>>,
    waker: Option<Waker>,
    /// The future was dropped: release the slot when the completion comes.
    abandoned: bool,
    /// Submitted and not completed yet.
    in_kernel: bool,
}

impl Op {
    fn idle() -> Self {
        Self {
            kind: Kind::SyncData,
            buf: Buf::None,
            offset: 0,
            len: 0,
            done: 0,
            start: 0,
            result: None,
            waker: None,
            abandoned: false,
            in_kernel: false,
        }
    }
}

#[derive(Debug)]
struct State {
    ops: Vec<Op>,
    free: Vec<usize>,
    /// Requests waiting for a free slot.
    waiters: VecDeque<Waker>,
    in_flight: usize,
    closing: bool,
}

struct Shared {
    ring: IoUring,
    file: File,
    state: Mutex<State>,
    /// The eventfd the ring signals on every completion, when a runtime task reaps them.
    events: Option<File>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("file", &self.file)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// A file (or block device) with its own io_uring. See the crate documentation.
#[derive(Debug)]
pub struct UringFile {
    shared: Arc<Shared>,
}

/// What a finished operation gives back.
#[derive(Debug)]
struct Finished {
    buf: Buf,
    result: io::Result<()>,
}

impl UringFile {
    /// Puts `file` under a new ring with `depth` operation slots and starts reaping its
    /// completions: on the current tokio runtime when there is one, else on a thread.
    ///
    /// # Errors
    /// When io_uring is unavailable (old kernel, `kernel.io_uring_disabled`, a seccomp
    /// filter), lacks the read, write or fsync operations, or the reaper cannot start.
    pub fn new(file: File, depth: u32) -> io::Result<Self> {
        let depth = depth.clamp(1, 4096);
        // Twice the slots: an exit no-op always finds room.
        let ring = IoUring::new(depth * 2)?;
        let mut probe = io_uring::Probe::new();
        ring.submitter().register_probe(&mut probe)?;
        for code in [opcode::Read::CODE, opcode::Write::CODE, opcode::Fsync::CODE] {
            if !probe.is_supported(code) {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "io_uring lacks read, write or fsync",
                ));
            }
        }
        let events = reaper::events_for(&ring);
        let slots = usize::try_from(depth).unwrap_or(1);
        let shared = Arc::new(Shared {
            ring,
            file,
            state: Mutex::new(State {
                ops: (0..slots).map(|_| Op::idle()).collect(),
                free: (0..slots).rev().collect(),
                waiters: VecDeque::new(),
                in_flight: 0,
                closing: false,
            }),
            events,
        });
        reaper::start(&shared)?;
        Ok(Self { shared })
    }

    /// The file.
    pub fn file(&self) -> &File {
        &self.shared.file
    }

    /// Reads `len` bytes at `offset`, appending them to `buf`; returns the buffer (with the
    /// bytes on success, as it was on error) and the outcome.
    pub async fn read_at(
        &self,
        offset: u64,
        mut buf: BytesMut,
        len: usize,
    ) -> (BytesMut, io::Result<()>) {
        // No-op when the caller lent a buffer with room (the target's pools do).
        buf.reserve(len);
        let start = buf.len();
        let op = OpFuture::new(self, Kind::Read, Buf::Read(buf), offset, len, start);
        let done = op.await;
        match done.buf {
            Buf::Read(b) => (b, done.result),
            _ => (BytesMut::new(), done.result),
        }
    }

    /// Writes all of `data` at `offset`.
    pub async fn write_at(&self, offset: u64, data: Bytes) -> io::Result<()> {
        let len = data.len();
        OpFuture::new(self, Kind::Write, Buf::Write(data), offset, len, 0)
            .await
            .result
    }

    /// `fdatasync`: completed writes are durable when this returns.
    pub async fn sync_data(&self) -> io::Result<()> {
        OpFuture::new(self, Kind::SyncData, Buf::None, 0, 0, 0)
            .await
            .result
    }
}

impl Drop for UringFile {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // The reaper stops once every operation in flight has completed; it holds the ring
        // (and the file) until then, so no buffer is released under the kernel.
        let mut st = self.shared.state.lock();
        st.closing = true;
        let nop = opcode::Nop::new().build().user_data(EXIT);
        // SAFETY: a no-op references no memory; the state lock serialises access to the
        // submission queue.
        let pushed = unsafe { self.shared.ring.submission_shared().push(&nop).is_ok() };
        drop(st);
        if pushed {
            let _ = self.shared.ring.submitter().submit();
        }
    }
}

/// The submission queue entry continuing `op` (slot `index`) from where it is.
fn entry(fd: types::Fd, index: usize, op: &mut Op) -> io_uring::squeue::Entry {
    let rest = u32::try_from(op.len - op.done).unwrap_or(u32::MAX);
    let at = op.offset + op.done as u64;
    let e = match (&mut op.buf, op.kind) {
        (Buf::Read(b), Kind::Read) => {
            // The bytes read so far are already part of the buffer's length (`complete` sets
            // it), so the rest goes at the start of the spare capacity, never past its end.
            let spare = b.spare_capacity_mut();
            let rest = rest.min(u32::try_from(spare.len()).unwrap_or(u32::MAX));
            opcode::Read::new(fd, spare.as_mut_ptr().cast::<u8>(), rest)
                .offset(at)
                .build()
        }
        (Buf::Write(b), Kind::Write) => {
            let ptr = b.get(op.done..).map_or(std::ptr::null(), <[u8]>::as_ptr);
            opcode::Write::new(fd, ptr, rest).offset(at).build()
        }
        _ => opcode::Fsync::new(fd)
            .flags(types::FsyncFlags::DATASYNC)
            .build(),
    };
    e.user_data(index as u64)
}

/// Pushes the entry of slot `index` (state lock held by the caller).
#[allow(unsafe_code)]
fn push(shared: &Shared, st: &mut State, index: usize) -> io::Result<()> {
    let fd = types::Fd(shared.file.as_raw_fd());
    let Some(op) = st.ops.get_mut(index) else {
        return Err(io::ErrorKind::InvalidInput.into());
    };
    let sqe = entry(fd, index, op);
    // SAFETY: the entry points into the buffer owned by slot `index` (a `BytesMut`'s spare
    // capacity or a `Bytes`' data, whose heap memory does not move when the handle moves),
    // which stays in the slot, untouched, until its completion is reaped: the future only
    // takes it back from a completed slot, and dropping the future abandons the slot instead
    // of freeing it. The file descriptor lives in `Shared`, which the reaper keeps alive until
    // every operation has completed. The state lock serialises access to the submission queue
    // (the reaper pushes continuations under it too).
    let pushed = unsafe { shared.ring.submission_shared().push(&sqe) };
    pushed.map_err(|_| io::Error::other("io_uring submission queue full"))?;
    op.in_kernel = true;
    Ok(())
}

/// Records the completion of slot `index`; returns the waker to wake.
#[allow(unsafe_code)]
fn complete(shared: &Shared, index: usize, res: i32) -> Option<Waker> {
    let mut st = shared.state.lock();
    let op = st.ops.get_mut(index)?;
    let outcome = match usize::try_from(res) {
        Err(_) => Some(Err(io::Error::from_raw_os_error(res.saturating_neg()))),
        Ok(_) if op.kind == Kind::SyncData => Some(Ok(())),
        Ok(0) if op.done < op.len => Some(Err(io::ErrorKind::UnexpectedEof.into())),
        Ok(n) => {
            op.done = (op.done + n).min(op.len);
            if let (Buf::Read(b), true) = (&mut op.buf, n > 0) {
                // SAFETY: the kernel wrote `done` bytes past `start` into this buffer's spare
                // capacity (`reserve`d before submission), so they are initialised.
                unsafe { b.set_len(op.start + op.done) };
            }
            (op.done >= op.len).then_some(Ok(()))
        }
    };
    let Some(result) = outcome else {
        // A short read or write: continue it; the reaper submits it after this round.
        if let Err(e) = push(shared, &mut st, index) {
            return finish(&mut st, index, Err(e));
        }
        return None;
    };
    finish(&mut st, index, result)
}

fn finish(st: &mut State, index: usize, result: io::Result<()>) -> Option<Waker> {
    st.in_flight = st.in_flight.saturating_sub(1);
    let op = st.ops.get_mut(index)?;
    op.in_kernel = false;
    if op.abandoned {
        *op = Op::idle();
        st.free.push(index);
        return st.waiters.pop_front();
    }
    if let (Err(_), Buf::Read(b)) = (&result, &mut op.buf) {
        b.truncate(op.start);
    }
    op.result = Some(result);
    op.waker.take()
}

/// The ring failed: every operation in flight fails (its buffer is released only now that
/// the kernel is done with the ring).
fn fail_all(shared: &Shared) {
    let mut st = shared.state.lock();
    st.closing = true;
    let mut wake = Vec::new();
    for i in 0..st.ops.len() {
        let busy = st.ops.get(i).is_some_and(|o| o.in_kernel);
        if busy && let Some(w) = finish(&mut st, i, Err(io::Error::other("io_uring failed"))) {
            wake.push(w);
        }
    }
    wake.extend(st.waiters.drain(..));
    drop(st);
    for w in wake {
        w.wake();
    }
}

/// One request: submitted on first poll, finished when its slot has a result.
struct OpFuture<'a> {
    file: &'a UringFile,
    /// Before submission: what to submit.
    request: Option<(Kind, Buf, u64, usize, usize)>,
    slot: Option<usize>,
}

impl<'a> OpFuture<'a> {
    fn new(
        file: &'a UringFile,
        kind: Kind,
        buf: Buf,
        offset: u64,
        len: usize,
        start: usize,
    ) -> Self {
        Self {
            file,
            request: Some((kind, buf, offset, len, start)),
            slot: None,
        }
    }

    fn submit(&mut self, cx: &Context<'_>) -> Poll<Finished> {
        let shared = &self.file.shared;
        let mut st = shared.state.lock();
        if st.closing {
            let buf = self.request.take().map_or(Buf::None, |r| r.1);
            return Poll::Ready(Finished {
                buf,
                result: Err(io::Error::other("io_uring closed")),
            });
        }
        let Some(index) = st.free.pop() else {
            st.waiters.push_back(cx.waker().clone());
            return Poll::Pending;
        };
        let Some((kind, buf, offset, len, start)) = self.request.take() else {
            st.free.push(index);
            return Poll::Ready(Finished {
                buf: Buf::None,
                result: Err(io::ErrorKind::InvalidInput.into()),
            });
        };
        if let Some(op) = st.ops.get_mut(index) {
            *op = Op {
                kind,
                buf,
                offset,
                len,
                done: 0,
                start,
                result: None,
                waker: Some(cx.waker().clone()),
                abandoned: false,
                in_kernel: false,
            };
        }
        if let Err(e) = push(shared, &mut st, index) {
            let buf = st
                .ops
                .get_mut(index)
                .map_or(Buf::None, |o| std::mem::replace(o, Op::idle()).buf);
            st.free.push(index);
            return Poll::Ready(Finished {
                buf,
                result: Err(e),
            });
        }
        st.in_flight += 1;
        self.slot = Some(index);
        drop(st);
        plug::submit_or_defer(shared);
        Poll::Pending
    }
}

impl Future for OpFuture<'_> {
    type Output = Finished;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Finished> {
        let this = self.get_mut();
        let Some(index) = this.slot else {
            return this.submit(cx);
        };
        let mut st = this.file.shared.state.lock();
        let Some(op) = st.ops.get_mut(index) else {
            return Poll::Ready(Finished {
                buf: Buf::None,
                result: Err(io::ErrorKind::InvalidInput.into()),
            });
        };
        let Some(result) = op.result.take() else {
            if !op.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                op.waker = Some(cx.waker().clone());
            }
            return Poll::Pending;
        };
        let buf = std::mem::replace(op, Op::idle()).buf;
        st.free.push(index);
        let waiter = st.waiters.pop_front();
        drop(st);
        this.slot = None;
        if let Some(w) = waiter {
            w.wake();
        }
        Poll::Ready(Finished { buf, result })
    }
}

impl Drop for OpFuture<'_> {
    fn drop(&mut self) {
        let Some(index) = self.slot.take() else {
            if self.request.is_some() {
                // Dropped while waiting for a slot: it may have been the one woken for a slot
                // just freed, so pass the wake-up on rather than strand the next waiter.
                let next = self.file.shared.state.lock().waiters.pop_front();
                if let Some(w) = next {
                    w.wake();
                }
            }
            return;
        };
        let mut st = self.file.shared.state.lock();
        let Some(op) = st.ops.get_mut(index) else {
            return;
        };
        if op.result.is_some() {
            // Completed but never collected: the slot is free now.
            *op = Op::idle();
            st.free.push(index);
            if let Some(w) = st.waiters.pop_front() {
                drop(st);
                w.wake();
            }
        } else {
            op.abandoned = true;
            op.waker = None;
        }
    }
}

#[cfg(test)]
mod tests;
