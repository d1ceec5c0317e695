//! Typed views of the NVM command set I/O commands Lamina serves: Read, Write and Compare (one
//! layout), Write Zeroes, Flush and Dataset Management with its range list.

use bytes::BytesMut;

use super::opcode::IoOpcode;
use super::sgl::SglDescriptor;
use super::sqe::{Psdt, Sqe};
use crate::wire::{Reader, StructDecodeError, Writer, bits32, hi16, hi32, lo8, lo16, lo32};

fn check_opcode(
    sqe: &Sqe,
    allowed: &[IoOpcode],
    structure: &'static str,
) -> Result<IoOpcode, StructDecodeError> {
    let op = IoOpcode(sqe.opcode);
    if allowed.contains(&op) {
        Ok(op)
    } else {
        Err(StructDecodeError::WrongOpcode {
            structure,
            opcode: sqe.opcode,
        })
    }
}

fn base_sqe(opcode: IoOpcode, cid: u16, nsid: u32, dptr: SglDescriptor) -> Sqe {
    Sqe {
        opcode: opcode.0,
        flags: Sqe::flags_for(Psdt::SGL_MPTR_CONTIGUOUS),
        cid,
        nsid,
        dptr,
        ..Sqe::default()
    }
}

//= NVM Command Set 1.0 §3.2.4, Figure 47
//# Starting LBA (SLBA): This field indicates the 64-bit address of the first logical block to be
//# read 63:00 as part of the operation. Command Dword 10 contains bits 31:00; Command Dword 11
//# contains bits 63: 32.
//= NVM Command Set 1.0 §3.2.4, Figure 48
//# Limited Retry (LR): ... 31 the controller should apply all available error recovery means to
//# return the data to the host. ...
//# Force Unit Access (FUA): ... 30 1) commit that data and metadata, if any, to non-volatile
//# media; and 2) return the data, and metadata, if any, that are read from non-volatile media.
//# ...
//# Protection Information Field (PRINFO): Specifies the protection information action and check
//# 29:26 field, as defined in Figure 9.
//# 25 Reserved
//# Storage Tag Check (STC): This bit specifies the Storage Tag field shall be checked as part of
//# 24 end-to-end data protection processing as defined in Figure 10.
//# 23:16 Reserved
//# Number of Logical Blocks (NLB): This field indicates the number of logical blocks to be read.
//# 15:00 ...
//= NVM Command Set 1.0 §3.2.6, Figure 63
//# ... Directive Type (DTYPE): Specifies the Directive Type associated with the Directive
//# Specific field 23:20 (refer to the Directives section in the NVMe Base Specification). 19:16
//# Reserved ...
//= NVM Command Set 1.0 §3.2.6, Figure 64
//# Directive Specific (DSPEC): Specifies the Directive Specific value associated with the
//# Directive 31:16 Type field (refer to the Directives section in the NVMe Base Specification).
//# 15:08 Reserved ...
//# Dataset Management (DSM): This field indicates attributes for the LBA(s) being written. ...
//# 07:00 ...
//= NVM Command Set 1.0 §3.2.6, Figure 65
//# This field and bits 47:00 of Command Dword 2 and Dword 3 specify the variable sized Logical
//# Block Storage Tag (LBST) and Initial Logical Block Reference Tag (ILBRT) fields, which are
//# 31:00 defined in section 5.2.1.4.1. ...
//= NVM Command Set 1.0 §3.2.6, Figure 66
//# Logical Block Application Tag Mask (LBATM): This field specifies the Application Tag Mask
//# 31:16 value. ...
//# Logical Block Application Tag (LBAT): This field specifies the Application Tag value. If the
//# 15:00 namespace is not formatted to use end-to-end protection information, then this field is
//# ignored. ...
// One struct serves Read, Write and Compare: Read and Compare reserve CDW12 bits 23:16
// (DTYPE) and CDW13 bits 31:16 (DSPEC); Compare does not use CDW13 at all (DSM reserved).
/// Read, Write or Compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadWrite {
    /// READ, WRITE or COMPARE.
    pub opcode: IoOpcode,
    /// Command Identifier.
    pub cid: u16,
    /// Namespace Identifier.
    pub nsid: u32,
    /// Starting LBA.
    pub slba: u64,
    /// Number of Logical Blocks, 0's based as on the wire: `nlb + 1` blocks.
    pub nlb: u16,
    /// Directive Type.
    pub dtype: u8,
    /// Storage Tag Check (write).
    pub stc: bool,
    /// Protection Information field (4 bits).
    pub prinfo: u8,
    /// Force Unit Access.
    pub fua: bool,
    /// Limited Retry.
    pub limited_retry: bool,
    /// Dataset Management hints (CDW13 7:0).
    pub dsm: u8,
    /// Directive Specific (CDW13 31:16).
    pub dspec: u16,
    /// Initial Logical Block Reference Tag (CDW14).
    pub ilbrt: u32,
    /// Logical Block Application Tag (CDW15 15:0).
    pub lbat: u16,
    /// Logical Block Application Tag Mask (CDW15 31:16).
    pub lbatm: u16,
    /// Data pointer.
    pub dptr: SglDescriptor,
}

