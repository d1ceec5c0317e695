//! The 64-byte Submission Queue Entry: the common command fields every view shares.

use super::sgl::{SGL_DESC_LEN, SglDescriptor};
use crate::wire::{Reader, Writer, open_enum};

//~ NVMe Base 2.0, Common Command Format figure: CDW0 (OPC, FUSE, PSDT, CID), NSID, CDW2,
//~ CDW3, MPTR (16..24), DPTR (24..40), CDW10..CDW15 (40..64).
/// Size of an SQE.
pub const SQE_LEN: usize = 64;
/// Byte offset of CID.
pub const SQE_CID_OFFSET: usize = 2;
/// Byte offset of NSID (FCTYPE for Fabrics commands).
pub const SQE_NSID_OFFSET: usize = 4;
/// Byte offset of CDW2.
pub const SQE_CDW2_OFFSET: usize = 8;
/// Byte offset of CDW3.
pub const SQE_CDW3_OFFSET: usize = 12;
/// Byte offset of MPTR.
pub const SQE_MPTR_OFFSET: usize = 16;
/// Byte offset of DPTR (SGL1).
pub const SQE_DPTR_OFFSET: usize = 24;
/// Byte offset of CDW10.
pub const SQE_CDW10_OFFSET: usize = 40;

open_enum! {
    //~ NVMe Base 2.0, CDW0 bits 15:14 PSDT.
    /// PRP or SGL for Data Transfer. NVMe over Fabrics requires SGLs.
    pub struct Psdt(u8) {
        /// PRPs.
        PRP = 0,
        /// SGL; MPTR is a physically contiguous buffer (what the Linux host sets).
        SGL_MPTR_CONTIGUOUS = 1,
        /// SGL; MPTR is an SGL descriptor.
        SGL_MPTR_SGL = 2,
    }
}

open_enum! {
    //~ NVMe Base 2.0, CDW0 bits 9:8 FUSE.
    /// Fused operation.
    pub struct Fuse(u8) {
        /// Normal operation.
        NORMAL = 0,
        /// First command of a fused pair.
        FIRST = 1,
        /// Second command of a fused pair.
        SECOND = 2,
    }
}

/// A submission queue entry with every byte kept, so unknown commands round-trip unchanged.
/// Typed views (I/O, admin, Fabrics) are built from it with `TryFrom<&Sqe>` and turned back
/// into one with `to_sqe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Sqe {
    /// Opcode (byte 0).
    pub opcode: u8,
    /// Byte 1: FUSE (bits 1:0), reserved (5:2), PSDT (7:6).
    pub flags: u8,
    /// Command Identifier.
    pub cid: u16,
    /// Namespace Identifier; for Fabrics commands byte 4 is FCTYPE and 5..8 reserved.
    pub nsid: u32,
    /// Command Dword 2.
    pub cdw2: u32,
    /// Command Dword 3.
    pub cdw3: u32,
    /// Metadata Pointer.
    pub mptr: u64,
    /// Data Pointer: SGL entry 1.
    pub dptr: SglDescriptor,
    /// Command Dwords 10 to 15.
    pub cdw: [u32; 6],
}

impl Sqe {
    /// FUSE.
    pub const fn fuse(&self) -> Fuse {
        Fuse(self.flags & 0x3)
    }

    /// PSDT.
    pub const fn psdt(&self) -> Psdt {
        Psdt(self.flags >> 6)
    }

    /// Flags byte with FUSE normal and the given PSDT.
    pub const fn flags_for(psdt: Psdt) -> u8 {
        (psdt.0 & 0x3) << 6
    }

    /// Command Dword `n` for 10 ≤ n ≤ 15 (0 otherwise).
    pub fn cdw(&self, n: usize) -> u32 {
        n.checked_sub(10)
            .and_then(|i| self.cdw.get(i))
            .copied()
            .unwrap_or(0)
    }

    /// The 64 wire bytes.
    pub fn to_bytes(&self) -> [u8; SQE_LEN] {
        let mut out = [0u8; SQE_LEN];
        let mut w = Writer::over(&mut out);
        w.u8(0, self.opcode);
        w.u8(1, self.flags);
        w.u16(SQE_CID_OFFSET, self.cid);
        w.u32(SQE_NSID_OFFSET, self.nsid);
        w.u32(SQE_CDW2_OFFSET, self.cdw2);
        w.u32(SQE_CDW3_OFFSET, self.cdw3);
        w.u64(SQE_MPTR_OFFSET, self.mptr);
        w.bytes(SQE_DPTR_OFFSET, &self.dptr.to_bytes());
        for (i, dw) in self.cdw.iter().enumerate() {
            w.u32(SQE_CDW10_OFFSET + 4 * i, *dw);
        }
        out
    }

    /// Parses 64 wire bytes.
    pub fn from_bytes(src: &[u8; SQE_LEN]) -> Self {
        Self::decode(src).unwrap_or_default()
    }

    /// Parses the first 64 bytes of `src`.
    pub fn decode(src: &[u8]) -> Result<Self, crate::StructDecodeError> {
        let r = Reader::new(src, "SQE", SQE_LEN)?;
        let mut cdw = [0u32; 6];
        for (i, dw) in cdw.iter_mut().enumerate() {
            *dw = r.u32(SQE_CDW10_OFFSET + 4 * i)?;
        }
        Ok(Self {
            opcode: r.u8(0)?,
            flags: r.u8(1)?,
            cid: r.u16(SQE_CID_OFFSET)?,
            nsid: r.u32(SQE_NSID_OFFSET)?,
            cdw2: r.u32(SQE_CDW2_OFFSET)?,
            cdw3: r.u32(SQE_CDW3_OFFSET)?,
            mptr: r.u64(SQE_MPTR_OFFSET)?,
            dptr: SglDescriptor::decode(r.slice(SQE_DPTR_OFFSET, SGL_DESC_LEN)?)?,
            cdw,
        })
    }
}
