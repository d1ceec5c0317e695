//! [`Recycler`]: buffers a connection reuses instead of allocating per command (a socket read
//! buffer, the scratch space PDU headers are encoded into, the buffers reads fill for C2HData).
//!
//! Every one of them travels as `Bytes` views (a write's payload is a slice of the read
//! buffer; a read's data is queued for `writev` as is), so the connection cannot simply take a
//! buffer back when it is done with it: a view may still be in flight. A [`Recycler`] keeps one
//! *anchor* per buffer, an empty `BytesMut` handle on the allocation, and lends the rest of the
//! allocation out with `split_off(0)`. Once every view of a buffer is dropped, the anchor is
//! the only reference left and `try_reclaim` gets the whole allocation back without touching
//! the allocator. A buffer is therefore allocated once (plus the one `Shared` header `bytes`
//! makes when it is first split) and reused for the life of the connection.
//!
//! A recycler keeps at most `max` buffers; past that (a burst larger than it is sized for) it
//! hands out plain, unpooled buffers, so memory stays bounded and nothing fails.

use std::collections::VecDeque;

use bytes::{Buf, BytesMut};

/// Anchors tried per request before a new buffer is allocated: buffers come back in about
/// the order they went out, so the front one is nearly always free.
const SCAN: usize = 8;

/// Buffers of one capacity, lent out and reclaimed (see the module documentation).
#[derive(Debug)]
pub struct Recycler {
    anchors: VecDeque<BytesMut>,
    capacity: usize,
    max: usize,
    align: usize,
}

impl Recycler {
    /// A recycler of up to `max` buffers of `capacity` bytes, none allocated yet.
    pub fn new(capacity: usize, max: usize) -> Self {
        Self::aligned(capacity, max, 1)
    }

    /// Like [`Recycler::new`], with buffers starting on an `align`-byte boundary (read data
    /// then suits `O_DIRECT` without a bounce buffer).
    pub fn aligned(capacity: usize, max: usize, align: usize) -> Self {
        Self {
            anchors: VecDeque::new(),
            capacity,
            max,
            align: align.max(1),
        }
    }

    /// Capacity of the buffers this recycler lends.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Buffers allocated and kept for reuse.
    pub fn pooled(&self) -> usize {
        self.anchors.len()
    }

    /// An empty buffer with room for at least [`Recycler::capacity`] bytes: a reclaimed one
    /// when one is free, else a new one (kept for reuse while fewer than `max` exist).
    pub fn take(&mut self) -> BytesMut {
        for _ in 0..self.anchors.len().min(SCAN) {
            let Some(mut anchor) = self.anchors.pop_front() else {
                break;
            };
            // Only the anchor is left: the allocation is ours again, with no copy (the anchor
            // is empty) and no allocation (`try_reclaim` never allocates).
            let free = anchor.try_reclaim(self.capacity);
            let lent = free.then(|| anchor.split_off(0));
            self.anchors.push_back(anchor);
            if let Some(lent) = lent {
                return lent;
            }
        }
        let mut fresh = BytesMut::with_capacity(self.capacity + self.align - 1);
        let misalign = fresh.as_ptr().addr() % self.align;
        if misalign != 0 {
            // Skip to the boundary; the skipped bytes stay part of the allocation.
            fresh.resize(self.align - misalign, 0);
            fresh.advance(self.align - misalign);
        }
        if self.anchors.len() >= self.max {
            return fresh;
        }
        // The first split turns the buffer into a shared one: the one-off allocation of its
        // reference count; every later lend is a reference count increment.
        let lent = fresh.split_off(0);
        self.anchors.push_back(fresh);
        lent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    #[test]
    fn a_buffer_comes_back_once_its_views_are_gone() {
        let mut r = Recycler::new(4096, 4);
        let mut a = r.take();
        let ptr = a.as_ptr();
        a.put_bytes(7, 4096);
        let frozen = a.freeze();
        let view = frozen.clone();
        drop(frozen);
        // Still viewed: a second buffer is allocated.
        let b = r.take();
        assert_ne!(b.as_ptr(), ptr);
        assert_eq!(r.pooled(), 2);
        drop(view);
        drop(b);
        let c = r.take();
        assert_eq!(c.as_ptr(), ptr, "the first buffer is reused");
        assert!(c.capacity() >= 4096 && c.is_empty());
        assert_eq!(r.pooled(), 2);
    }

    #[test]
    fn past_max_buffers_are_unpooled() {
        let mut r = Recycler::new(512, 1);
        let _a = r.take();
        let _b = r.take();
        assert_eq!(r.pooled(), 1);
    }
}