impl ReadWrite {
    /// Number of logical blocks (NLB + 1).
    pub fn block_count(&self) -> u32 {
        u32::from(self.nlb) + 1
    }

    /// The SQE.
    pub fn to_sqe(&self) -> Sqe {
        let mut sqe = base_sqe(self.opcode, self.cid, self.nsid, self.dptr);
        sqe.cdw[0] = lo32(self.slba);
        sqe.cdw[1] = hi32(self.slba);
        sqe.cdw[2] = u32::from(self.nlb)
            | (u32::from(self.dtype & 0xf) << 20)
            | (u32::from(self.stc) << 24)
            | (u32::from(self.prinfo & 0xf) << 26)
            | (u32::from(self.fua) << 30)
            | (u32::from(self.limited_retry) << 31);
        sqe.cdw[3] = u32::from(self.dsm) | (u32::from(self.dspec) << 16);
        sqe.cdw[4] = self.ilbrt;
        sqe.cdw[5] = u32::from(self.lbat) | (u32::from(self.lbatm) << 16);
        sqe
    }
}

impl TryFrom<&Sqe> for ReadWrite {
    type Error = StructDecodeError;

    fn try_from(sqe: &Sqe) -> Result<Self, Self::Error> {
        let opcode = check_opcode(
            sqe,
            &[IoOpcode::READ, IoOpcode::WRITE, IoOpcode::COMPARE],
            "Read/Write",
        )?;
        let cdw12 = sqe.cdw(12);
        Ok(Self {
            opcode,
            cid: sqe.cid,
            nsid: sqe.nsid,
            slba: u64::from(sqe.cdw(10)) | (u64::from(sqe.cdw(11)) << 32),
            nlb: lo16(cdw12),
            dtype: lo8(bits32(cdw12, 20, 4)),
            stc: bits32(cdw12, 24, 1) != 0,
            prinfo: lo8(bits32(cdw12, 26, 4)),
            fua: bits32(cdw12, 30, 1) != 0,
            limited_retry: bits32(cdw12, 31, 1) != 0,
            dsm: lo8(sqe.cdw(13)),
            dspec: hi16(sqe.cdw(13)),
            ilbrt: sqe.cdw(14),
            lbat: lo16(sqe.cdw(15)),
            lbatm: hi16(sqe.cdw(15)),
            dptr: sqe.dptr,
        })
    }
}

