//! Error Information log page (LID 01h): 64-byte entries.

use bytes::BytesMut;

use crate::wire::{Reader, StructDecodeError, Writer};

//~ NVMe Base 2.0, Error Information Log Entry figure: Error Count (0), SQID (8),
//~ CID (10), Status Field (12, bit 0 phase), Parameter Error Location (14), LBA (16), NSID (24),
//~ Vendor Specific Information Available (28), Transport Type (29), Command Specific
//~ Information (32), Transport Type Specific Information (40).
/// Size of one entry.
pub const ERROR_INFO_ENTRY_LEN: usize = 64;

/// One Error Information log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ErrorInfoEntry {
    /// Error Count: unique, increasing; 0 means the entry is invalid.
    pub error_count: u64,
    /// Submission Queue ID.
    pub sqid: u16,
    /// Command ID.
    pub cid: u16,
    /// Status field of the completion (bits 15:1; bit 0 is the phase tag).
    pub status_field: u16,
    /// Parameter Error Location: byte (7:0) and bit (10:8) in the command.
    pub parameter_error_location: u16,
    /// LBA of the first failing block.
    pub lba: u64,
    /// Namespace.
    pub nsid: u32,
    /// Vendor Specific Information Available.
    pub vs_info_available: u8,
    /// Transport Type.
    pub trtype: u8,
    /// Command Specific Information.
    pub command_specific: u64,
    /// Transport Type Specific Information.
    pub transport_specific: u16,
}

impl ErrorInfoEntry {
    /// Bytes `encode` appends.
    pub const fn encoded_len(&self) -> usize {
        ERROR_INFO_ENTRY_LEN
    }

    /// Appends the 64-byte entry.
    pub fn encode(&self, dst: &mut BytesMut) {
        let mut w = Writer::append(dst, ERROR_INFO_ENTRY_LEN);
        w.u64(0, self.error_count);
        w.u16(8, self.sqid);
        w.u16(10, self.cid);
        w.u16(12, self.status_field);
        w.u16(14, self.parameter_error_location);
        w.u64(16, self.lba);
        w.u32(24, self.nsid);
        w.u8(28, self.vs_info_available);
        w.u8(29, self.trtype);
        w.u64(32, self.command_specific);
        w.u16(40, self.transport_specific);
    }

    /// Parses one entry.
    pub fn decode(src: &[u8]) -> Result<Self, StructDecodeError> {
        let r = Reader::new(src, "Error Information entry", ERROR_INFO_ENTRY_LEN)?;
        Ok(Self {
            error_count: r.u64(0)?,
            sqid: r.u16(8)?,
            cid: r.u16(10)?,
            status_field: r.u16(12)?,
            parameter_error_location: r.u16(14)?,
            lba: r.u64(16)?,
            nsid: r.u32(24)?,
            vs_info_available: r.u8(28)?,
            trtype: r.u8(29)?,
            command_specific: r.u64(32)?,
            transport_specific: r.u16(40)?,
        })
    }
}
