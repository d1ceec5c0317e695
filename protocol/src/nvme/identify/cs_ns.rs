//! The two namespace structures NVMe 2.0 added beside Identify Namespace: the NVM Command Set
//! specific one (CNS 05h, CSI 00h: storage tag and protection information formats) and the
//! I/O Command Set Independent one (CNS 08h: sharing, ANA group, write protection, readiness).

use bytes::BytesMut;

use super::IDENTIFY_LEN;
use super::ns::LBAF_COUNT;
use crate::wire::{Reader, StructDecodeError, Writer};

//= NVM Command Set 1.0 §4.1.5.3, Figure 100
//# Logical Block Storage Tag Mask (LBSTM): Identifies the mask for the Storage Tag field for the
//# protection information (refer to section 5.1). ... 7:0 O
//# ... Protection Information Capabilities (PIC): This field indicates the capabilities for the
//# protection information formats. ... 8 O ... 11:9 Reserved
//# Extended LBA Format 0 Support (ELBAF0): This field indicates additional LBA Format 0 15:12 O
//# information related to the LBA Format 0 Support (LBAF0) field in the Identify Namespace data
//# structure. The Extended LBA format field is defined in Figure 101. ...
//# Extended LBA Format 63 Support (ELBAF63): This field indicates additional LBA Format 63
//# 267:264 O information related to the LBA Format 63 Support (LBAF63) field in the Identify
//# Namespace data structure. The Extended LBA format field is defined in Figure 101.
//# 4095:268 O Reserved
// Checked against Linux `struct nvme_id_ns_nvm`.
/// Byte offset of LBSTM.
pub const LBSTM_OFFSET: usize = 0;
/// Byte offset of PIC.
pub const PIC_OFFSET: usize = 8;
/// Byte offset of ELBAF0.
pub const ELBAF_OFFSET: usize = 12;

//= NVM Command Set 1.0 §4.1.5.3, Figure 101
//# 31:9 Reserved ...
//# Protection Information Format (PIF): This field indicates the protection information format
//# (refer to section 5.2.1) when end-to-end protection information is enabled on a namespace
//# formatted with this LBA format.
//# Value Definition 8:7 00b 16b Guard Protection Information 01b 32b Guard Protection Information
//# 10b 64b Guard Protection Information 11b Reserved
//# Storage Tag Size (STS): Identifies the number of most significant bits of the protection
//# information Storage and Reference Space field that define the Storage Tag field (refer to
//# section 5.2.1.4). ... 6:0 ...
/// One Extended LBA Format: the storage tag and protection information of the LBA format
/// with the same index in Identify Namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ExtendedLbaFormat {
    /// Storage Tag Size in bits (7 bits).
    pub sts: u8,
    /// Protection Information Format (2 bits): 0 16b Guard, 1 32b Guard, 2 64b Guard.
    pub pif: u8,
}

impl ExtendedLbaFormat {
    /// The 32-bit field.
    pub fn to_dword(self) -> u32 {
        u32::from(self.sts & 0x7f) | (u32::from(self.pif & 0x3) << 7)
    }

    /// From the 32-bit field (reserved bits ignored).
    pub fn from_dword(dw: u32) -> Self {
        let [lo, hi, _, _] = dw.to_le_bytes();
        Self {
            sts: lo & 0x7f,
            pif: ((lo >> 7) | (hi << 1)) & 0x3,
        }
    }
}

/// NVM Command Set specific Identify Namespace (CNS 05h, CSI 00h).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifyNamespaceNvm {
    /// Logical Block Storage Tag Mask.
    pub lbstm: u64,
    /// Protection Information Capabilities (bit 0 16BPISTM, bit 1 STCRS).
    pub pic: u8,
    /// Extended LBA formats, one per LBA format of Identify Namespace.
    pub elbaf: [ExtendedLbaFormat; LBAF_COUNT],
}

impl Default for IdentifyNamespaceNvm {
    fn default() -> Self {
        Self {
            lbstm: 0,
            pic: 0,
            elbaf: [ExtendedLbaFormat::default(); LBAF_COUNT],
        }
    }
}

impl IdentifyNamespaceNvm {
    /// Size on the wire.
    pub const SIZE: usize = IDENTIFY_LEN;

    /// Bytes `encode` appends.
    pub const fn encoded_len(&self) -> usize {
        Self::SIZE
    }

