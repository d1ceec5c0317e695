//! I/O Command Set specific Identify Controller for the NVM command set (CNS 06h, CSI 00h):
//! the limits the Linux host reads for Verify, Write Zeroes, Write Uncorrectable and DSM.

use bytes::BytesMut;

use super::IDENTIFY_LEN;
use crate::wire::{Reader, StructDecodeError, Writer};

//= NVM Command Set 1.0 §4.1.5.4, Figure 102
//# Verify Size Limit (VSL): If bit 7 in the Optional NVM Command Support (ONCS) field is set ...
//# 00 O ...
//# The non-zero value is in units of the minimum memory page size (CAP.MPSMIN) and is reported as
//# a power of two (2^n). ...
//# Write Zeroes Size Limit (WZSL): ... 01 O ...
//# Write Uncorrectable Size Limit (WUSL): ... 02 O ...
//# Dataset Management Ranges Limit (DMRL): ... 03 O logical block ranges for a Dataset Management
//# command is reported. ...
//# Dataset Management Range Size Limit (DMRSL): ... 07:04 O logical blocks in a single range for
//# a Dataset Management command is reported. ...
//# Dataset Management Size Limit (DMSL): ... 15:08 O ...
//# 4095:16 M Reserved
/// Byte offset of VSL.
pub const VSL_OFFSET: usize = 0;
/// Byte offset of WZSL.
pub const WZSL_OFFSET: usize = 1;
/// Byte offset of WUSL.
pub const WUSL_OFFSET: usize = 2;
/// Byte offset of DMRL.
pub const DMRL_OFFSET: usize = 3;
/// Byte offset of DMRSL.
pub const DMRSL_OFFSET: usize = 4;
/// Byte offset of DMSL.
pub const DMSL_OFFSET: usize = 8;

/// NVM command set specific Identify Controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IdentifyControllerNvm {
    /// Verify Size Limit (power of two of the minimum page size; 0 = no limit).
    pub vsl: u8,
    /// Write Zeroes Size Limit (same units; Linux caps Write Zeroes with it).
    pub wzsl: u8,
    /// Write Uncorrectable Size Limit.
    pub wusl: u8,
    /// Dataset Management Ranges Limit (0 = no limit beyond 256).
    pub dmrl: u8,
    /// Dataset Management Range Size Limit (logical blocks).
    pub dmrsl: u32,
    /// Dataset Management Size Limit (logical blocks).
    pub dmsl: u64,
}

impl IdentifyControllerNvm {
    /// Size on the wire.
    pub const SIZE: usize = IDENTIFY_LEN;

    /// Bytes `encode` appends.
    pub const fn encoded_len(&self) -> usize {
        Self::SIZE
    }

    /// Appends the 4096-byte structure to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        let mut w = Writer::append(dst, Self::SIZE);
        w.bytes(VSL_OFFSET, &[self.vsl, self.wzsl, self.wusl, self.dmrl]);
        w.u32(DMRSL_OFFSET, self.dmrsl);
        w.u64(DMSL_OFFSET, self.dmsl);
    }

    /// Parses the structure from the first 4096 bytes of `src`.
    pub fn decode(src: &[u8]) -> Result<Self, StructDecodeError> {
        let r = Reader::new(src, "Identify Controller NVM", Self::SIZE)?;
        Ok(Self {
            vsl: r.u8(VSL_OFFSET)?,
            wzsl: r.u8(WZSL_OFFSET)?,
            wusl: r.u8(WUSL_OFFSET)?,
            dmrl: r.u8(DMRL_OFFSET)?,
            dmrsl: r.u32(DMRSL_OFFSET)?,
            dmsl: r.u64(DMSL_OFFSET)?,
        })
    }
}
