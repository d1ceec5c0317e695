//! Identify Namespace (CNS 00h, NVM command set): capacity, LBA formats and identifiers.

use bytes::BytesMut;

use super::IDENTIFY_LEN;
use crate::wire::{Reader, StructDecodeError, Writer};

/// Byte offsets of the Identify Namespace fields.
//= NVM Command Set 1.0 §4.1.5.1, Figure 97
//# Namespace Size (NSZE): This field indicates the total size of the namespace in logical 07:00 M
//# blocks. ...
//# Namespace Capacity (NCAP): This field indicates the maximum number of logical blocks that may
//# be allocated in the namespace at any point in time. ... 15:08 M ...
//# Namespace Utilization (NUSE): This field indicates the current number of logical blocks
//# allocated in the namespace. ... 23:16 M ...
//# ANA Group Identifier (ANAGRPID): This field is as defined in the I/O Command Set 95:92 O
//# Independent Identify Namespace data structure ...
//# Namespace Attributes (NSATTR): This field is as defined in the I/O Command Set 99 O
//# Independent Identify Namespace data structure ...
//# Namespace Globally Unique Identifier (NGUID): This field contains a 128-bit value that is
//# globally unique and assigned to the namespace when the namespace is created. ... 119:104 O ...
//# IEEE Extended Unique Identifier (EUI64): This field contains a 64-bit IEEE Extended Unique
//# Identifier (EUI-64) that is globally unique and assigned to the namespace when the namespace
//# is created. ... 127:120 O ...
//# LBA Format 0 Support (LBAF0): This field indicates the LBA format 0 that is supported 131:128
//# M by the controller. The LBA format field is defined in Figure 98.
// Checked against Linux `struct nvme_id_ns`.
pub mod ns_offsets {
    /// Namespace Size (logical blocks).
    pub const NSZE: usize = 0;
    /// Namespace Capacity.
    pub const NCAP: usize = 8;
    /// Namespace Utilization.
    pub const NUSE: usize = 16;
    /// Namespace Features.
    pub const NSFEAT: usize = 24;
    /// Number of LBA Formats (0's based).
    pub const NLBAF: usize = 25;
    /// Formatted LBA Size.
    pub const FLBAS: usize = 26;
    /// Metadata Capabilities.
    pub const MC: usize = 27;
    /// End-to-end Data Protection Capabilities.
    pub const DPC: usize = 28;
    /// End-to-end Data Protection Type Settings.
    pub const DPS: usize = 29;
    /// Namespace Multi-path I/O and Namespace Sharing Capabilities.
    pub const NMIC: usize = 30;
    /// Reservation Capabilities.
    pub const RESCAP: usize = 31;
    /// Format Progress Indicator.
    pub const FPI: usize = 32;
    /// Deallocate Logical Block Features.
    pub const DLFEAT: usize = 33;
    /// Namespace Atomic Write Unit Normal.
    pub const NAWUN: usize = 34;
    /// Namespace Atomic Write Unit Power Fail.
    pub const NAWUPF: usize = 36;
    /// Namespace Atomic Compare & Write Unit.
    pub const NACWU: usize = 38;
    /// Namespace Atomic Boundary Size Normal.
    pub const NABSN: usize = 40;
    /// Namespace Atomic Boundary Offset.
    pub const NABO: usize = 42;
    /// Namespace Atomic Boundary Size Power Fail.
    pub const NABSPF: usize = 44;
    /// Namespace Optimal I/O Boundary.
    pub const NOIOB: usize = 46;
    /// NVM Capacity (bytes).
    pub const NVMCAP: usize = 48;
    /// Namespace Preferred Write Granularity.
    pub const NPWG: usize = 64;
    /// Namespace Preferred Write Alignment.
    pub const NPWA: usize = 66;
    /// Namespace Preferred Deallocate Granularity.
    pub const NPDG: usize = 68;
    /// Namespace Preferred Deallocate Alignment.
    pub const NPDA: usize = 70;
    /// Namespace Optimal Write Size.
    pub const NOWS: usize = 72;
    /// Maximum Single Source Range Length.
    pub const MSSRL: usize = 74;
    /// Maximum Copy Length.
    pub const MCL: usize = 76;
    /// Maximum Source Range Count.
    pub const MSRC: usize = 80;
    /// ANA Group Identifier.
    pub const ANAGRPID: usize = 92;
    /// Namespace Attributes (bit 0: write protected).
    pub const NSATTR: usize = 99;
    /// NVM Set Identifier.
    pub const NVMSETID: usize = 100;
    /// Endurance Group Identifier.
    pub const ENDGID: usize = 102;
    /// Namespace Globally Unique Identifier.
    pub const NGUID: usize = 104;
    /// IEEE Extended Unique Identifier.
    pub const EUI64: usize = 120;
    /// LBA Format 0 (64 formats of 4 bytes).
    pub const LBAF: usize = 128;
}

use ns_offsets as o;

/// Number of LBA format slots.
pub const LBAF_COUNT: usize = 64;

