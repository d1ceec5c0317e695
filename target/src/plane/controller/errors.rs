//! The Error Information log: the most recent command failures of a controller, newest first,
//! each with a controller-wide error count (NVMe Base 2.0, Error Information log page).

use std::collections::VecDeque;

use lamina_protocol::nvme::Status;
use lamina_protocol::nvme::log_page::ErrorInfoEntry;

use super::Controller;

/// Entries kept (ELPE + 1).
pub const ERROR_LOG_ENTRIES: usize = 64;

/// The ring of recent errors.
#[derive(Debug, Default)]
pub struct ErrorLog {
    count: u64,
    entries: VecDeque<ErrorInfoEntry>,
}

/// One failure to record.
#[derive(Debug, Clone, Copy)]
pub struct CommandError {
    /// Submission queue.
    pub sqid: u16,
    /// Command identifier.
    pub cid: u16,
    /// Completion status.
    pub status: Status,
    /// Namespace, 0 if none.
    pub nsid: u32,
    /// First LBA concerned, 0 if none.
    pub lba: u64,
}

impl Controller {
    /// Records a failed command in the error log.
    pub fn record_error(&self, e: CommandError) {
        let mut log = self.errors.lock();
        log.count += 1;
        let entry = ErrorInfoEntry {
            error_count: log.count,
            sqid: e.sqid,
            cid: e.cid,
            status_field: e.status.to_field(false),
            parameter_error_location: 0xffff,
            lba: e.lba,
            nsid: e.nsid,
            trtype: 3,
            ..ErrorInfoEntry::default()
        };
        if log.entries.len() == ERROR_LOG_ENTRIES {
            log.entries.pop_back();
        }
        log.entries.push_front(entry);
    }

    /// The error log, newest first.
    pub fn error_log(&self) -> Vec<ErrorInfoEntry> {
        self.errors.lock().entries.iter().copied().collect()
    }

    /// Errors recorded since the controller was created.
    pub fn error_count(&self) -> u64 {
        self.errors.lock().count
    }
}
