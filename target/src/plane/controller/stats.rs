//! Per-controller counters reported in the SMART / Health Information log page.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters updated on the I/O path with relaxed atomics (no lock, no allocation).
#[derive(Debug, Default)]
pub struct ControllerStats {
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    read_commands: AtomicU64,
    write_commands: AtomicU64,
    media_errors: AtomicU64,
}

/// A consistent-enough copy of the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatsSnapshot {
    /// Bytes read by hosts.
    pub bytes_read: u64,
    /// Bytes written by hosts.
    pub bytes_written: u64,
    /// Read commands completed.
    pub read_commands: u64,
    /// Write commands completed.
    pub write_commands: u64,
    /// Commands that failed with a media or data integrity error.
    pub media_errors: u64,
}

impl ControllerStats {
    /// Counts a read of `bytes`.
    pub fn on_read(&self, bytes: u64) {
        self.read_commands.fetch_add(1, Ordering::Relaxed);
        self.bytes_read.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts a write of `bytes`.
    pub fn on_write(&self, bytes: u64) {
        self.write_commands.fetch_add(1, Ordering::Relaxed);
        self.bytes_written.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts a media error.
    pub fn on_media_error(&self) {
        self.media_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
            read_commands: self.read_commands.load(Ordering::Relaxed),
            write_commands: self.write_commands.load(Ordering::Relaxed),
            media_errors: self.media_errors.load(Ordering::Relaxed),
        }
    }
}

/// SMART "Data Units": thousands of 512-byte units, rounded up (NVMe Base 2.0, SMART / Health
/// Information log page, Data Units Read).
pub fn data_units(bytes: u64) -> u128 {
    u128::from(bytes.div_ceil(512)).div_ceil(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_units_round_up() {
        assert_eq!(data_units(0), 0);
        assert_eq!(data_units(1), 1);
        assert_eq!(data_units(512 * 1000), 1);
        assert_eq!(data_units(512 * 1000 + 1), 2);
    }

    #[test]
    fn counts() {
        let s = ControllerStats::default();
        s.on_read(4096);
        s.on_write(8192);
        s.on_write(512);
        let snap = s.snapshot();
        assert_eq!(snap.read_commands, 1);
        assert_eq!(snap.bytes_written, 8704);
        assert_eq!(snap.write_commands, 2);
    }
}
