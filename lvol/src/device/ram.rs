//! The RAM device: memory in 2 MiB chunks, one huge page each where the kernel gives them (see
//! `ram_mem`). Two kinds: *allocated* ([`RamDevice::allocated`], the target's
//! `bdev_malloc_create`, as SPDK's malloc bdev) holds all its memory from creation, faulted in
//! there, so no I/O ever waits for the kernel to find memory and no write can run out of it;
//! *sparse* ([`RamDevice::new`]: tests, benchmarks with 10,000 thin lvols) allocates a chunk on
//! its first write and frees it when write-zeroes/deallocate leaves it all zeros, so it costs
//! only what is written. No heap allocation per I/O once a chunk exists.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::RwLock;

use super::{BlockDevice, check_geometry, check_range, to_usize};
use crate::error::{DeviceError, DeviceOp};

use super::ram_mem::{self, CHUNK_BYTES, ChunkMem};

const CHUNK_BYTES_U64: u64 = CHUNK_BYTES as u64;

type Chunk = RwLock<Option<ChunkMem>>;

/// A memory-backed block device. Clones share the memory.
#[derive(Debug, Clone)]
pub struct RamDevice(Arc<RamInner>);

struct RamInner {
    block_size: u32,
    size: AtomicU64,
    /// Memory held from creation, never freed by zeroing ([`RamDevice::allocated`]).
    allocated: bool,
    chunks: RwLock<Vec<Chunk>>,
}

impl std::fmt::Debug for RamInner {
    // Never dump the memory itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RamDevice")
            .field("size", &self.size.load(Ordering::Relaxed))
            .field("block_size", &self.block_size)
            .finish_non_exhaustive()
    }
}

/// One piece of a request that falls inside a single chunk.
struct Segment {
    chunk: usize,
    start: usize,
    len: usize,
}

fn chunk_count(size: u64) -> Result<usize, DeviceError> {
    usize::try_from(size.div_ceil(CHUNK_BYTES_U64))
        .map_err(|_| DeviceError::InvalidParameter("RAM device too large for this host"))
}

/// Splits `[offset, offset + len)` into per-chunk segments.
fn segments(offset: u64, len: usize) -> impl Iterator<Item = Segment> {
    let mut pos = offset;
    let end = offset + len as u64;
    std::iter::from_fn(move || {
        if pos >= end {
            return None;
        }
        let chunk = usize::try_from(pos / CHUNK_BYTES_U64).ok()?;
        let start = usize::try_from(pos % CHUNK_BYTES_U64).ok()?;
        let len = usize::try_from((end - pos).min(CHUNK_BYTES_U64 - pos % CHUNK_BYTES_U64)).ok()?;
        pos += len as u64;
        Some(Segment { chunk, start, len })
    })
}

impl RamDevice {
    /// Bytes of memory per chunk, the unit a sparse device allocates and its chunk table
    /// counts (one huge page).
    pub const CHUNK_BYTES: u64 = CHUNK_BYTES_U64;

    /// A sparse zero-filled device of `size_bytes` with `block_size`-byte blocks (512 or 4096):
    /// memory is taken as it is written.
    pub fn new(size_bytes: u64, block_size: u32) -> Result<Self, DeviceError> {
        Self::build(size_bytes, block_size, false)
    }

    /// A zero-filled device whose memory is all allocated and faulted in now (slow: a few
    /// tenths of a second per GiB, and several seconds per GiB on memory a fresh VM never
    /// touched; call it off the I/O path). Fails if the kernel refuses the
    /// memory; the caller checks first that the machine has it, since past that the kernel
    /// may overcommit and kill the process later instead.
    pub fn allocated(size_bytes: u64, block_size: u32) -> Result<Self, DeviceError> {
        let dev = Self::build(size_bytes, block_size, true)?;
        dev.fill_chunks()?;
        Ok(dev)
    }

    fn build(size_bytes: u64, block_size: u32, allocated: bool) -> Result<Self, DeviceError> {
        check_geometry(size_bytes, block_size)?;
        let n = chunk_count(size_bytes)?;
        // The chunk table is the one allocation sized by the request: fail, do not abort.
        let mut chunks = Vec::new();
        chunks
            .try_reserve_exact(n)
            .map_err(|_| DeviceError::InvalidParameter("RAM device too large for this host"))?;
        chunks.extend((0..n).map(|_| RwLock::new(None)));
        Ok(Self(Arc::new(RamInner {
            block_size,
            size: AtomicU64::new(size_bytes),
            allocated,
            chunks: RwLock::new(chunks),
        })))
    }

    /// Gives every chunk without memory its memory (an allocated device's creation and growth).
    fn fill_chunks(&self) -> Result<(), DeviceError> {
        let chunks = self.0.chunks.read();
        for (i, chunk) in chunks.iter().enumerate() {
            let mut guard = chunk.write();
            if guard.is_none() {
                let offset = (i as u64).saturating_mul(CHUNK_BYTES_U64);
                let mem = ChunkMem::mapped()
                    .map_err(|e| DeviceError::from_io(DeviceOp::Write, offset, &e))?;
                *guard = Some(mem);
            }
        }
        Ok(())
    }