//= NVM Command Set 1.0 §4.1.5.1, Figure 98
//# 31:26 Reserved
//# Relative Performance (RP): This field indicates the relative performance of the LBA format
//# indicated relative to other LBA formats supported by the controller. ... 25:24 ...
//# LBA Data Size (LBADS): This field indicates the LBA data size supported. The value is reported
//# 23:16 in terms of a power of two (2^n). A value smaller than 9 (i.e., 512 bytes) is not
//# supported. If the value reported is 0h, then the LBA format is not supported / used or is not
//# currently available.
//# Metadata Size (MS): This field indicates the number of metadata bytes provided per LBA based
//# on the LBA Data Size indicated. ... 15:00 ...
/// One LBA format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LbaFormat {
    /// Metadata Size in bytes.
    pub ms: u16,
    /// LBA Data Size as a power of two (9 = 512 bytes, 12 = 4096 bytes); 0 = format unused.
    pub lbads: u8,
    /// Relative Performance (2 bits).
    pub rp: u8,
}

impl LbaFormat {
    /// Logical block size in bytes, if LBADS is within 9..=31.
    pub fn block_size(&self) -> Option<u32> {
        (9..32).contains(&self.lbads).then(|| 1u32 << self.lbads)
    }
}

/// Identify Namespace data structure (NVM command set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifyNamespace {
    /// Namespace Size in logical blocks.
    pub nsze: u64,
    /// Namespace Capacity in logical blocks.
    pub ncap: u64,
    /// Namespace Utilization in logical blocks.
    pub nuse: u64,
    /// Namespace Features (bit 0 thin provisioning, bit 4 NPWG..NOWS valid).
    pub nsfeat: u8,
    /// Number of LBA Formats, 0's based.
    pub nlbaf: u8,
    /// Formatted LBA Size: format index in bits 3:0 (and 6:5), metadata at end of LBA bit 4.
    pub flbas: u8,
    /// Metadata Capabilities.
    pub mc: u8,
    /// End-to-end Data Protection Capabilities.
    pub dpc: u8,
    /// End-to-end Data Protection Type Settings.
    pub dps: u8,
    /// Namespace Multi-path I/O and Namespace Sharing Capabilities.
    pub nmic: u8,
    /// Reservation Capabilities.
    pub rescap: u8,
    /// Format Progress Indicator.
    pub fpi: u8,
    /// Deallocate Logical Block Features (bits 2:0: value read after deallocate, 1 = zeroes).
    pub dlfeat: u8,
    /// Namespace Atomic Write Unit Normal.
    pub nawun: u16,
    /// Namespace Atomic Write Unit Power Fail.
    pub nawupf: u16,
    /// Namespace Atomic Compare & Write Unit.
    pub nacwu: u16,
    /// Namespace Atomic Boundary Size Normal.
    pub nabsn: u16,
    /// Namespace Atomic Boundary Offset.
    pub nabo: u16,
    /// Namespace Atomic Boundary Size Power Fail.
    pub nabspf: u16,
    /// Namespace Optimal I/O Boundary.
    pub noiob: u16,
    /// NVM Capacity in bytes.
    pub nvmcap: u128,
    /// Namespace Preferred Write Granularity (0's based blocks).
    pub npwg: u16,
    /// Namespace Preferred Write Alignment.
    pub npwa: u16,
    /// Namespace Preferred Deallocate Granularity.
    pub npdg: u16,
    /// Namespace Preferred Deallocate Alignment.
    pub npda: u16,
    /// Namespace Optimal Write Size.
    pub nows: u16,
    /// Maximum Single Source Range Length.
    pub mssrl: u16,
    /// Maximum Copy Length.
    pub mcl: u32,
    /// Maximum Source Range Count.
    pub msrc: u8,
    /// ANA Group Identifier.
    pub anagrpid: u32,
    /// Namespace Attributes (bit 0: write protected).
    pub nsattr: u8,
    /// NVM Set Identifier.
    pub nvmsetid: u16,
    /// Endurance Group Identifier.
    pub endgid: u16,
    /// Namespace Globally Unique Identifier.
    pub nguid: [u8; 16],
    /// IEEE Extended Unique Identifier.
    pub eui64: [u8; 8],
    /// LBA formats; slots after NLBAF are zero.
    pub lbaf: [LbaFormat; LBAF_COUNT],
}

impl Default for IdentifyNamespace {
    fn default() -> Self {
        Self {
            nsze: 0,
            ncap: 0,
            nuse: 0,
            nsfeat: 0,
            nlbaf: 0,
            flbas: 0,
            mc: 0,
            dpc: 0,
            dps: 0,
            nmic: 0,
            rescap: 0,
            fpi: 0,
            dlfeat: 0,
            nawun: 0,
            nawupf: 0,
            nacwu: 0,
            nabsn: 0,
            nabo: 0,
            nabspf: 0,
            noiob: 0,
            nvmcap: 0,
            npwg: 0,
            npwa: 0,
            npdg: 0,
            npda: 0,
            nows: 0,
            mssrl: 0,
            mcl: 0,
            msrc: 0,
            anagrpid: 0,
            nsattr: 0,
            nvmsetid: 0,
            endgid: 0,
            nguid: [0; 16],
            eui64: [0; 8],
            lbaf: [LbaFormat::default(); LBAF_COUNT],
        }
    }
}

