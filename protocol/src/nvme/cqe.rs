//! The 16-byte Completion Queue Entry.

use super::status::Status;
use crate::wire::{Reader, Writer};

//~ NVMe Base 2.0, Common Completion Queue Entry Layout figure: DW0 (0..4), DW1 (4..8),
//~ SQHD (8..10), SQID (10..12), CID (12..14), Status + Phase (14..16).
/// Size of a CQE.
pub const CQE_LEN: usize = 16;
/// Byte offset of SQHD.
pub const CQE_SQHD_OFFSET: usize = 8;
/// Byte offset of SQID.
pub const CQE_SQID_OFFSET: usize = 10;
/// Byte offset of CID.
pub const CQE_CID_OFFSET: usize = 12;
/// Byte offset of the status field.
pub const CQE_STATUS_OFFSET: usize = 14;

/// A completion queue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Cqe {
    /// Command-specific Dword 0 (e.g. Connect's CNTLID, Get Features' value).
    pub dw0: u32,
    /// Command-specific Dword 1.
    pub dw1: u32,
    /// Submission Queue Head Pointer.
    pub sqhd: u16,
    /// Submission Queue Identifier.
    pub sqid: u16,
    /// Command Identifier of the completed command.
    pub cid: u16,
    /// Status.
    pub status: Status,
    /// Phase Tag (unused by fabrics, kept so every bit round-trips).
    pub phase: bool,
}

impl Cqe {
    /// A completion for `cid` with `status`, all other fields zero.
    pub const fn new(cid: u16, status: Status) -> Self {
        Self {
            dw0: 0,
            dw1: 0,
            sqhd: 0,
            sqid: 0,
            cid,
            status,
            phase: false,
        }
    }

    /// DW0 and DW1 as the 64-bit result (Property Get of an 8-byte property).
    pub fn result_u64(&self) -> u64 {
        u64::from(self.dw0) | (u64::from(self.dw1) << 32)
    }

    /// The 16 wire bytes.
    pub fn to_bytes(&self) -> [u8; CQE_LEN] {
        let mut out = [0u8; CQE_LEN];
        let mut w = Writer::over(&mut out);
        w.u32(0, self.dw0);
        w.u32(4, self.dw1);
        w.u16(CQE_SQHD_OFFSET, self.sqhd);
        w.u16(CQE_SQID_OFFSET, self.sqid);
        w.u16(CQE_CID_OFFSET, self.cid);
        w.u16(CQE_STATUS_OFFSET, self.status.to_field(self.phase));
        out
    }

    /// Parses 16 wire bytes.
    pub fn from_bytes(src: &[u8; CQE_LEN]) -> Self {
        Self::decode(src).unwrap_or_default()
    }

    /// Parses the first 16 bytes of `src`.
    pub fn decode(src: &[u8]) -> Result<Self, crate::StructDecodeError> {
        let r = Reader::new(src, "CQE", CQE_LEN)?;
        let (status, phase) = Status::from_field(r.u16(CQE_STATUS_OFFSET)?);
        Ok(Self {
            dw0: r.u32(0)?,
            dw1: r.u32(4)?,
            sqhd: r.u16(CQE_SQHD_OFFSET)?,
            sqid: r.u16(CQE_SQID_OFFSET)?,
            cid: r.u16(CQE_CID_OFFSET)?,
            status,
            phase,
        })
    }
}
