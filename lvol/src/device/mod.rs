//! Base block devices. [`BlockDevice`] is the trait every backend implements with native
//! `async fn`s (no boxed future per I/O); [`Device`] is the closed enum the lvstore holds, so
//! dispatch is a `match` and the RAM and null paths allocate nothing per I/O. Reads append to a
//! caller-provided `BytesMut` (the target pools its buffers); writes take `Bytes` (zero-copy
//! slices of the socket buffer).
//!
//! Backends: [`FileDevice`] (regular files and block devices: io_uring, or positioned I/O on
//! tokio's blocking pool where io_uring is missing; `O_DIRECT` when the filesystem supports
//! it), [`RamDevice`] (the target's `bdev_malloc_create`), [`NullDevice`] (reads zeros,
//! discards writes) and, behind the `test-utils` feature, `FaultDevice`.
//!
//! [`batch_submissions`] lets a caller that starts many I/Os in one go (a connection decoding
//! a burst of commands) submit the io_uring ones with one system call.

mod file;
mod file_lock;
mod null;
mod ram;
mod ram_mem;

#[cfg(any(test, feature = "test-utils"))]
mod fault;

use std::future::Future;

use bytes::{Bytes, BytesMut};

use crate::error::{DeviceError, DeviceOp};

#[cfg(any(test, feature = "test-utils"))]
pub use fault::{CrashMode, FaultDevice, FaultMode};
pub use file::{FileDevice, FileOptions};
pub use null::NullDevice;
pub use ram::RamDevice;

/// Defers this thread's io_uring submissions until the returned guard drops, then submits
/// them together (at most [`lamina_uring::MAX_DEFERRED`] wait); other backends are
/// unaffected. Hold it only in code that does not `await`: it must drop on its own thread.
pub fn batch_submissions() -> lamina_uring::Plug {
    lamina_uring::plug()
}

/// An asynchronous block device. Offsets and lengths are in bytes and must be multiples of
/// [`BlockDevice::block_size`]; implementations check and return typed errors, never panic.
pub trait BlockDevice: Send + Sync {
    /// Device size in bytes.
    fn size_bytes(&self) -> u64;

    /// Logical block size in bytes (512 or 4096).
    fn block_size(&self) -> u32;

    /// Reads `len` bytes at `offset`, appending them to `buf`.
    fn read(
        &self,
        offset: u64,
        len: usize,
        buf: &mut BytesMut,
    ) -> impl Future<Output = Result<(), DeviceError>> + Send;

    /// Writes `data` at `offset`. Durable only after [`BlockDevice::flush`].
    fn write(
        &self,
        offset: u64,
        data: Bytes,
    ) -> impl Future<Output = Result<(), DeviceError>> + Send;

    /// Makes every completed write durable.
    fn flush(&self) -> impl Future<Output = Result<(), DeviceError>> + Send;

    /// Zeroes `len` bytes at `offset`, keeping the space allocated.
    fn write_zeroes(
        &self,
        offset: u64,
        len: u64,
    ) -> impl Future<Output = Result<(), DeviceError>> + Send;

    /// Releases `len` bytes at `offset`; they read back as zeros afterwards.
    fn deallocate(
        &self,
        offset: u64,
        len: u64,
    ) -> impl Future<Output = Result<(), DeviceError>> + Send;
}

/// Which backend a [`Device`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// A regular file.
    File,
    /// A block device node.
    Block,
    /// Memory.
    Ram,
    /// Reads zeros, discards writes.
    Null,
    /// The fault-injecting test device.
    Fault,
}

/// The devices an lvstore can sit on. Cheap to clone (each backend is an `Arc` inside).
/// Non-exhaustive: the `test-utils` feature adds a variant, and an io_uring backend will.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Device {
    /// A file or block device.
    File(FileDevice),
    /// Memory.
    Ram(RamDevice),
    /// Null sink.
    Null(NullDevice),
    /// Fault injection for tests.
    #[cfg(any(test, feature = "test-utils"))]
    Fault(FaultDevice),
}

macro_rules! dispatch {
    ($self:ident, $d:ident => $e:expr) => {
        match $self {
            Device::File($d) => $e,
            Device::Ram($d) => $e,
            Device::Null($d) => $e,
            #[cfg(any(test, feature = "test-utils"))]
            Device::Fault($d) => $e,
        }
    };
}

impl Device {
    /// Which backend this is.
    pub fn kind(&self) -> DeviceKind {
        match self {
            Self::File(d) => d.kind(),
            Self::Ram(_) => DeviceKind::Ram,
            Self::Null(_) => DeviceKind::Null,
            #[cfg(any(test, feature = "test-utils"))]
            Self::Fault(_) => DeviceKind::Fault,
        }
    }

    /// Reads at once if this backend never waits (RAM, null): `None` means it may, and the
    /// caller uses [`BlockDevice::read`]. Lets a caller complete an I/O without building
    /// its future.
    pub fn read_now(
        &self,
        offset: u64,
        len: usize,
        buf: &mut BytesMut,
    ) -> Option<Result<(), DeviceError>> {
        match self {
            Self::Ram(d) => Some(d.read_now(offset, len, buf)),
            Self::Null(d) => Some(d.read_now(offset, len, buf)),
            _ => None,
        }
    }