    /// Grows the device to `size_bytes` (new space reads as zeros; an allocated device
    /// allocates it now).
    pub fn grow(&self, size_bytes: u64) -> Result<(), DeviceError> {
        check_geometry(size_bytes, self.0.block_size)?;
        if size_bytes < self.size_bytes() {
            return Err(DeviceError::InvalidParameter("a RAM device can only grow"));
        }
        let n = chunk_count(size_bytes)?;
        self.0.chunks.write().resize_with(n, || RwLock::new(None));
        if self.0.allocated {
            self.fill_chunks()?;
        }
        self.0.size.store(size_bytes, Ordering::SeqCst);
        Ok(())
    }

    /// Whether the device holds all its memory from creation ([`RamDevice::allocated`]) rather
    /// than taking it as written.
    pub fn is_allocated(&self) -> bool {
        self.0.allocated
    }

    /// Bytes of memory currently allocated.
    pub fn allocated_bytes(&self) -> u64 {
        let chunks = self.0.chunks.read();
        chunks.iter().filter(|c| c.read().is_some()).count() as u64 * CHUNK_BYTES_U64
    }

    fn check(&self, op: DeviceOp, offset: u64, len: u64) -> Result<usize, DeviceError> {
        check_range(op, offset, len, self.size_bytes(), self.0.block_size)?;
        to_usize(op, offset, len)
    }

    /// [`BlockDevice::read`], done at once: memory never makes a caller wait.
    pub fn read_now(&self, offset: u64, len: usize, buf: &mut BytesMut) -> Result<(), DeviceError> {
        let len64 = u64::try_from(len).unwrap_or(u64::MAX);
        self.check(DeviceOp::Read, offset, len64)?;
        buf.reserve(len);
        let chunks = self.0.chunks.read();
        for seg in segments(offset, len) {
            let guard = chunks.get(seg.chunk).map(RwLock::read);
            match guard.as_ref().and_then(|g| g.as_ref()) {
                Some(mem) => match mem.bytes().get(seg.start..seg.start + seg.len) {
                    Some(src) => buf.extend_from_slice(src),
                    None => buf.put_bytes(0, seg.len),
                },
                None => buf.put_bytes(0, seg.len),
            }
        }
        Ok(())
    }

    /// [`BlockDevice::write`], done at once.
    pub fn write_now(&self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        let len = u64::try_from(data.len()).unwrap_or(u64::MAX);
        self.check(DeviceOp::Write, offset, len)?;
        self.store(offset, data);
        Ok(())
    }

    /// Copies `data` into memory at `offset` (range already checked).
    fn store(&self, offset: u64, data: &[u8]) {
        let chunks = self.0.chunks.read();
        let mut done = 0;
        for seg in segments(offset, data.len()) {
            let Some(chunk) = chunks.get(seg.chunk) else {
                return;
            };
            let mut guard = chunk.write();
            let mem = guard.get_or_insert_with(ram_mem::take);
            if let (Some(dst), Some(src)) = (
                mem.bytes_mut().get_mut(seg.start..seg.start + seg.len),
                data.get(done..done + seg.len),
            ) {
                dst.copy_from_slice(src);
            }
            done += seg.len;
        }
    }

    /// Zeroes a checked range, dropping chunks that become entirely zero (a chunk zeroed in
    /// pieces, as 1 MiB clusters are, is dropped by the piece that zeroes its last byte).
    fn zero(&self, offset: u64, len: usize) {
        let chunks = self.0.chunks.read();
        for seg in segments(offset, len) {
            let Some(chunk) = chunks.get(seg.chunk) else {
                return;
            };
            let mut guard = chunk.write();
            let Some(mem) = guard.as_mut() else { continue };
            let bytes = mem.bytes_mut();
            if let Some(dst) = bytes.get_mut(seg.start..seg.start + seg.len) {
                dst.fill(0);
            }
            // An allocated device keeps its memory: no need to look at the rest. The scan stops
            // at the first byte written, so it is cheap for a chunk in use.
            if !self.0.allocated && bytes.iter().all(|&b| b == 0) {
                *guard = None;
            }
        }
    }
}

impl BlockDevice for RamDevice {
    fn size_bytes(&self) -> u64 {
        self.0.size.load(Ordering::SeqCst)
    }

    fn block_size(&self) -> u32 {
        self.0.block_size
    }

    async fn read(&self, offset: u64, len: usize, buf: &mut BytesMut) -> Result<(), DeviceError> {
        self.read_now(offset, len, buf)
    }

    async fn write(&self, offset: u64, data: Bytes) -> Result<(), DeviceError> {
        self.write_now(offset, &data)
    }

    async fn flush(&self) -> Result<(), DeviceError> {
        Ok(())
    }

    async fn write_zeroes(&self, offset: u64, len: u64) -> Result<(), DeviceError> {
        let n = self.check(DeviceOp::WriteZeroes, offset, len)?;
        self.zero(offset, n);
        Ok(())
    }

