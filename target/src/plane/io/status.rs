//! The one place where a volume-store failure becomes an NVMe status: an exhaustive match, so a
//! new error kind cannot slip through unmapped.

use lamina_lvol::{DeviceError, DeviceOp, LvolError};
use lamina_protocol::nvme::{Status, StatusCode};

/// The completion status for a failed backend operation.
pub fn from_lvol(e: &LvolError) -> Status {
    match e {
        LvolError::OutOfRange { .. } => Status::dnr(StatusCode::LBA_OUT_OF_RANGE),
        LvolError::Misaligned { .. } | LvolError::InvalidArgument(_) => {
            Status::dnr(StatusCode::INVALID_FIELD)
        }
        LvolError::ReadOnly => Status::dnr(StatusCode::NAMESPACE_WRITE_PROTECTED),
        LvolError::NoSpace { .. } | LvolError::MetadataFull(_) => {
            Status::dnr(StatusCode::CAPACITY_EXCEEDED)
        }
        // The namespace's backend went away under it (lvstore unloaded, lvol force-deleted):
        // the host may retry once the namespace is back or gone.
        LvolError::Deleted | LvolError::Unloaded | LvolError::Closed | LvolError::NotFound(_) => {
            Status::new(StatusCode::NAMESPACE_NOT_READY)
        }
        LvolError::Device(d) => from_device(d),
        LvolError::StoreFailed | LvolError::Corrupt(_) => Status::dnr(StatusCode::WRITE_FAULT),
        LvolError::Exists(_)
        | LvolError::Busy(_)
        | LvolError::HasClones(_)
        | LvolError::NoLvstore => Status::new(StatusCode::INTERNAL_ERROR),
    }
}

/// The completion status for a failed device operation.
pub fn from_device(e: &DeviceError) -> Status {
    match e {
        DeviceError::Io { op, .. } | DeviceError::Failed(op) => match op {
            DeviceOp::Read => Status::dnr(StatusCode::UNRECOVERED_READ_ERROR),
            DeviceOp::Write | DeviceOp::WriteZeroes | DeviceOp::Deallocate | DeviceOp::Flush => {
                Status::dnr(StatusCode::WRITE_FAULT)
            }
            DeviceOp::Open => Status::new(StatusCode::INTERNAL_ERROR),
        },
        DeviceError::InUse => Status::new(StatusCode::INTERNAL_ERROR),
        DeviceError::OutOfRange { .. } => Status::dnr(StatusCode::LBA_OUT_OF_RANGE),
        DeviceError::Misaligned { .. } | DeviceError::InvalidParameter(_) => {
            Status::dnr(StatusCode::INVALID_FIELD)
        }
    }
}

/// Whether a status is a media or data integrity error (SMART media error count). A Compare
/// that found other data (Compare Failure, in the same status code type) is the command's
/// answer, not damage: it does not count.
pub fn is_media_error(s: Status) -> bool {
    s.code.sct == lamina_protocol::nvme::Sct::MEDIA && s.code != StatusCode::COMPARE_FAILURE
}
