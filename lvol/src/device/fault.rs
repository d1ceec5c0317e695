//! The fault-injecting test device (feature `test-utils`): an in-memory device with a volatile
//! write cache that counts mutating writes and, after the Nth, tears the next one and then
//! fails or silently drops everything; [`FaultDevice::crash_image`] then gives the media as a
//! power loss would leave it (flushed data, plus a chosen subset of unflushed writes), from
//! which a new device is built to check what loading recovers. Reads can be made to fail too,
//! and writes held back (a stuck device) until released.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::Mutex;

use super::{BlockDevice, check_geometry, check_range, to_usize};
use crate::error::{DeviceError, DeviceOp};

/// What happens to writes after the fault point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    /// Every later write and flush fails with [`DeviceError::Failed`] (the device is gone).
    Error,
    /// Every later write "succeeds" but never reaches the media (a lying device).
    Drop,
}

/// Which unflushed writes a simulated power loss keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Only flushed data survives.
    LoseUnflushed,
    /// Every completed write survives (as if the cache was flushed just in time).
    KeepAll,
    /// Every other unflushed write survives (the cache wrote some back, out of order).
    KeepAlternate,
}

/// One write sitting in the volatile cache (`None`: zeros, kept compact).
#[derive(Debug, Clone)]
struct Pending {
    offset: usize,
    len: usize,
    data: Option<Vec<u8>>,
}

struct State {
    /// What reads see.
    current: Vec<u8>,
    /// What survives a power loss for sure.
    durable: Vec<u8>,
    /// Completed but unflushed writes, oldest first.
    volatile: Vec<Pending>,
    writes: u64,
    fail_after: Option<u64>,
    mode: FaultMode,
    tripped: bool,
    fail_reads: bool,
    /// Every operation yields to the scheduler before and after it takes effect.
    yielding: bool,
}

impl std::fmt::Debug for State {
    // Never dump the images.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultState")
            .field("writes", &self.writes)
            .field("unflushed", &self.volatile.len())
            .field("fail_after", &self.fail_after)
            .field("mode", &self.mode)
            .field("tripped", &self.tripped)
            .finish_non_exhaustive()
    }
}

/// A memory device with fault injection. Clones share state.
#[derive(Debug, Clone)]
pub struct FaultDevice {
    inner: Arc<Mutex<State>>,
    hold: Arc<Hold>,
    block_size: u32,
    size: u64,
}

/// The write hold: while closed, writes wait before they take effect (a slow or stuck device).
#[derive(Debug)]
struct Hold {
    open: tokio::sync::watch::Sender<bool>,
    waiting: std::sync::atomic::AtomicU64,
}

/// Sector granularity of torn writes.
const SECTOR: usize = 512;

impl FaultDevice {
    /// A zeroed device.
    pub fn new(size_bytes: u64, block_size: u32) -> Result<Self, DeviceError> {
        check_geometry(size_bytes, block_size)?;
        let n = usize::try_from(size_bytes)
            .map_err(|_| DeviceError::InvalidParameter("fault device too large"))?;
        Ok(Self::from_image(vec![0; n], block_size))
    }

    /// A device whose media holds `image` (from [`FaultDevice::crash_image`]).
    pub fn from_image(image: Vec<u8>, block_size: u32) -> Self {
        let size = image.len() as u64;
        Self {
            inner: Arc::new(Mutex::new(State {
                current: image.clone(),
                durable: image,
                volatile: Vec::new(),
                writes: 0,
                fail_after: None,
                mode: FaultMode::Error,
                tripped: false,
                fail_reads: false,
                yielding: false,
            })),
            hold: Arc::new(Hold {
                open: tokio::sync::watch::Sender::new(true),
                waiting: std::sync::atomic::AtomicU64::new(0),
            }),
            block_size,
            size,
        }
    }

    /// Holds every write (and write-zeroes, deallocate) before it takes effect, as a stuck
    /// device would, until `set_write_hold(false)`; writes already held then complete.
    pub fn set_write_hold(&self, held: bool) {
        self.hold.open.send_replace(!held);
    }

