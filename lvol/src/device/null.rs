//! The null device: reads return zeros and writes are discarded. For benchmarks of the lvol
//! layer without device cost, and for `bdev_null`-style test setups.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{BufMut, Bytes, BytesMut};

use super::{BlockDevice, check_geometry, check_range, to_usize};
use crate::error::{DeviceError, DeviceOp};

/// Reads zeros, discards writes.
#[derive(Debug, Clone)]
pub struct NullDevice(Arc<(AtomicU64, u32)>);

impl NullDevice {
    /// A null device of `size_bytes` with `block_size`-byte blocks.
    pub fn new(size_bytes: u64, block_size: u32) -> Result<Self, DeviceError> {
        check_geometry(size_bytes, block_size)?;
        Ok(Self(Arc::new((AtomicU64::new(size_bytes), block_size))))
    }

    /// Changes the size (`bdev_null_resize`); the geometry rules of [`NullDevice::new`] apply.
    pub fn set_size(&self, size_bytes: u64) -> Result<(), DeviceError> {
        check_geometry(size_bytes, self.0.1)?;
        self.0.0.store(size_bytes, Ordering::SeqCst);
        Ok(())
    }
}

impl NullDevice {
    /// [`BlockDevice::read`], done at once (zeros).
    pub fn read_now(&self, offset: u64, len: usize, buf: &mut BytesMut) -> Result<(), DeviceError> {
        let len64 = u64::try_from(len).unwrap_or(u64::MAX);
        check_range(DeviceOp::Read, offset, len64, self.size_bytes(), self.0.1)?;
        buf.put_bytes(0, len);
        Ok(())
    }

    /// [`BlockDevice::write`], done at once (discarded after the range check).
    pub fn write_now(&self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        let len = u64::try_from(data.len()).unwrap_or(u64::MAX);
        check_range(DeviceOp::Write, offset, len, self.size_bytes(), self.0.1)
    }
}

impl BlockDevice for NullDevice {
    fn size_bytes(&self) -> u64 {
        self.0.0.load(Ordering::SeqCst)
    }

    fn block_size(&self) -> u32 {
        self.0.1
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
        check_range(
            DeviceOp::WriteZeroes,
            offset,
            len,
            self.size_bytes(),
            self.0.1,
        )?;
        to_usize(DeviceOp::WriteZeroes, offset, len).map(|_| ())
    }

    async fn deallocate(&self, offset: u64, len: u64) -> Result<(), DeviceError> {
        check_range(
            DeviceOp::Deallocate,
            offset,
            len,
            self.size_bytes(),
            self.0.1,
        )
    }
}
