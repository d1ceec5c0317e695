//! Regular files and block devices. Reads, writes and flushes go through io_uring when the
//! kernel offers it (`lamina-uring`: the ring owns each buffer while the kernel uses it, and
//! its completions are reaped on the runtime that opened the device, which wakes the waiting
//! command, so nothing is copied or handed to a thread pool); otherwise, detected at open, and when `FileOptions::io_uring` is off (the
//! target's `io_uring` setting), positioned I/O (`FileExt::read_exact_at`/`write_all_at`) on
//! tokio's blocking pool, bounded by a semaphore so a burst cannot spawn hundreds of threads.
//! `O_DIRECT` is used when the filesystem accepts it (probed at open, with one warning on
//! fallback); buffers that are not aligned for direct I/O go through an aligned bounce buffer.
//! Write-zeroes and deallocate map to `fallocate(ZERO_RANGE)` and `fallocate(PUNCH_HOLE)`
//! (both work on block devices too), falling back to writing zeros. A missing file is created
//! sparse when a size is given. An open takes the file's lock (see `file_lock`): a second
//! process using the same file (another target, an offline check) is refused.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Buf, Bytes, BytesMut};
use lamina_uring::UringFile;
use rustix::fs::{FallocateFlags, StatxFlags};
use tokio::sync::Semaphore;

use super::{BlockDevice, DeviceKind, check_range, to_usize};
use crate::error::{DeviceError, DeviceOp};

/// How to open a [`FileDevice`].
#[derive(Debug, Clone)]
pub struct FileOptions {
    /// Create the file sparse with this size if it does not exist.
    pub create_size_bytes: Option<u64>,
    /// Block size to expose (512 or 4096); default: the device's logical block size, or 512.
    pub block_size: Option<u32>,
    /// Try `O_DIRECT` (default true).
    pub direct_io: bool,
    /// Most I/Os in flight at once (default 64): io_uring slots, or blocking-pool threads.
    pub max_in_flight: usize,
    /// Use io_uring when the kernel offers it (default true).
    pub io_uring: bool,
}

impl Default for FileOptions {
    fn default() -> Self {
        Self {
            create_size_bytes: None,
            block_size: None,
            direct_io: true,
            max_in_flight: 64,
            io_uring: true,
        }
    }
}

/// A file or block-device backed device. Clones share the open file.
#[derive(Debug, Clone)]
pub struct FileDevice(Arc<FileInner>);

#[derive(Debug)]
struct FileInner {
    /// One process at a time (see `file_lock`).
    _lock: Arc<super::file_lock::FileLock>,
    path: PathBuf,
    file: File,
    kind: DeviceKind,
    /// Alignment for direct I/O (memory and offsets); `None` for buffered I/O.
    direct_align: Option<usize>,
    block_size: u32,
    size: AtomicU64,
    permits: Semaphore,
    /// The io_uring path, when available.
    uring: Option<UringFile>,
}

/// Puts a duplicate of `file` under io_uring, or says why not.
fn open_uring(file: &File, opts: &FileOptions, path: &Path) -> Option<UringFile> {
    if !opts.io_uring {
        return None;
    }
    let depth = u32::try_from(opts.max_in_flight).unwrap_or(64);
    match file.try_clone().and_then(|f| UringFile::new(f, depth)) {
        Ok(u) => Some(u),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e,
                "io_uring unavailable, using the blocking thread pool");
            None
        }
    }
}

fn open_err(e: &std::io::Error) -> DeviceError {
    DeviceError::from_io(DeviceOp::Open, 0, e)
}

fn open_rw(path: &Path, direct: bool) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(true);
    if direct {
        o.custom_flags(libc::O_DIRECT);
    }
    o.open(path)
}

/// Creates a sparse file when asked and missing.
fn create_if_missing(path: &Path, opts: &FileOptions) -> Result<(), DeviceError> {
    match (std::fs::metadata(path), opts.create_size_bytes) {
        (Ok(_), _) => Ok(()),
        (Err(e), Some(size)) if e.kind() == ErrorKind::NotFound => {
            // Volume contents: private to the target's user.
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| open_err(&e))?;
            f.set_len(size).map_err(|e| open_err(&e))
        }
        (Err(e), _) => Err(open_err(&e)),
    }
}