impl IdentifyNamespace {
    /// Size on the wire.
    pub const SIZE: usize = IDENTIFY_LEN;

    /// Bytes `encode` appends.
    pub const fn encoded_len(&self) -> usize {
        Self::SIZE
    }

    /// The LBA format in use (FLBAS bits 3:0, with bits 6:5 as the high bits).
    pub fn current_format(&self) -> Option<&LbaFormat> {
        let index = usize::from(self.flbas & 0x0f) | (usize::from((self.flbas >> 5) & 0x3) << 4);
        self.lbaf.get(index)
    }

    /// Appends the 4096-byte structure to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        let mut w = Writer::append(dst, Self::SIZE);
        w.u64(o::NSZE, self.nsze);
        w.u64(o::NCAP, self.ncap);
        w.u64(o::NUSE, self.nuse);
        w.bytes(
            o::NSFEAT,
            &[
                self.nsfeat,
                self.nlbaf,
                self.flbas,
                self.mc,
                self.dpc,
                self.dps,
            ],
        );
        w.bytes(o::NMIC, &[self.nmic, self.rescap, self.fpi, self.dlfeat]);
        let u16s = [
            self.nawun,
            self.nawupf,
            self.nacwu,
            self.nabsn,
            self.nabo,
            self.nabspf,
            self.noiob,
        ];
        for (i, v) in u16s.iter().enumerate() {
            w.u16(o::NAWUN + 2 * i, *v);
        }
        w.u128(o::NVMCAP, self.nvmcap);
        let u16s = [
            self.npwg, self.npwa, self.npdg, self.npda, self.nows, self.mssrl,
        ];
        for (i, v) in u16s.iter().enumerate() {
            w.u16(o::NPWG + 2 * i, *v);
        }
        w.u32(o::MCL, self.mcl);
        w.u8(o::MSRC, self.msrc);
        w.u32(o::ANAGRPID, self.anagrpid);
        w.u8(o::NSATTR, self.nsattr);
        w.u16(o::NVMSETID, self.nvmsetid);
        w.u16(o::ENDGID, self.endgid);
        w.bytes(o::NGUID, &self.nguid);
        w.bytes(o::EUI64, &self.eui64);
        for (i, f) in self.lbaf.iter().enumerate() {
            let at = o::LBAF + 4 * i;
            w.u16(at, f.ms);
            w.u8(at + 2, f.lbads);
            w.u8(at + 3, f.rp & 0x3);
        }
    }

    /// Parses the structure from the first 4096 bytes of `src`.
    pub fn decode(src: &[u8]) -> Result<Self, StructDecodeError> {
        let r = Reader::new(src, "Identify Namespace", Self::SIZE)?;
        let mut lbaf = [LbaFormat::default(); LBAF_COUNT];
        for (i, f) in lbaf.iter_mut().enumerate() {
            let at = o::LBAF + 4 * i;
            *f = LbaFormat {
                ms: r.u16(at)?,
                lbads: r.u8(at + 2)?,
                rp: r.u8(at + 3)? & 0x3,
            };
        }
        Ok(Self {
            nsze: r.u64(o::NSZE)?,
            ncap: r.u64(o::NCAP)?,
            nuse: r.u64(o::NUSE)?,
            nsfeat: r.u8(o::NSFEAT)?,
            nlbaf: r.u8(o::NLBAF)?,
            flbas: r.u8(o::FLBAS)?,
            mc: r.u8(o::MC)?,
            dpc: r.u8(o::DPC)?,
            dps: r.u8(o::DPS)?,
            nmic: r.u8(o::NMIC)?,
            rescap: r.u8(o::RESCAP)?,
            fpi: r.u8(o::FPI)?,
            dlfeat: r.u8(o::DLFEAT)?,
            nawun: r.u16(o::NAWUN)?,
            nawupf: r.u16(o::NAWUPF)?,
            nacwu: r.u16(o::NACWU)?,
            nabsn: r.u16(o::NABSN)?,
            nabo: r.u16(o::NABO)?,
            nabspf: r.u16(o::NABSPF)?,
            noiob: r.u16(o::NOIOB)?,
            nvmcap: r.u128(o::NVMCAP)?,
            npwg: r.u16(o::NPWG)?,
            npwa: r.u16(o::NPWA)?,
            npdg: r.u16(o::NPDG)?,
            npda: r.u16(o::NPDA)?,
            nows: r.u16(o::NOWS)?,
            mssrl: r.u16(o::MSSRL)?,
            mcl: r.u32(o::MCL)?,
            msrc: r.u8(o::MSRC)?,
            anagrpid: r.u32(o::ANAGRPID)?,
            nsattr: r.u8(o::NSATTR)?,
            nvmsetid: r.u16(o::NVMSETID)?,
            endgid: r.u16(o::ENDGID)?,
            nguid: r.array(o::NGUID)?,
            eui64: r.array(o::EUI64)?,
            lbaf,
        })
    }
}