    /// Writes waiting at the hold now.
    pub fn held_writes(&self) -> u64 {
        self.hold.waiting.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn wait_hold(&self) {
        let mut open = self.hold.open.subscribe();
        if *open.borrow_and_update() {
            return;
        }
        self.hold
            .waiting
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // The sender lives as long as this device: waiting cannot fail.
        let _ = open.wait_for(|o| *o).await;
        self.hold
            .waiting
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Arms the fault: writes `1..=n` behave, write `n + 1` is torn (its first half of sectors
    /// lands), and every later write follows `mode`.
    pub fn fail_after(&self, n: u64, mode: FaultMode) {
        let mut s = self.inner.lock();
        s.fail_after = Some(n);
        s.mode = mode;
    }

    /// Makes every read fail (or work again).
    pub fn set_fail_reads(&self, fail: bool) {
        self.inner.lock().fail_reads = fail;
    }

    /// Makes every operation yield once before it takes effect and once after, as a real
    /// device's would: a caller dropped at the first yield never started the operation, one
    /// dropped at the second abandoned an operation that completed (what an io_uring write
    /// does when its future is dropped). Tests use it to drop futures at every await point.
    pub fn set_yielding(&self, on: bool) {
        self.inner.lock().yielding = on;
    }

    async fn pause(&self) {
        let yielding = self.inner.lock().yielding;
        if yielding {
            tokio::task::yield_now().await;
        }
    }

    /// Mutating writes seen so far (writes, write-zeroes, deallocates).
    pub fn writes(&self) -> u64 {
        self.inner.lock().writes
    }

    /// Whether the fault point was passed.
    pub fn tripped(&self) -> bool {
        self.inner.lock().tripped
    }

    /// The media after a power loss now.
    pub fn crash_image(&self, mode: CrashMode) -> Vec<u8> {
        let s = self.inner.lock();
        let mut image = s.durable.clone();
        for (i, p) in s.volatile.iter().enumerate() {
            let keep = match mode {
                CrashMode::LoseUnflushed => false,
                CrashMode::KeepAll => true,
                CrashMode::KeepAlternate => i % 2 == 1,
            };
            if keep {
                apply(&mut image, p.offset, p.len, p.data.as_deref());
            }
        }
        image
    }

    fn mutate(
        &self,
        op: DeviceOp,
        offset: u64,
        len: u64,
        data: Option<Vec<u8>>,
    ) -> Result<(), DeviceError> {
        check_range(op, offset, len, self.size, self.block_size)?;
        let len = to_usize(op, offset, len)?;
        let offset = to_usize(op, offset, offset)?;
        let mut s = self.inner.lock();
        s.writes += 1;
        let n = s.writes;
        match s.fail_after {
            Some(limit) if n == limit + 1 => {
                s.tripped = true;
                let keep = (len / SECTOR / 2) * SECTOR;
                let torn = data.map(|d| d.get(..keep).map(<[u8]>::to_vec).unwrap_or_default());
                s.record(offset, keep, torn);
                s.after_fault(op)
            }
            Some(limit) if n > limit + 1 => s.after_fault(op),
            _ => {
                s.record(offset, len, data);
                Ok(())
            }
        }
    }
}

impl State {
    fn record(&mut self, offset: usize, len: usize, data: Option<Vec<u8>>) {
        apply(&mut self.current, offset, len, data.as_deref());
        self.volatile.push(Pending { offset, len, data });
    }

    fn after_fault(&self, op: DeviceOp) -> Result<(), DeviceError> {
        match self.mode {
            FaultMode::Error => Err(DeviceError::Failed(op)),
            FaultMode::Drop => Ok(()),
        }
    }
}

fn apply(image: &mut [u8], offset: usize, len: usize, data: Option<&[u8]>) {
    if let Some(dst) = image.get_mut(offset..offset + len) {
        match data {
            Some(src) => dst.copy_from_slice(src.get(..len).unwrap_or_default()),
            None => dst.fill(0),
        }
    }
}

impl BlockDevice for FaultDevice {
    fn size_bytes(&self) -> u64 {
        self.size
    }

    fn block_size(&self) -> u32 {
        self.block_size
    }

    async fn read(&self, offset: u64, len: usize, buf: &mut BytesMut) -> Result<(), DeviceError> {
        self.pause().await;
        let r = self.read_now(offset, len, buf);
        self.pause().await;
        r
    }

    async fn write(&self, offset: u64, data: Bytes) -> Result<(), DeviceError> {
        self.wait_hold().await;
        self.pause().await;
        let r = self.mutate(
            DeviceOp::Write,
            offset,
            data.len() as u64,
            Some(data.to_vec()),
        );
        self.pause().await;
        r
    }

    async fn flush(&self) -> Result<(), DeviceError> {
        self.pause().await;
        let r = self.flush_now();
        self.pause().await;
        r
    }

    async fn write_zeroes(&self, offset: u64, len: u64) -> Result<(), DeviceError> {
        self.wait_hold().await;
        self.pause().await;
        let r = self.mutate(DeviceOp::WriteZeroes, offset, len, None);
        self.pause().await;
        r
    }

    async fn deallocate(&self, offset: u64, len: u64) -> Result<(), DeviceError> {
        self.wait_hold().await;
        self.pause().await;
        let r = self.mutate(DeviceOp::Deallocate, offset, len, None);
        self.pause().await;
        r
    }
}

impl FaultDevice {
    fn read_now(&self, offset: u64, len: usize, buf: &mut BytesMut) -> Result<(), DeviceError> {
        let len64 = len as u64;
        check_range(DeviceOp::Read, offset, len64, self.size, self.block_size)?;
        let start = to_usize(DeviceOp::Read, offset, offset)?;
        let s = self.inner.lock();
        if s.fail_reads {
            return Err(DeviceError::Io {
                op: DeviceOp::Read,
                offset,
                errno: libc::EIO,
            });
        }
        match s.current.get(start..start + len) {
            Some(src) => buf.extend_from_slice(src),
            None => buf.put_bytes(0, len),
        }
        Ok(())
    }

    fn flush_now(&self) -> Result<(), DeviceError> {
        let mut s = self.inner.lock();
        if s.tripped && s.mode == FaultMode::Error {
            return Err(DeviceError::Failed(DeviceOp::Flush));
        }
        let pending = std::mem::take(&mut s.volatile);
        for p in pending {
            apply(&mut s.durable, p.offset, p.len, p.data.as_deref());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tears_then_fails_and_crash_loses_unflushed() {
        let d = FaultDevice::new(64 * 1024, 512).unwrap();
        d.write(0, Bytes::from(vec![1u8; 4096])).await.unwrap();
        d.flush().await.unwrap();
        d.write(4096, Bytes::from(vec![2u8; 4096])).await.unwrap();
        d.fail_after(2, FaultMode::Error);
        assert!(d.write(8192, Bytes::from(vec![3u8; 4096])).await.is_err());
        assert!(d.tripped());
        assert!(d.flush().await.is_err());
        let lost = d.crash_image(CrashMode::LoseUnflushed);
        assert_eq!(lost[..4096], vec![1u8; 4096][..]);
        assert_eq!(lost[4096..8192], vec![0u8; 4096][..]);
        let kept = d.crash_image(CrashMode::KeepAll);
        assert_eq!(kept[4096..8192], vec![2u8; 4096][..]);
        // The torn write landed its first half only.
        assert_eq!(kept[8192..10240], vec![3u8; 2048][..]);
        assert_eq!(kept[10240..12288], vec![0u8; 2048][..]);
    }

    #[tokio::test]
    async fn drop_mode_lies() {
        let d = FaultDevice::new(8192, 512).unwrap();
        d.fail_after(0, FaultMode::Drop);
        d.write(0, Bytes::from(vec![9u8; 4096])).await.unwrap();
        d.flush().await.unwrap();
        d.write(4096, Bytes::from(vec![9u8; 512])).await.unwrap();
        let mut buf = BytesMut::new();
        d.read(4096, 512, &mut buf).await.unwrap();
        assert_eq!(buf[..], vec![0u8; 512][..]);
        d.set_fail_reads(true);
        assert!(d.read(0, 512, &mut buf).await.is_err());
    }
}