/// The direct-I/O alignment the kernel reports, or 512 when it does not say.
fn dio_alignment(file: &File, is_block: bool, logical: u32) -> usize {
    if is_block {
        return usize::try_from(logical).unwrap_or(4096);
    }
    match rustix::fs::statx(
        file,
        "",
        rustix::fs::AtFlags::EMPTY_PATH,
        StatxFlags::DIOALIGN,
    ) {
        Ok(st) if st.stx_dio_offset_align > 0 => {
            let a = st.stx_dio_offset_align.max(st.stx_dio_mem_align);
            usize::try_from(a).unwrap_or(4096)
        }
        _ => 512,
    }
}

/// An aligned zeroed buffer: the backing `Vec` and the offset where the aligned part starts.
fn aligned_buffer(len: usize, align: usize) -> (Vec<u8>, usize) {
    let v = vec![0u8; len + align];
    let misalign = v.as_ptr().addr() % align;
    let start = if misalign == 0 { 0 } else { align - misalign };
    (v, start)
}

fn is_aligned(ptr: *const u8, len: usize, offset: u64, align: usize) -> bool {
    ptr.addr().is_multiple_of(align)
        && len.is_multiple_of(align)
        && offset.is_multiple_of(align as u64)
}

impl FileDevice {
    /// Opens (and, with `create_size_bytes`, creates) the file or block device at `path`.
    pub fn open(path: impl AsRef<Path>, opts: &FileOptions) -> Result<Self, DeviceError> {
        let path = path.as_ref();
        create_if_missing(path, opts)?;
        let meta = std::fs::metadata(path).map_err(|e| open_err(&e))?;
        let is_block = meta.file_type().is_block_device();
        let mut file = open_rw(path, false).map_err(|e| open_err(&e))?;
        let logical = if is_block {
            rustix::fs::ioctl_blksszget(&file)
                .map_err(|e| DeviceError::from_errno(DeviceOp::Open, 0, e))?
        } else {
            512
        };
        let block_size = opts.block_size.unwrap_or(logical.max(512));
        if (block_size != 512 && block_size != 4096) || block_size < logical {
            return Err(DeviceError::InvalidParameter(
                "block size must be 512 or 4096 and at least the device's logical block size",
            ));
        }
        let raw_size = if is_block {
            file.seek(SeekFrom::End(0)).map_err(|e| open_err(&e))?
        } else {
            meta.len()
        };
        let size = raw_size - raw_size % u64::from(block_size);
        let mut direct_align = None;
        if opts.direct_io {
            match Self::probe_direct(path, is_block, logical, block_size) {
                Ok((f, align)) => {
                    file = f;
                    direct_align = Some(align);
                }
                Err(why) => tracing::warn!(
                    path = %path.display(), %why,
                    "O_DIRECT unavailable, using buffered I/O (data still reaches the media on flush)"
                ),
            }
        }
        let lock = super::file_lock::lock(path)?;
        let uring = open_uring(&file, opts, path);
        Ok(Self(Arc::new(FileInner {
            _lock: lock,
            path: path.to_path_buf(),
            uring,
            file,
            kind: if is_block {
                DeviceKind::Block
            } else {
                DeviceKind::File
            },
            direct_align,
            block_size,
            size: AtomicU64::new(size),
            permits: Semaphore::new(opts.max_in_flight.max(1)),
        })))
    }

    /// Opens with `O_DIRECT` and checks one aligned read works.
    fn probe_direct(
        path: &Path,
        is_block: bool,
        logical: u32,
        block_size: u32,
    ) -> Result<(File, usize), String> {
        let f = open_rw(path, true).map_err(|e| format!("open with O_DIRECT: {e}"))?;
        let align = dio_alignment(&f, is_block, logical).max(512);
        if align > usize::try_from(block_size).unwrap_or(0) {
            return Err(format!(
                "direct I/O needs {align}-byte alignment, above the block size"
            ));
        }
        let (mut v, start) = aligned_buffer(align, align);
        let probe = v.get_mut(start..start + align).ok_or("probe buffer")?;
        match f.read_at(probe, 0) {
            Ok(_) => Ok((f, align)),
            Err(e) => Err(format!("probe read with O_DIRECT: {e}")),
        }
    }

    /// The path this device was opened from.
    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// Whether `O_DIRECT` is in use.
    pub fn is_direct(&self) -> bool {
        self.0.direct_align.is_some()
    }

    /// Whether reads, writes and flushes go through io_uring.
    pub fn is_uring(&self) -> bool {
        self.0.uring.is_some()
    }

    pub(crate) fn kind(&self) -> DeviceKind {
        self.0.kind
    }