//= NVM Command Set 1.0 §3.2.8, Figure 73
//# Limited Retry (LR): ... 31 the controller should apply all available error recovery means to
//# write the data to the NVM.
//# Force Unit Access (FUA): ... then the controller shall write the data, and metadata, if 30
//# any, to non-volatile media before indicating command completion. ...
//# Protection Information Field (PRINFO): Specifies the protection information action and check
//# 29:26 field, as defined in Figure 9. The Protection Information Check (PRCHK) field shall be
//# cleared to 000b.
//# Deallocate (DEAC): ... then the host is requesting that the controller deallocate the 25
//# specified logical blocks. ...
//# ... 23:16 Reserved
//# Number of Logical Blocks (NLB): This field indicates the number of logical blocks to be
//# written. 15:00 ...
/// Write Zeroes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteZeroes {
    /// Command Identifier.
    pub cid: u16,
    /// Namespace Identifier.
    pub nsid: u32,
    /// Starting LBA.
    pub slba: u64,
    /// Number of Logical Blocks, 0's based.
    pub nlb: u16,
    /// Deallocate: the host allows the range to be deallocated.
    pub deac: bool,
    /// Protection Information field.
    pub prinfo: u8,
    /// Force Unit Access.
    pub fua: bool,
    /// Limited Retry.
    pub limited_retry: bool,
}

impl WriteZeroes {
    /// Number of logical blocks (NLB + 1).
    pub fn block_count(&self) -> u32 {
        u32::from(self.nlb) + 1
    }

    /// The SQE.
    pub fn to_sqe(&self) -> Sqe {
        let mut sqe = base_sqe(
            IoOpcode::WRITE_ZEROES,
            self.cid,
            self.nsid,
            SglDescriptor::default(),
        );
        sqe.cdw[0] = lo32(self.slba);
        sqe.cdw[1] = hi32(self.slba);
        sqe.cdw[2] = u32::from(self.nlb)
            | (u32::from(self.deac) << 25)
            | (u32::from(self.prinfo & 0xf) << 26)
            | (u32::from(self.fua) << 30)
            | (u32::from(self.limited_retry) << 31);
        sqe
    }
}

impl TryFrom<&Sqe> for WriteZeroes {
    type Error = StructDecodeError;

    fn try_from(sqe: &Sqe) -> Result<Self, Self::Error> {
        check_opcode(sqe, &[IoOpcode::WRITE_ZEROES], "Write Zeroes")?;
        let cdw12 = sqe.cdw(12);
        Ok(Self {
            cid: sqe.cid,
            nsid: sqe.nsid,
            slba: u64::from(sqe.cdw(10)) | (u64::from(sqe.cdw(11)) << 32),
            nlb: lo16(cdw12),
            deac: bits32(cdw12, 25, 1) != 0,
            prinfo: lo8(bits32(cdw12, 26, 4)),
            fua: bits32(cdw12, 30, 1) != 0,
            limited_retry: bits32(cdw12, 31, 1) != 0,
        })
    }
}

/// Flush: commit volatile data of the namespace (NSID FFFFFFFFh: all namespaces).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flush {
    /// Command Identifier.
    pub cid: u16,
    /// Namespace Identifier.
    pub nsid: u32,
}

impl Flush {
    /// The SQE.
    pub fn to_sqe(&self) -> Sqe {
        base_sqe(
            IoOpcode::FLUSH,
            self.cid,
            self.nsid,
            SglDescriptor::default(),
        )
    }
}

impl TryFrom<&Sqe> for Flush {
    type Error = StructDecodeError;

    fn try_from(sqe: &Sqe) -> Result<Self, Self::Error> {
        check_opcode(sqe, &[IoOpcode::FLUSH], "Flush")?;
        Ok(Self {
            cid: sqe.cid,
            nsid: sqe.nsid,
        })
    }
}

//= NVM Command Set 1.0 §3.2.3, Figure 39
//# 31:08 Reserved
//# Number of Ranges (NR): Indicates the number of 16 byte range sets that are specified in the
//# 07:00 command. ...
//= NVM Command Set 1.0 §3.2.3, Figure 40
//# 31:03 Reserved
//# ... Deallocate (AD): ... then the NVM subsystem may deallocate all provided ranges. The data
//# returned for logical blocks that were deallocated is specified in section 3.2.3.2.1. 02 ...
//# ... Integral Dataset for Write (IDW): ... then the dataset should be optimized for write
//# access as an integral unit. ... 01 ...
//# ... Integral Dataset for Read (IDR): ... then the dataset should be optimized for read access
//# as an integral unit. ... 00 ...
/// Dataset Management.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DatasetManagement {
    /// Command Identifier.
    pub cid: u16,
    /// Namespace Identifier.
    pub nsid: u32,
    /// Number of Ranges, 0's based.
    pub nr: u8,
    /// Integral Dataset for Read.
    pub idr: bool,
    /// Integral Dataset for Write.
    pub idw: bool,
    /// Deallocate.
    pub deallocate: bool,
    /// Data pointer to the range list.
    pub dptr: SglDescriptor,
}