    /// Appends the 4096-byte structure to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        let mut w = Writer::append(dst, Self::SIZE);
        w.u64(LBSTM_OFFSET, self.lbstm);
        w.u8(PIC_OFFSET, self.pic);
        for (i, f) in self.elbaf.iter().enumerate() {
            w.u32(ELBAF_OFFSET + 4 * i, f.to_dword());
        }
    }

    /// Parses the structure from the first 4096 bytes of `src`.
    pub fn decode(src: &[u8]) -> Result<Self, StructDecodeError> {
        let r = Reader::new(src, "Identify Namespace NVM", Self::SIZE)?;
        let mut elbaf = [ExtendedLbaFormat::default(); LBAF_COUNT];
        for (i, f) in elbaf.iter_mut().enumerate() {
            *f = ExtendedLbaFormat::from_dword(r.u32(ELBAF_OFFSET + 4 * i)?);
        }
        Ok(Self {
            lbstm: r.u64(LBSTM_OFFSET)?,
            pic: r.u8(PIC_OFFSET)?,
            elbaf,
        })
    }
}

/// Byte offsets of the I/O Command Set Independent Identify Namespace fields.
//~ NVMe Base 2.0, I/O Command Set Independent Identify Namespace Data Structure: NSFEAT (0),
//~ NMIC (1), RESCAP (2), FPI (3), ANAGRPID (7:4), NSATTR (8), reserved (9), NVMSETID
//~ (11:10), ENDGID (13:12), NSTAT (14), reserved to 4095. Checked against Linux
//~ `struct nvme_id_ns_cs_indep`.
pub mod indep_offsets {
    /// Common Namespace Features.
    pub const NSFEAT: usize = 0;
    /// Namespace Multi-path I/O and Namespace Sharing Capabilities.
    pub const NMIC: usize = 1;
    /// Reservation Capabilities.
    pub const RESCAP: usize = 2;
    /// Format Progress Indicator.
    pub const FPI: usize = 3;
    /// ANA Group Identifier.
    pub const ANAGRPID: usize = 4;
    /// Namespace Attributes.
    pub const NSATTR: usize = 8;
    /// NVM Set Identifier.
    pub const NVMSETID: usize = 10;
    /// Endurance Group Identifier.
    pub const ENDGID: usize = 12;
    /// Namespace Status.
    pub const NSTAT: usize = 14;
}

use indep_offsets as io;

/// I/O Command Set Independent Identify Namespace (CNS 08h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IdentifyNamespaceIndependent {
    /// Common Namespace Features.
    pub nsfeat: u8,
    /// NMIC (bit 0: may be attached to more than one controller).
    pub nmic: u8,
    /// Reservation Capabilities.
    pub rescap: u8,
    /// Format Progress Indicator.
    pub fpi: u8,
    /// ANA Group Identifier.
    pub anagrpid: u32,
    /// Namespace Attributes (bit 0: write protected).
    pub nsattr: u8,
    /// NVM Set Identifier.
    pub nvmsetid: u16,
    /// Endurance Group Identifier.
    pub endgid: u16,
    /// Namespace Status (bit 0 NRDY: the namespace is ready). The Linux host ignores a
    /// namespace whose NRDY is clear when it reads this structure.
    pub nstat: u8,
}

impl IdentifyNamespaceIndependent {
    /// Size on the wire.
    pub const SIZE: usize = IDENTIFY_LEN;
    /// NSTAT bit 0: Namespace Ready.
    pub const NSTAT_READY: u8 = 1 << 0;

    /// Bytes `encode` appends.
    pub const fn encoded_len(&self) -> usize {
        Self::SIZE
    }

    /// Appends the 4096-byte structure to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        let mut w = Writer::append(dst, Self::SIZE);
        w.bytes(io::NSFEAT, &[self.nsfeat, self.nmic, self.rescap, self.fpi]);
        w.u32(io::ANAGRPID, self.anagrpid);
        w.u8(io::NSATTR, self.nsattr);
        w.u16(io::NVMSETID, self.nvmsetid);
        w.u16(io::ENDGID, self.endgid);
        w.u8(io::NSTAT, self.nstat);
    }

    /// Parses the structure from the first 4096 bytes of `src`.
    pub fn decode(src: &[u8]) -> Result<Self, StructDecodeError> {
        let r = Reader::new(src, "Identify Namespace Independent", Self::SIZE)?;
        Ok(Self {
            nsfeat: r.u8(io::NSFEAT)?,
            nmic: r.u8(io::NMIC)?,
            rescap: r.u8(io::RESCAP)?,
            fpi: r.u8(io::FPI)?,
            anagrpid: r.u32(io::ANAGRPID)?,
            nsattr: r.u8(io::NSATTR)?,
            nvmsetid: r.u16(io::NVMSETID)?,
            endgid: r.u16(io::ENDGID)?,
            nstat: r.u8(io::NSTAT)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // NVM Command Set 1.0 §4.1.5.3
    #[test]
    fn elbaf_packs_sts_and_pif() {
        let f = ExtendedLbaFormat { sts: 0x7f, pif: 2 };
        assert_eq!(f.to_dword(), 0x17f);
        assert_eq!(ExtendedLbaFormat::from_dword(0xffff_fd7f), f);
    }
}