    async fn deallocate(&self, offset: u64, len: u64) -> Result<(), DeviceError> {
        let n = self.check(DeviceOp::Deallocate, offset, len)?;
        self.zero(offset, n);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(d: &RamDevice, offset: u64, len: usize) -> Vec<u8> {
        let mut buf = BytesMut::new();
        d.read(offset, len, &mut buf).await.unwrap();
        buf.to_vec()
    }

    #[tokio::test]
    async fn writes_span_chunks_and_read_back() {
        let d = RamDevice::new(4 << 20, 512).unwrap();
        let data: Vec<u8> = (0..3 * 512)
            .map(|i| u8::try_from(i % 251).unwrap())
            .collect();
        let at = CHUNK_BYTES_U64 - 512;
        d.write(at, Bytes::from(data.clone())).await.unwrap();
        assert_eq!(read(&d, at, data.len()).await, data);
        assert_eq!(read(&d, 0, 512).await, vec![0; 512]);
        assert_eq!(d.allocated_bytes(), 2 * CHUNK_BYTES_U64);
    }

    #[tokio::test]
    async fn zeroing_frees_whole_chunks() {
        let d = RamDevice::new(2 << 20, 4096).unwrap();
        d.write(0, Bytes::from(vec![7u8; 8192])).await.unwrap();
        d.write_zeroes(4096, 4096).await.unwrap();
        assert_eq!(read(&d, 0, 8192).await[4096..], vec![0; 4096][..]);
        d.deallocate(0, CHUNK_BYTES_U64).await.unwrap();
        assert_eq!(d.allocated_bytes(), 0);
        assert_eq!(read(&d, 0, 4096).await, vec![0; 4096]);
    }

    #[tokio::test]
    async fn a_chunk_zeroed_in_pieces_is_freed_by_the_last_piece() {
        let d = RamDevice::new(2 * CHUNK_BYTES_U64, 4096).unwrap();
        let half = CHUNK_BYTES_U64 / 2;
        d.write(0, Bytes::from(vec![1u8; 4096])).await.unwrap();
        d.write(half, Bytes::from(vec![2u8; 4096])).await.unwrap();
        d.deallocate(0, half).await.unwrap();
        assert_eq!(
            d.allocated_bytes(),
            CHUNK_BYTES_U64,
            "the second half still holds data"
        );
        assert_eq!(read(&d, half, 4096).await, vec![2u8; 4096]);
        d.write_zeroes(half, half).await.unwrap();
        assert_eq!(d.allocated_bytes(), 0);
        assert_eq!(read(&d, 0, 8192).await, vec![0; 8192]);
    }

    #[test]
    fn reserve_chunks_are_zeroed_aligned_and_writable() {
        assert!(
            ram_mem::wait_ready(),
            "the reserve made no chunk within a second"
        );
        let mut c = ram_mem::take();
        assert!(c.is_mapped());
        assert_eq!(c.bytes().as_ptr().addr() % CHUNK_BYTES, 0);
        assert_eq!(c.bytes().len(), CHUNK_BYTES);
        assert!(c.bytes().iter().all(|&b| b == 0));
        c.bytes_mut()[CHUNK_BYTES - 1] = 9;
        assert_eq!(c.bytes()[CHUNK_BYTES - 1], 9);
    }

    #[tokio::test]
    async fn an_allocated_device_holds_its_memory_through_zeroing_and_growth() {
        let d = RamDevice::allocated(2 * CHUNK_BYTES_U64, 4096).unwrap();
        assert_eq!(d.allocated_bytes(), 2 * CHUNK_BYTES_U64);
        assert_eq!(read(&d, CHUNK_BYTES_U64, 4096).await, vec![0; 4096]);
        d.write(4096, Bytes::from(vec![5u8; 4096])).await.unwrap();
        assert_eq!(read(&d, 4096, 4096).await, vec![5u8; 4096]);
        d.deallocate(0, 2 * CHUNK_BYTES_U64).await.unwrap();
        assert_eq!(read(&d, 4096, 4096).await, vec![0; 4096]);
        assert_eq!(
            d.allocated_bytes(),
            2 * CHUNK_BYTES_U64,
            "zeroing frees nothing"
        );
        d.grow(3 * CHUNK_BYTES_U64).unwrap();
        assert_eq!(d.allocated_bytes(), 3 * CHUNK_BYTES_U64);
    }

    #[tokio::test]
    async fn bad_ranges_are_typed_errors() {
        let d = RamDevice::new(1 << 20, 512).unwrap();
        assert!(matches!(
            d.write(1 << 20, Bytes::from(vec![0u8; 512])).await,
            Err(DeviceError::OutOfRange { .. })
        ));
        assert!(matches!(
            d.write_zeroes(3, 512).await,
            Err(DeviceError::Misaligned { .. })
        ));
        assert!(RamDevice::new(1000, 512).is_err());
        d.grow(2 << 20).unwrap();
        assert!(d.write(1 << 20, Bytes::from(vec![1u8; 512])).await.is_ok());
        assert!(d.grow(1 << 20).is_err());
    }
}
