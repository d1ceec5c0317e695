//! One process at a time per file or block device: an exclusive advisory lock (`flock`) taken
//! when a [`super::FileDevice`] opens, so a second target, or an offline check or repair, is
//! refused with [`DeviceError::InUse`] instead of corrupting a store another process serves.
//! Opens within this process share one lock per file (by device and inode): the registries
//! above refuse duplicate bdevs, and an old handle still draining must not block a new open
//! of the same file. The lock is released when the last device of the file in this process
//! drops.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use crate::error::{DeviceError, DeviceOp};

/// Holds the lock while it lives, on a descriptor of its own: the device's descriptors may
/// outlive the device for a moment (an io_uring reaper finishing), and the lock must
/// not.
#[derive(Debug)]
pub(super) struct FileLock {
    _fd: File,
}

type Locks = Mutex<HashMap<(u64, u64), Weak<FileLock>>>;

fn locks() -> &'static Locks {
    static LOCKS: OnceLock<Locks> = OnceLock::new();
    LOCKS.get_or_init(Locks::default)
}

/// Takes (or shares, within this process) the exclusive lock of the file at `path`.
pub(super) fn lock(path: &Path) -> Result<Arc<FileLock>, DeviceError> {
    let open_err = |e: &std::io::Error| DeviceError::from_io(DeviceOp::Open, 0, e);
    let fd = File::open(path).map_err(|e| open_err(&e))?;
    let meta = fd.metadata().map_err(|e| open_err(&e))?;
    let key = (meta.dev(), meta.ino());
    let mut map = locks().lock().unwrap_or_else(PoisonError::into_inner);
    map.retain(|_, w| w.strong_count() > 0);
    if let Some(held) = map.get(&key).and_then(Weak::upgrade) {
        return Ok(held);
    }
    match rustix::fs::flock(&fd, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => return Err(DeviceError::InUse),
        Err(e) => return Err(DeviceError::from_errno(DeviceOp::Open, 0, e)),
    }
    let held = Arc::new(FileLock { _fd: fd });
    map.insert(key, Arc::downgrade(&held));
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_process_shares_the_lock_and_another_open_file_description_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        File::create(&path).unwrap();
        let a = lock(&path).unwrap();
        let b = lock(&path).unwrap();
        assert!(Arc::ptr_eq(&a, &b), "opens in one process share the lock");
        // What another process sees: a separate flock on the same file fails.
        let other = File::open(&path).unwrap();
        assert_eq!(
            rustix::fs::flock(&other, rustix::fs::FlockOperation::NonBlockingLockExclusive),
            Err(rustix::io::Errno::WOULDBLOCK)
        );
        drop((a, b));
        rustix::fs::flock(&other, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    }
}