    /// Writes at once if this backend never waits (RAM, null); `None` as for
    /// [`Device::read_now`]. Durable only after [`BlockDevice::flush`], as a write is.
    pub fn write_now(&self, offset: u64, data: &[u8]) -> Option<Result<(), DeviceError>> {
        match self {
            Self::Ram(d) => Some(d.write_now(offset, data)),
            Self::Null(d) => Some(d.write_now(offset, data)),
            _ => None,
        }
    }

    /// Whether [`Device::read_now`] and [`Device::write_now`] complete (RAM, null).
    pub fn completes_at_once(&self) -> bool {
        matches!(self, Self::Ram(_) | Self::Null(_))
    }

    /// Re-reads the device size (after the file or block device grew) and returns it.
    pub fn refresh_size(&self) -> Result<u64, DeviceError> {
        match self {
            Self::File(d) => d.refresh_size(),
            other => Ok(other.size_bytes()),
        }
    }
}

impl From<RamDevice> for Device {
    fn from(d: RamDevice) -> Self {
        Self::Ram(d)
    }
}

impl From<FileDevice> for Device {
    fn from(d: FileDevice) -> Self {
        Self::File(d)
    }
}

impl From<NullDevice> for Device {
    fn from(d: NullDevice) -> Self {
        Self::Null(d)
    }
}

#[cfg(any(test, feature = "test-utils"))]
impl From<FaultDevice> for Device {
    fn from(d: FaultDevice) -> Self {
        Self::Fault(d)
    }
}

impl BlockDevice for Device {
    fn size_bytes(&self) -> u64 {
        dispatch!(self, d => d.size_bytes())
    }

    fn block_size(&self) -> u32 {
        dispatch!(self, d => d.block_size())
    }

    async fn read(&self, offset: u64, len: usize, buf: &mut BytesMut) -> Result<(), DeviceError> {
        dispatch!(self, d => d.read(offset, len, buf).await)
    }

    async fn write(&self, offset: u64, data: Bytes) -> Result<(), DeviceError> {
        dispatch!(self, d => d.write(offset, data).await)
    }

    async fn flush(&self) -> Result<(), DeviceError> {
        dispatch!(self, d => d.flush().await)
    }

    async fn write_zeroes(&self, offset: u64, len: u64) -> Result<(), DeviceError> {
        dispatch!(self, d => d.write_zeroes(offset, len).await)
    }

    async fn deallocate(&self, offset: u64, len: u64) -> Result<(), DeviceError> {
        dispatch!(self, d => d.deallocate(offset, len).await)
    }
}

/// Checks that `[offset, offset + len)` is block-aligned and inside a device of `size` bytes.
pub(crate) fn check_range(
    op: DeviceOp,
    offset: u64,
    len: u64,
    size: u64,
    block_size: u32,
) -> Result<(), DeviceError> {
    let bs = u64::from(block_size);
    if !offset.is_multiple_of(bs) || !len.is_multiple_of(bs) {
        return Err(DeviceError::Misaligned {
            op,
            offset,
            len,
            block_size,
        });
    }
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(DeviceError::OutOfRange {
            op,
            offset,
            len,
            size,
        }),
    }
}

/// Validates a device block size (512 or 4096) and a size that is a whole number of blocks.
pub(crate) fn check_geometry(size: u64, block_size: u32) -> Result<(), DeviceError> {
    if block_size != 512 && block_size != 4096 {
        return Err(DeviceError::InvalidParameter(
            "block size must be 512 or 4096",
        ));
    }
    if size == 0 || !size.is_multiple_of(u64::from(block_size)) {
        return Err(DeviceError::InvalidParameter(
            "size must be a non-zero multiple of the block size",
        ));
    }
    Ok(())
}

/// Converts a device length to `usize`.
pub(crate) fn to_usize(op: DeviceOp, offset: u64, len: u64) -> Result<usize, DeviceError> {
    usize::try_from(len).map_err(|_| DeviceError::OutOfRange {
        op,
        offset,
        len,
        size: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_checks() {
        assert!(check_range(DeviceOp::Read, 0, 512, 1024, 512).is_ok());
        assert!(matches!(
            check_range(DeviceOp::Read, 1, 512, 1024, 512),
            Err(DeviceError::Misaligned { .. })
        ));
        assert!(matches!(
            check_range(DeviceOp::Write, 512, 1024, 1024, 512),
            Err(DeviceError::OutOfRange { .. })
        ));
        assert!(matches!(
            check_range(DeviceOp::Write, u64::MAX - 511, 512, 1024, 512),
            Err(DeviceError::OutOfRange { .. })
        ));
        assert!(check_geometry(4096, 4096).is_ok());
        assert!(check_geometry(4096, 1024).is_err());
        assert!(check_geometry(0, 512).is_err());
    }
}