impl DatasetManagement {
    /// Number of ranges (NR + 1).
    pub fn range_count(&self) -> usize {
        usize::from(self.nr) + 1
    }

    /// Bytes of range list the command transfers.
    pub fn data_len(&self) -> usize {
        self.range_count() * DSM_RANGE_LEN
    }

    /// The SQE.
    pub fn to_sqe(&self) -> Sqe {
        let mut sqe = base_sqe(IoOpcode::DATASET_MANAGEMENT, self.cid, self.nsid, self.dptr);
        sqe.cdw[0] = u32::from(self.nr);
        sqe.cdw[1] =
            u32::from(self.idr) | (u32::from(self.idw) << 1) | (u32::from(self.deallocate) << 2);
        sqe
    }
}

impl TryFrom<&Sqe> for DatasetManagement {
    type Error = StructDecodeError;

    fn try_from(sqe: &Sqe) -> Result<Self, Self::Error> {
        check_opcode(sqe, &[IoOpcode::DATASET_MANAGEMENT], "Dataset Management")?;
        let cdw11 = sqe.cdw(11);
        Ok(Self {
            cid: sqe.cid,
            nsid: sqe.nsid,
            nr: lo8(sqe.cdw(10)),
            idr: cdw11 & 1 != 0,
            idw: cdw11 & 2 != 0,
            deallocate: cdw11 & 4 != 0,
            dptr: sqe.dptr,
        })
    }
}

//= NVM Command Set 1.0 §3.2.3, Figure 41
//# The data that the Dataset Management command provides is a list of ranges with context
//# attributes. Each range consists of a starting LBA, a length of logical blocks that the range
//# consists of and the context attributes to be applied to that range. The length in logical
//# blocks field is a 1-based value. ...
//# Range Bytes Field
//# 03:00 Context Attributes
//# Range 0 07:04 Length in logical blocks
//# 15:08 Starting LBA
/// Size of one Dataset Management range.
pub const DSM_RANGE_LEN: usize = 16;

/// One Dataset Management range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DsmRange {
    /// Context Attributes.
    pub context_attributes: u32,
    /// Length in logical blocks (not 0's based).
    pub nlb: u32,
    /// Starting LBA.
    pub slba: u64,
}

impl DsmRange {
    /// Appends the 16-byte range to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        let mut w = Writer::append(dst, DSM_RANGE_LEN);
        w.u32(0, self.context_attributes);
        w.u32(4, self.nlb);
        w.u64(8, self.slba);
    }

    /// Parses one range from the first 16 bytes of `src`.
    pub fn decode(src: &[u8]) -> Result<Self, StructDecodeError> {
        let r = Reader::new(src, "DSM range", DSM_RANGE_LEN)?;
        Ok(Self {
            context_attributes: r.u32(0)?,
            nlb: r.u32(4)?,
            slba: r.u64(8)?,
        })
    }

    /// Parses `count` ranges from `src`.
    pub fn decode_list(src: &[u8], count: usize) -> Result<Vec<Self>, StructDecodeError> {
        let needed = count.saturating_mul(DSM_RANGE_LEN);
        if src.len() < needed {
            return Err(StructDecodeError::Short {
                structure: "DSM range list",
                needed,
                actual: src.len(),
            });
        }
        src.chunks_exact(DSM_RANGE_LEN)
            .take(count)
            .map(Self::decode)
            .collect()
    }
}