    /// Re-reads the size (after the file or block device grew).
    pub fn refresh_size(&self) -> Result<u64, DeviceError> {
        let size = self.probe_size()?;
        self.0.size.store(size, Ordering::SeqCst);
        Ok(size)
    }

    /// The size the file or block device has now, in whole blocks, without adopting it.
    pub fn probe_size(&self) -> Result<u64, DeviceError> {
        let raw = if self.0.kind == DeviceKind::Block {
            (&self.0.file)
                .seek(SeekFrom::End(0))
                .map_err(|e| open_err(&e))?
        } else {
            self.0.file.metadata().map_err(|e| open_err(&e))?.len()
        };
        Ok(raw - raw % u64::from(self.0.block_size))
    }

    /// Runs `f` on the blocking pool under the in-flight limit.
    async fn run<T, F>(&self, op: DeviceOp, offset: u64, f: F) -> Result<T, DeviceError>
    where
        T: Send + 'static,
        F: FnOnce(&FileInner) -> T + Send + 'static,
    {
        let _permit = self
            .0
            .permits
            .acquire()
            .await
            .map_err(|_| DeviceError::Failed(op))?;
        let inner = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|_| DeviceError::Io {
                op,
                offset,
                errno: libc::EIO,
            })
    }

    fn check(&self, op: DeviceOp, offset: u64, len: u64) -> Result<(), DeviceError> {
        check_range(op, offset, len, self.size_bytes(), self.0.block_size)
    }
}

/// An empty buffer of `len` bytes' capacity whose data starts `align`-aligned.
fn aligned_bytes(len: usize, align: usize) -> BytesMut {
    let mut b = BytesMut::with_capacity(len + align);
    let misalign = b.as_ptr().addr() % align;
    let pad = if misalign == 0 { 0 } else { align - misalign };
    b.resize(pad, 0);
    b.advance(pad);
    b
}

impl FileInner {
    /// io_uring read: straight into `buf` when its free space is aligned for `O_DIRECT` (the
    /// target's pooled read buffers are), else through an aligned bounce buffer.
    async fn read_uring(
        &self,
        u: &UringFile,
        offset: u64,
        len: usize,
        buf: &mut BytesMut,
    ) -> Result<(), DeviceError> {
        let err = |e: std::io::Error| DeviceError::from_io(DeviceOp::Read, offset, &e);
        buf.reserve(len);
        let spare = buf.as_ptr().wrapping_add(buf.len());
        match self.direct_align {
            Some(a) if !is_aligned(spare, len, offset, a) => {
                let (bounce, r) = u.read_at(offset, aligned_bytes(len, a), len).await;
                r.map_err(err)?;
                buf.extend_from_slice(&bounce);
                Ok(())
            }
            _ => {
                let (b, r) = u.read_at(offset, std::mem::take(buf), len).await;
                *buf = b;
                r.map_err(err)
            }
        }
    }

    /// io_uring write: `data` as is (zero-copy) unless `O_DIRECT` needs it aligned.
    async fn write_uring(
        &self,
        u: &UringFile,
        offset: u64,
        data: Bytes,
    ) -> Result<(), DeviceError> {
        let data = match self.direct_align {
            Some(a) if !is_aligned(data.as_ptr(), data.len(), offset, a) => {
                let mut bounce = aligned_bytes(data.len(), a);
                bounce.extend_from_slice(&data);
                bounce.freeze()
            }
            _ => data,
        };
        u.write_at(offset, data)
            .await
            .map_err(|e| DeviceError::from_io(DeviceOp::Write, offset, &e))
    }

    fn read_into(&self, offset: u64, dst: &mut [u8]) -> Result<(), DeviceError> {
        let err = |e: std::io::Error| DeviceError::from_io(DeviceOp::Read, offset, &e);
        match self.direct_align {
            Some(a) if !is_aligned(dst.as_ptr(), dst.len(), offset, a) => {
                let (mut v, start) = aligned_buffer(dst.len(), a);
                let bounce = v.get_mut(start..start + dst.len()).unwrap_or_default();
                self.file.read_exact_at(bounce, offset).map_err(err)?;
                dst.copy_from_slice(bounce);
                Ok(())
            }
            _ => self.file.read_exact_at(dst, offset).map_err(err),
        }
    }

    fn write_from(&self, offset: u64, src: &[u8]) -> Result<(), DeviceError> {
        let err = |e: std::io::Error| DeviceError::from_io(DeviceOp::Write, offset, &e);
        match self.direct_align {
            Some(a) if !is_aligned(src.as_ptr(), src.len(), offset, a) => {
                let (mut v, start) = aligned_buffer(src.len(), a);
                let bounce = v.get_mut(start..start + src.len()).unwrap_or_default();
                bounce.copy_from_slice(src);
                self.file.write_all_at(bounce, offset).map_err(err)
            }
            _ => self.file.write_all_at(src, offset).map_err(err),
        }
    }

