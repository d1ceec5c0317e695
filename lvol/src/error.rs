//! The crate's two error types: [`DeviceError`] for base-device faults and [`LvolError`] for
//! everything the volume store reports. Both are small and `Clone`, so one failure can be handed
//! to every waiter of a group commit, and every message says what to do next.

use std::fmt;

/// The device operation that failed, for error messages and metrics labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceOp {
    /// Opening or probing the device.
    Open,
    /// A read.
    Read,
    /// A write.
    Write,
    /// A cache flush (`fdatasync`).
    Flush,
    /// Zeroing a range (`FALLOC_FL_ZERO_RANGE` or written zeros).
    WriteZeroes,
    /// Releasing a range so that it reads back as zeros (`FALLOC_FL_PUNCH_HOLE`).
    Deallocate,
}

impl fmt::Display for DeviceOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Open => "open",
            Self::Read => "read",
            Self::Write => "write",
            Self::Flush => "flush",
            Self::WriteZeroes => "write-zeroes",
            Self::Deallocate => "deallocate",
        })
    }
}

/// A base-device failure. Hot-path sized: no heap data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// The operating system reported an error.
    #[error(
        "device {op} at byte {offset} failed with OS error {errno}: check the device and the kernel log"
    )]
    Io {
        /// What was attempted.
        op: DeviceOp,
        /// Byte offset of the request.
        offset: u64,
        /// The `errno` value (`EIO` when the OS gave none).
        errno: i32,
    },
    /// The request reaches past the end of the device.
    #[error("device {op} of {len} bytes at byte {offset} is past the device end ({size} bytes)")]
    OutOfRange {
        /// What was attempted.
        op: DeviceOp,
        /// Byte offset of the request.
        offset: u64,
        /// Length of the request in bytes.
        len: u64,
        /// Device size in bytes.
        size: u64,
    },
    /// The request is not aligned to the device's block size.
    #[error(
        "device {op} of {len} bytes at byte {offset} is not aligned to {block_size}-byte blocks"
    )]
    Misaligned {
        /// What was attempted.
        op: DeviceOp,
        /// Byte offset of the request.
        offset: u64,
        /// Length of the request in bytes.
        len: u64,
        /// Device block size in bytes.
        block_size: u32,
    },
    /// The device is gone (fault injection, or a simulated power loss).
    #[error("device failed during {0}: the device is gone; reload the lvstore once it is back")]
    Failed(DeviceOp),
    /// A parameter of the device itself is unusable (size, block size).
    #[error("invalid device parameter: {0}")]
    InvalidParameter(&'static str),
    /// Another open holds the device's exclusive lock (another target, or an offline check).
    #[error("the device is in use: another process (or open) holds its lock; stop it first")]
    InUse,
}

impl DeviceError {
    /// Wraps an `std::io::Error` from operation `op` at `offset`.
    pub fn from_io(op: DeviceOp, offset: u64, err: &std::io::Error) -> Self {
        Self::Io {
            op,
            offset,
            errno: err.raw_os_error().unwrap_or(libc::EIO),
        }
    }

    /// Wraps a `rustix` errno from operation `op` at `offset`.
    pub fn from_errno(op: DeviceOp, offset: u64, err: rustix::io::Errno) -> Self {
        Self::Io {
            op,
            offset,
            errno: err.raw_os_error(),
        }
    }
}

/// Everything the volume store can report. Mapped to NVMe statuses and JSON-RPC errors by the
/// layers above in one exhaustive `match` each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LvolError {
    /// No lvstore or lvol by that UUID or name.
    #[error("{0} not found: list lvstores/lvols to see what exists")]
    NotFound(String),
    /// The name (or UUID) is already taken.
    #[error("{0} already exists: pick another name")]
    Exists(String),
    /// The object is in use (exported, open, or the lvstore has open lvols).
    #[error("{0} is busy: close or unexport it first")]
    Busy(String),
    /// Not enough free clusters.
    #[error(
        "no space: {needed_clusters} cluster(s) needed, {free_clusters} free; delete lvols or grow the lvstore"
    )]
    NoSpace {
        /// Clusters the operation needs.
        needed_clusters: u64,
        /// Clusters free at the time.
        free_clusters: u64,
    },
    /// The metadata region has no room for another record of this kind.
    #[error("lvstore metadata is full ({0}); delete lvols or create the lvstore with more room")]
    MetadataFull(&'static str),
    /// A write to a read-only lvol or snapshot.
    #[error("lvol is read-only (a snapshot or set read-only): write to a clone instead")]
    ReadOnly,
    /// The range reaches past the end of the lvol.
    #[error("range of {len} bytes at byte {offset} is past the lvol end ({size} bytes)")]
    OutOfRange {
        /// Byte offset of the request.
        offset: u64,
        /// Length in bytes.
        len: u64,
        /// Lvol size in bytes.
        size: u64,
    },
    /// The range is not aligned to the lvstore block size.
    #[error(
        "range of {len} bytes at byte {offset} is not aligned to the {block_size}-byte block size"
    )]
    Misaligned {
        /// Byte offset of the request.
        offset: u64,
        /// Length in bytes.
        len: u64,
        /// Lvstore block size in bytes.
        block_size: u32,
    },
    /// The lvol was deleted; this handle is stale.
    #[error("lvol was deleted: look it up again")]
    Deleted,
    /// The lvstore was unloaded or destroyed; this handle is stale.
    #[error("lvstore was unloaded: load it again")]
    Unloaded,
    /// The descriptor was closed (its namespace was removed); open the lvol again.
    #[error("lvol descriptor was closed: open the lvol again")]
    Closed,
    /// A parameter is out of its allowed range or malformed.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The snapshot has more than one clone, so it cannot be deleted.
    #[error(
        "snapshot has {0} clones: delete or inflate all but one first (a single clone is merged)"
    )]
    HasClones(usize),
    /// On-disk metadata is damaged or inconsistent.
    #[error("lvstore metadata is corrupt: {0}; the device was left untouched")]
    Corrupt(String),
    /// The device holds no lvstore (blank or foreign data).
    #[error("no lvstore on this device: create one (existing data would be overwritten)")]
    NoLvstore,
    /// A metadata write failed earlier, so the lvstore stopped accepting changes.
    #[error("lvstore metadata write failed earlier; unload and load the lvstore to recover")]
    StoreFailed,
    /// The base device failed.
    #[error(transparent)]
    Device(#[from] DeviceError),
}

impl LvolError {
    /// Shorthand for [`LvolError::Corrupt`].
    pub(crate) fn corrupt(what: impl Into<String>) -> Self {
        Self::Corrupt(what.into())
    }

    /// Shorthand for [`LvolError::InvalidArgument`].
    pub(crate) fn invalid(what: impl Into<String>) -> Self {
        Self::InvalidArgument(what.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_stay_small() {
        assert!(std::mem::size_of::<DeviceError>() <= 32);
        assert!(std::mem::size_of::<LvolError>() <= 40);
    }

    #[test]
    fn messages_say_what_to_do() {
        let e = LvolError::HasClones(2);
        assert!(e.to_string().contains("inflate"));
        let d = DeviceError::Failed(DeviceOp::Write);
        assert!(LvolError::from(d).to_string().contains("reload"));
    }
}
