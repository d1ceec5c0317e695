//! [`TxBuf`]: the bytes a queue has queued for the socket, sent with vectored writes.
//!
//! PDU heads (CH, PSH, header digest, padding) and data digests are small: they are encoded
//! back to back into one `BytesMut`, and consecutive ones form a single I/O vector. Payloads
//! are `Bytes` handles to the caller's buffers and go to `writev` as their own vectors, never
//! copied. Everything is sent in queue order, so several PDUs (many commands, or an R2T's
//! H2CData run) leave in one system call. Capacity is kept between flushes: in steady state
//! nothing here allocates.

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use bytes::{Buf, Bytes, BytesMut};

/// Most I/O vectors handed to one `writev` (Linux `UIO_MAXIOV` is 1024).
const MAX_IOV: usize = 64;

/// Bytes of already sent heads after which the head buffer is compacted.
const COMPACT_AT: usize = 64 * 1024;

#[derive(Debug)]
enum Seg {
    /// `len` bytes of `TxBuf::heads`, following the previous head segment.
    Head(usize),
    /// A payload.
    Data(Bytes),
}

/// Queued output of one connection.
#[derive(Debug)]
pub(crate) struct TxBuf {
    heads: BytesMut,
    /// Bytes at the front of `heads` that belong to segments already sent.
    head_pos: usize,
    segs: VecDeque<Seg>,
    /// Bytes of the front segment already sent.
    seg_pos: usize,
    pending: usize,
}

impl Default for TxBuf {
    fn default() -> Self {
        Self::with_capacity(16 * 1024, 256)
    }
}

impl TxBuf {
    /// Pre-sized buffers: `head_bytes` of head space and room for `segments` segments.
    pub(crate) fn with_capacity(head_bytes: usize, segments: usize) -> Self {
        Self {
            heads: BytesMut::with_capacity(head_bytes),
            head_pos: 0,
            segs: VecDeque::with_capacity(segments),
            seg_pos: 0,
            pending: 0,
        }
    }

    /// Whether nothing is waiting to be sent.
    pub(crate) fn is_empty(&self) -> bool {
        self.pending == 0
    }

    /// Bytes waiting to be sent.
    pub(crate) fn pending_bytes(&self) -> usize {
        self.pending
    }

    /// Encodes a head (or any small bytes) with `encode`, appending it to the queue.
    pub(crate) fn push_head<R>(&mut self, encode: impl FnOnce(&mut BytesMut) -> R) -> R {
        let before = self.heads.len();
        let out = encode(&mut self.heads);
        let added = self.heads.len() - before;
        self.note_head(added);
        out
    }

    /// Appends small bytes (a data digest) after the last segment.
    pub(crate) fn push_small(&mut self, bytes: &[u8]) {
        self.heads.extend_from_slice(bytes);
        self.note_head(bytes.len());
    }

    fn note_head(&mut self, added: usize) {
        if added == 0 {
            return;
        }
        self.pending += added;
        if let Some(Seg::Head(len)) = self.segs.back_mut() {
            *len += added;
        } else {
            self.segs.push_back(Seg::Head(added));
        }
    }

    /// Appends a payload, sent as its own I/O vector.
    pub(crate) fn push_data(&mut self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        self.pending += data.len();
        self.segs.push_back(Seg::Data(data));
    }