    /// Writes zeros the slow way, 1 MiB at a time.
    fn write_zeros_slow(&self, offset: u64, len: u64) -> Result<(), DeviceError> {
        const STEP: u64 = 1 << 20;
        let align = self.direct_align.unwrap_or(1);
        let (v, start) = aligned_buffer(1 << 20, align.max(1));
        let zeros = v.get(start..start + (1 << 20)).unwrap_or_default();
        let mut done = 0;
        while done < len {
            let n = (len - done).min(STEP);
            let chunk = zeros
                .get(..to_usize(DeviceOp::WriteZeroes, offset, n)?)
                .unwrap_or_default();
            self.file
                .write_all_at(chunk, offset + done)
                .map_err(|e| DeviceError::from_io(DeviceOp::WriteZeroes, offset + done, &e))?;
            done += n;
        }
        Ok(())
    }

    fn fallocate(&self, op: DeviceOp, offset: u64, len: u64) -> Result<(), DeviceError> {
        let mode = match op {
            DeviceOp::Deallocate => FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
            _ => FallocateFlags::ZERO_RANGE | FallocateFlags::KEEP_SIZE,
        };
        match rustix::fs::fallocate(&self.file, mode, offset, len) {
            Ok(()) => Ok(()),
            Err(e) if e == rustix::io::Errno::OPNOTSUPP || e == rustix::io::Errno::INVAL => {
                if op == DeviceOp::Deallocate {
                    self.fallocate(DeviceOp::WriteZeroes, offset, len)
                } else {
                    self.write_zeros_slow(offset, len)
                }
            }
            Err(e) => Err(DeviceError::from_errno(op, offset, e)),
        }
    }
}

impl BlockDevice for FileDevice {
    fn size_bytes(&self) -> u64 {
        self.0.size.load(Ordering::SeqCst)
    }

    fn block_size(&self) -> u32 {
        self.0.block_size
    }

    async fn read(&self, offset: u64, len: usize, buf: &mut BytesMut) -> Result<(), DeviceError> {
        self.check(DeviceOp::Read, offset, len as u64)?;
        if let Some(u) = &self.0.uring {
            return self.0.read_uring(u, offset, len, buf).await;
        }
        let mut owned = std::mem::take(buf);
        let start = owned.len();
        owned.resize(start + len, 0);
        let (owned, result) = self
            .run(DeviceOp::Read, offset, move |f| {
                let r = match owned.get_mut(start..) {
                    Some(dst) => f.read_into(offset, dst),
                    None => Ok(()),
                };
                (owned, r)
            })
            .await?;
        *buf = owned;
        if result.is_err() {
            buf.truncate(start);
        }
        result
    }

    async fn write(&self, offset: u64, data: Bytes) -> Result<(), DeviceError> {
        self.check(DeviceOp::Write, offset, data.len() as u64)?;
        if let Some(u) = &self.0.uring {
            return self.0.write_uring(u, offset, data).await;
        }
        self.run(DeviceOp::Write, offset, move |f| {
            f.write_from(offset, &data)
        })
        .await?
    }

    async fn flush(&self) -> Result<(), DeviceError> {
        if let Some(u) = &self.0.uring {
            return u
                .sync_data()
                .await
                .map_err(|e| DeviceError::from_io(DeviceOp::Flush, 0, &e));
        }
        self.run(DeviceOp::Flush, 0, |f| {
            rustix::fs::fdatasync(&f.file)
                .map_err(|e| DeviceError::from_errno(DeviceOp::Flush, 0, e))
        })
        .await?
    }

    async fn write_zeroes(&self, offset: u64, len: u64) -> Result<(), DeviceError> {
        self.check(DeviceOp::WriteZeroes, offset, len)?;
        self.run(DeviceOp::WriteZeroes, offset, move |f| {
            f.fallocate(DeviceOp::WriteZeroes, offset, len)
        })
        .await?
    }

    async fn deallocate(&self, offset: u64, len: u64) -> Result<(), DeviceError> {
        self.check(DeviceOp::Deallocate, offset, len)?;
        self.run(DeviceOp::Deallocate, offset, move |f| {
            f.fallocate(DeviceOp::Deallocate, offset, len)
        })
        .await?
    }
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
