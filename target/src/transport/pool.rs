//! The connection's buffers: the socket read buffer ([`ReadBuffer`]) and the buffers reads
//! fill for C2HData ([`DataPool`]), both built on `lamina_protocol`'s
//! [`Recycler`], so a buffer is allocated once and reused for the life of the connection.

use bytes::BytesMut;
use lamina_protocol::recycle::Recycler;

/// Size classes of the read-data pool: 4 KiB doubling up to this many classes (4 KiB to
/// 256 KiB, the largest transfer Lamina accepts).
const DATA_CLASSES: usize = 7;
const SMALLEST_CLASS: usize = 4096;
/// Bytes of read buffers one connection keeps per class at most.
const DATA_POOL_BYTES_PER_CLASS: usize = 4 << 20;
/// Alignment of read buffers: what `O_DIRECT` on a 4 KiB-sector device needs.
const DATA_ALIGN: usize = 4096;

/// Buffers for read data (C2HData payloads), by power-of-two size class.
#[derive(Debug)]
pub struct DataPool {
    classes: Vec<Recycler>,
}

impl DataPool {
    /// A pool keeping at most `max_per_class` buffers of each class (fewer for the large
    /// classes, so a class keeps at most 4 MiB).
    pub fn new(max_per_class: usize) -> Self {
        let classes = (0..DATA_CLASSES)
            .map(|i| {
                let size = SMALLEST_CLASS << i;
                let max = max_per_class.min(DATA_POOL_BYTES_PER_CLASS / size).max(1);
                Recycler::aligned(size, max, DATA_ALIGN)
            })
            .collect();
        Self { classes }
    }

    /// An empty buffer with room for `len` bytes.
    pub fn take(&mut self, len: usize) -> BytesMut {
        if len == 0 {
            return BytesMut::new();
        }
        match self.classes.iter_mut().find(|c| c.capacity() >= len) {
            Some(class) => class.take(),
            // Larger than any class (the transport refuses such transfers): unpooled.
            None => BytesMut::with_capacity(len),
        }
    }
}

/// The socket read buffer: one lent chunk that PDUs are split off, replaced by a fresh chunk
/// when it runs short, so payload views handed to commands never pin a buffer the reader
/// needs.
#[derive(Debug)]
pub struct ReadBuffer {
    /// The chunk being read into; decoded PDUs are split off its front.
    pub buf: BytesMut,
    chunks: Recycler,
    /// Smallest free space worth a `read` syscall.
    min_read: usize,
    /// Largest PDU the framer accepts: a PLEN above it is the framer's to refuse, never a
    /// reason to allocate.
    max_pdu: usize,
}

impl ReadBuffer {
    /// A reader whose chunks hold `chunk` bytes (at most `max_chunks` kept for reuse), that
    /// reads when at least `min_read` bytes are free and makes room for PDUs of up to
    /// `max_pdu` bytes.
    pub fn new(chunk: usize, max_chunks: usize, min_read: usize, max_pdu: usize) -> Self {
        let mut chunks = Recycler::new(chunk, max_chunks);
        let buf = chunks.take();
        Self {
            buf,
            chunks,
            min_read,
            max_pdu,
        }
    }

    /// Chunks allocated and kept for reuse.
    pub fn chunks(&self) -> usize {
        self.chunks.pooled()
    }

    /// Makes room before a read: at least `min_read` free bytes, and room for the rest of the
    /// PDU at the front of the buffer, so the framer never needs to grow (allocate) it.
    pub fn make_room(&mut self) {
        let need = self.pending_rest().max(self.min_read);
        self.ensure_free(need);
    }

    /// Makes room for the rest of the PDU at the front of the buffer, if its common header
    /// is in: called before decoding, because the framer grows (allocates) a buffer too
    /// short for the PDU it has started.
    pub fn fit_pending(&mut self) {
        let need = self.pending_rest();
        self.ensure_free(need);
    }

    /// Bytes of the PDU at the front that have not been read yet (bounded by the largest PDU).
    fn pending_rest(&self) -> usize {
        pending_pdu_len(&self.buf)
            .min(self.max_pdu)
            .saturating_sub(self.buf.len())
    }

    /// Moves to another chunk unless `need` bytes are free.
    fn ensure_free(&mut self, need: usize) {
        if self.buf.capacity() - self.buf.len() >= need {
            return;
        }
        let want = self.buf.len() + need;
        let mut next = if want <= self.chunks.capacity() {
            self.chunks.take()
        } else {
            // A PDU larger than a chunk (the framer bounds it by the negotiated limits).
            BytesMut::with_capacity(want)
        };
        // The partial PDU moves along; the old chunk comes back once its views are gone.
        next.extend_from_slice(&self.buf);
        self.buf = next;
    }
}

/// The PLEN of the PDU at the front of `buf` (0 before its common header is in).
fn pending_pdu_len(buf: &[u8]) -> usize {
    lamina_protocol::tcp::CommonHeader::parse(buf)
        .map_or(0, |ch| usize::try_from(ch.plen).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    #[test]
    fn data_pool_picks_the_smallest_class() {
        let mut p = DataPool::new(8);
        let b = p.take(4096);
        assert!(b.capacity() >= 4096);
        assert_eq!(b.as_ptr().addr() % DATA_ALIGN, 0);
        drop(b);
        let again = p.take(4096);
        assert_eq!(
            again.as_ptr().addr() % DATA_ALIGN,
            0,
            "still aligned when reused"
        );
        assert!(p.take(4097).capacity() >= 8192);
        assert_eq!(p.take(0).capacity(), 0);
        assert!(p.take(1 << 20).capacity() >= 1 << 20);
    }

    #[test]
    fn read_buffer_keeps_the_partial_pdu_and_makes_room_for_it() {
        let mut rb = ReadBuffer::new(1024, 4, 200, 1000);
        let first = rb.buf.as_ptr();
        rb.buf.put_bytes(1, 992);
        let held = rb.buf.split_to(992).freeze();
        // The next PDU's common header (PLEN 900) is in; 32 bytes of room are left.
        let head = [4, 0, 72, 0, 0x84, 0x03, 0, 0];
        rb.buf.put_slice(&head);
        rb.make_room();
        assert!(rb.buf.capacity() - rb.buf.len() >= 900 - 8);
        assert_eq!(&rb.buf[..], &head[..]);
        assert_ne!(rb.buf.as_ptr(), first, "the held chunk is not reused");
        drop(held);
        rb.buf.put_bytes(2, 892);
        let _pdu = rb.buf.split_to(900);
        rb.make_room();
        assert_eq!(rb.buf.as_ptr(), first, "the first chunk came back");
        assert_eq!(rb.chunks(), 2);
        // A PLEN past the limit never makes the buffer grow.
        rb.buf.put_slice(&[4, 0, 72, 0, 0xff, 0xff, 0xff, 0xff]);
        rb.make_room();
        assert!(rb.buf.capacity() <= 1024);
        assert_eq!(pending_pdu_len(&[0, 0, 0, 0, 0x10, 0, 0, 0]), 16);
        assert_eq!(pending_pdu_len(&[0, 0, 0]), 0);
    }
}
