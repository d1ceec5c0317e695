//! The send side of a queue: PDUs queued as `Bytes` segments (headers encoded into a reusable
//! scratch buffer, payloads as the `Bytes` the backend produced), handed to the caller's
//! vectored, non-blocking write, coalescing everything that is ready into as few syscalls as
//! the kernel accepts. The scratch space comes from a [`Recycler`], so encoding a header (or a
//! data digest) allocates nothing once the connection has warmed up. What a zero-copy write
//! took moves to [`Lent`] until the caller reports that write complete.

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use bytes::{Buf, Bytes, BytesMut};

use super::lent::Lent;
use crate::nvme::Cqe;
use crate::recycle::Recycler;
use crate::tcp::{C2hData, CapsuleResp, DataTrailer, Pdu, R2t, TermReq, TxParams};

/// Most segments handed to one `writev`.
const MAX_IOV: usize = 64;
/// Scratch space taken at a time for encoded headers.
const SCRATCH_CHUNK: usize = 16 * 1024;
/// Room a header (with digests and padding) may need.
const SCRATCH_MIN: usize = 512;
/// Scratch chunks kept for reuse (headers waiting in the queue pin theirs).
const MAX_SCRATCH_CHUNKS: usize = 64;

/// What one write did with the bytes it was handed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// How many bytes, from the start of the slices, it took.
    pub bytes: usize,
    /// Whether it took them without copying (Linux `MSG_ZEROCOPY`): they stay alive, and
    /// their buffers unrecycled, until the caller reports that write complete.
    pub zero_copy: bool,
}

impl Sent {
    /// A write that copied what it took.
    pub fn copied(bytes: usize) -> Self {
        Self {
            bytes,
            zero_copy: false,
        }
    }
}

/// The queue of bytes to send.
#[derive(Debug)]
pub(crate) struct Output {
    segments: VecDeque<Bytes>,
    queued_bytes: usize,
    scratch: BytesMut,
    chunks: Recycler,
    pub(crate) lent: Lent,
}

impl Output {
    /// An empty queue.
    pub(crate) fn new() -> Self {
        Self {
            segments: VecDeque::new(),
            queued_bytes: 0,
            scratch: BytesMut::new(),
            chunks: Recycler::new(SCRATCH_CHUNK, MAX_SCRATCH_CHUNKS),
            lent: Lent::default(),
        }
    }

    /// Whether nothing is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Bytes waiting to be sent.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Segments waiting to be sent.
    pub(crate) fn segments(&self) -> usize {
        self.segments.len()
    }

    fn push(&mut self, b: Bytes) {
        if !b.is_empty() {
            self.queued_bytes += b.len();
            self.segments.push_back(b);
        }
    }

    fn scratch(&mut self) -> &mut BytesMut {
        if self.scratch.capacity() - self.scratch.len() < SCRATCH_MIN {
            // The scratch is always empty here (every header is split off whole).
            self.scratch = self.chunks.take();
        }
        &mut self.scratch
    }

    fn take_scratch(&mut self) -> Bytes {
        self.scratch.split().freeze()
    }

    /// Queues a PDU that carries no data, encoded whole.
    pub(crate) fn push_pdu(&mut self, pdu: &Pdu, tx: TxParams) {
        if pdu.encode(tx, self.scratch()).is_ok() {
            let b = self.take_scratch();
            self.push(b);
        }
    }

    /// Queues a response capsule.
    pub(crate) fn push_cqe(&mut self, cqe: Cqe, tx: TxParams) {
        CapsuleResp { cqe }.encode(tx, self.scratch());
        let b = self.take_scratch();
        self.push(b);
    }

    /// Queues an R2T.
    pub(crate) fn push_r2t(&mut self, r2t: &R2t, tx: TxParams) {
        r2t.encode(tx, self.scratch());
        let b = self.take_scratch();
        self.push(b);
    }

    /// Queues a C2HData PDU: its header from the scratch buffer, its payload as given.
    pub(crate) fn push_c2h_data(&mut self, pdu: &C2hData, tx: TxParams) {
        let trailer = pdu.encode_head(tx, self.scratch());
        let head = self.take_scratch();
        if let Ok(DataTrailer { data, data_digest }) = trailer {
            self.push(head);
            self.push(data);
            if let Some(d) = data_digest {
                self.scratch().extend_from_slice(&d);
                let d = self.take_scratch();
                self.push(d);
            }
        }
    }

    /// Queues a C2HTermReq.
    pub(crate) fn push_term_req(&mut self, term: &TermReq, tx: TxParams) {
        self.push_pdu(&Pdu::C2hTermReq(term.clone()), tx);
    }

    /// Hands the queued bytes to `write` (a non-blocking vectored write) until everything is
    /// sent (`Ok(true)`) or it would block (`Ok(false)`).
    pub(crate) fn write_with(
        &mut self,
        mut write: impl FnMut(&[IoSlice<'_>]) -> io::Result<Sent>,
    ) -> io::Result<bool> {
        while !self.segments.is_empty() {
            let mut iov: [IoSlice<'_>; MAX_IOV] = [IoSlice::new(&[]); MAX_IOV];
            let mut n = 0;
            for (slot, seg) in iov.iter_mut().zip(self.segments.iter()) {
                *slot = IoSlice::new(seg);
                n += 1;
            }
            let sent = match write(&iov[..n]) {
                Ok(Sent { bytes: 0, .. }) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(sent) => sent,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            };
            self.advance(sent);
        }
        Ok(true)
    }

    fn advance(&mut self, sent: Sent) {
        let mut written = sent.bytes;
        self.queued_bytes -= written;
        while written > 0 {
            let Some(front) = self.segments.front_mut() else {
                break;
            };
            if front.len() <= written {
                written -= front.len();
                if let Some(done) = self.segments.pop_front()
                    && sent.zero_copy
                {
                    self.lent.lend(done);
                }
            } else {
                if sent.zero_copy {
                    self.lent.lend(front.split_to(written));
                } else {
                    front.advance(written);
                }
                written = 0;
            }
        }
        if sent.zero_copy {
            self.lent.sent();
        }
    }
}