    /// Sends what it can with `write` (a non-blocking vectored write) until everything is sent
    /// (`Ok(true)`) or the socket would block (`Ok(false)`).
    pub(crate) fn flush_with(
        &mut self,
        mut write: impl FnMut(&[IoSlice<'_>]) -> io::Result<usize>,
    ) -> io::Result<bool> {
        while !self.is_empty() {
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let count = self.fill_iov(&mut iov);
            let slices = iov.get(..count).unwrap_or_default();
            match write(slices) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "socket wrote 0 bytes",
                    ));
                }
                Ok(n) => self.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Fills `iov` with the front segments; returns how many vectors it filled.
    fn fill_iov<'a>(&'a self, iov: &mut [IoSlice<'a>; MAX_IOV]) -> usize {
        let mut head_at = self.head_pos;
        let mut count = 0;
        for (i, seg) in self.segs.iter().enumerate() {
            let skip = if i == 0 { self.seg_pos } else { 0 };
            let bytes: &[u8] = match seg {
                Seg::Head(len) => {
                    let s = self.heads.get(head_at..head_at + len).unwrap_or_default();
                    head_at += len;
                    s
                }
                Seg::Data(b) => b,
            };
            let Some(slot) = iov.get_mut(count) else {
                break;
            };
            *slot = IoSlice::new(bytes.get(skip..).unwrap_or_default());
            count += 1;
        }
        count
    }

    /// Drops `n` sent bytes from the front.
    fn advance(&mut self, mut n: usize) {
        self.pending = self.pending.saturating_sub(n);
        while n > 0 {
            let Some(front) = self.segs.front() else {
                break;
            };
            let len = match front {
                Seg::Head(len) => *len,
                Seg::Data(b) => b.len(),
            };
            let left = len - self.seg_pos;
            if n < left {
                self.seg_pos += n;
                break;
            }
            n -= left;
            if let Some(Seg::Head(len)) = self.segs.pop_front() {
                self.head_pos += len;
            }
            self.seg_pos = 0;
        }
        self.reclaim();
    }

    fn reclaim(&mut self) {
        if self.segs.is_empty() {
            self.heads.clear();
            self.head_pos = 0;
        } else if self.head_pos >= COMPACT_AT {
            self.heads.advance(self.head_pos);
            self.head_pos = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that accepts at most `cap` bytes per call and records everything.
    fn sink(out: &mut Vec<u8>, cap: usize) -> impl FnMut(&[IoSlice<'_>]) -> io::Result<usize> {
        move |slices| {
            let mut n = 0;
            for s in slices {
                let take = (cap - n).min(s.len());
                out.extend_from_slice(&s[..take]);
                n += take;
                if n == cap {
                    break;
                }
            }
            Ok(n)
        }
    }

    #[test]
    fn heads_coalesce_and_data_stays_separate() {
        let mut tx = TxBuf::default();
        tx.push_small(b"ab");
        tx.push_small(b"cd");
        tx.push_data(Bytes::from_static(b"DATA"));
        tx.push_small(b"ef");
        assert_eq!(tx.segs.len(), 3);
        assert_eq!(tx.pending_bytes(), 10);
        let mut out = Vec::new();
        assert!(tx.flush_with(sink(&mut out, 1000)).unwrap());
        assert_eq!(out, b"abcdDATAef");
        assert!(tx.is_empty());
        assert!(tx.heads.is_empty());
    }

    #[test]
    fn partial_writes_resume_where_they_stopped() {
        let mut tx = TxBuf::default();
        let mut expected = Vec::new();
        for i in 0..50u8 {
            tx.push_small(&[i; 3]);
            expected.extend_from_slice(&[i; 3]);
            let data = Bytes::from(vec![i ^ 0xff; usize::from(i)]);
            expected.extend_from_slice(&data);
            tx.push_data(data);
        }
        let mut out = Vec::new();
        // 7 bytes per call splits heads and payloads at every possible place.
        for _ in 0..10_000 {
            if tx.flush_with(sink(&mut out, 7)).unwrap() {
                break;
            }
        }
        assert_eq!(out, expected);
    }

    #[test]
    fn would_block_keeps_everything_queued() {
        let mut tx = TxBuf::default();
        tx.push_small(b"xyz");
        let blocked = tx.flush_with(|_| Err(io::ErrorKind::WouldBlock.into()));
        assert!(!blocked.unwrap());
        assert_eq!(tx.pending_bytes(), 3);
        let mut out = Vec::new();
        assert!(tx.flush_with(sink(&mut out, 2)).unwrap());
        assert_eq!(out, b"xyz");
    }

    #[test]
    fn more_segments_than_one_writev_takes() {
        let mut tx = TxBuf::default();
        let mut expected = Vec::new();
        for i in 0..200u16 {
            let d = Bytes::from(i.to_le_bytes().to_vec());
            expected.extend_from_slice(&d);
            tx.push_data(d);
        }
        let mut out = Vec::new();
        assert!(tx.flush_with(sink(&mut out, usize::MAX)).unwrap());
        assert_eq!(out, expected);
    }
}
