//! Typed views of the admin commands a fabrics controller serves: Identify, Get Log Page,
//! Get/Set Features, Abort, Asynchronous Event Request and Keep Alive.

use super::features::FeatureId;
use super::identify::Cns;
use super::log_page::LogPageId;
use super::opcode::AdminOpcode;
use super::sgl::SglDescriptor;
use super::sqe::{Psdt, Sqe};
use crate::wire::{StructDecodeError, bits32, hi16, hi32, lo8, lo16, lo32};

fn check(sqe: &Sqe, opcode: AdminOpcode, structure: &'static str) -> Result<(), StructDecodeError> {
    if sqe.opcode == opcode.0 {
        Ok(())
    } else {
        Err(StructDecodeError::WrongOpcode {
            structure,
            opcode: sqe.opcode,
        })
    }
}

fn base_sqe(opcode: AdminOpcode, cid: u16, nsid: u32, dptr: SglDescriptor) -> Sqe {
    Sqe {
        opcode: opcode.0,
        flags: Sqe::flags_for(Psdt::SGL_MPTR_CONTIGUOUS),
        cid,
        nsid,
        dptr,
        ..Sqe::default()
    }
}

//~ NVMe Base 2.0 (Identify): CDW10 CNS 7:0, CNTID 31:16; CDW11 CNSSID 15:0, CSI
//~ 31:24; CDW14 UUID Index 6:0. The data is always 4096 bytes.
/// Identify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Identify {
    /// Command Identifier.
    pub cid: u16,
    /// Namespace Identifier.
    pub nsid: u32,
    /// Controller or Namespace Structure.
    pub cns: Cns,
    /// Controller Identifier.
    pub cntid: u16,
    /// CNS Specific Identifier.
    pub cnssid: u16,
    /// Command Set Identifier.
    pub csi: u8,
    /// UUID Index.
    pub uuid_index: u8,
    /// Data pointer.
    pub dptr: SglDescriptor,
}

impl Identify {
    /// The SQE.
    pub fn to_sqe(&self) -> Sqe {
        let mut sqe = base_sqe(AdminOpcode::IDENTIFY, self.cid, self.nsid, self.dptr);
        sqe.cdw[0] = u32::from(self.cns.0) | (u32::from(self.cntid) << 16);
        sqe.cdw[1] = u32::from(self.cnssid) | (u32::from(self.csi) << 24);
        sqe.cdw[4] = u32::from(self.uuid_index & 0x7f);
        sqe
    }
}

impl TryFrom<&Sqe> for Identify {
    type Error = StructDecodeError;

    fn try_from(sqe: &Sqe) -> Result<Self, Self::Error> {
        check(sqe, AdminOpcode::IDENTIFY, "Identify")?;
        Ok(Self {
            cid: sqe.cid,
            nsid: sqe.nsid,
            cns: Cns(lo8(sqe.cdw(10))),
            cntid: hi16(sqe.cdw(10)),
            cnssid: lo16(sqe.cdw(11)),
            csi: lo8(sqe.cdw(11) >> 24),
            uuid_index: lo8(bits32(sqe.cdw(14), 0, 7)),
            dptr: sqe.dptr,
        })
    }
}

//~ NVMe Base 2.0 (Get Log Page): CDW10 LID 7:0, LSP 14:8, RAE 15, NUMDL 31:16; CDW11
//~ NUMDU 15:0, LSI 31:16; CDW12-13 LPO (byte offset); CDW14 UUID Index 6:0, OT 23, CSI 31:24.
/// Get Log Page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GetLogPage {
    /// Command Identifier.
    pub cid: u16,
    /// Namespace Identifier.
    pub nsid: u32,
    /// Log Page Identifier.
    pub lid: LogPageId,
    /// Log Specific Field (7 bits).
    pub lsp: u8,
    /// Retain Asynchronous Event.
    pub rae: bool,
    /// Number of Dwords, 0's based (NUMDU:NUMDL).
    pub numd: u32,
    /// Log Specific Identifier.
    pub lsi: u16,
    /// Log Page Offset in bytes (or index when `ot`).
    pub lpo: u64,
    /// UUID Index.
    pub uuid_index: u8,
    /// Offset Type: `lpo` is an index of entries, not bytes.
    pub ot: bool,
    /// Command Set Identifier.
    pub csi: u8,
    /// Data pointer.
    pub dptr: SglDescriptor,
}

impl GetLogPage {
    /// Bytes requested: (NUMD + 1) * 4.
    pub fn len_bytes(&self) -> u64 {
        (u64::from(self.numd) + 1) * 4
    }

    /// The SQE.
    pub fn to_sqe(&self) -> Sqe {
        let mut sqe = base_sqe(AdminOpcode::GET_LOG_PAGE, self.cid, self.nsid, self.dptr);
        sqe.cdw[0] = u32::from(self.lid.0)
            | (u32::from(self.lsp & 0x7f) << 8)
            | (u32::from(self.rae) << 15)
            | (u32::from(lo16(self.numd)) << 16);
        sqe.cdw[1] = u32::from(hi16(self.numd)) | (u32::from(self.lsi) << 16);
        sqe.cdw[2] = lo32(self.lpo);
        sqe.cdw[3] = hi32(self.lpo);
        sqe.cdw[4] = u32::from(self.uuid_index & 0x7f)
            | (u32::from(self.ot) << 23)
            | (u32::from(self.csi) << 24);
        sqe
    }
}

impl TryFrom<&Sqe> for GetLogPage {
    type Error = StructDecodeError;

    fn try_from(sqe: &Sqe) -> Result<Self, Self::Error> {
        check(sqe, AdminOpcode::GET_LOG_PAGE, "Get Log Page")?;
        let (cdw10, cdw11, cdw14) = (sqe.cdw(10), sqe.cdw(11), sqe.cdw(14));
        Ok(Self {
            cid: sqe.cid,
            nsid: sqe.nsid,
            lid: LogPageId(lo8(cdw10)),
            lsp: lo8(bits32(cdw10, 8, 7)),
            rae: bits32(cdw10, 15, 1) != 0,
            numd: u32::from(hi16(cdw10)) | (u32::from(lo16(cdw11)) << 16),
            lsi: hi16(cdw11),
            lpo: u64::from(sqe.cdw(12)) | (u64::from(sqe.cdw(13)) << 32),
            uuid_index: lo8(bits32(cdw14, 0, 7)),
            ot: bits32(cdw14, 23, 1) != 0,
            csi: lo8(cdw14 >> 24),
            dptr: sqe.dptr,
        })
    }
}

//~ NVMe Base 2.0 (Set Features): CDW10 FID 7:0, SV 31; CDW11..CDW15 feature specific;
//~ CDW14 UUID Index 6:0.
/// Set Features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetFeatures {
    /// Command Identifier.
    pub cid: u16,
    /// Namespace Identifier.
    pub nsid: u32,
    /// Feature Identifier.
    pub fid: FeatureId,
    /// Save: make the value persistent.
    pub save: bool,
    /// Feature-specific CDW11 (the value for most features).
    pub cdw11: u32,
    /// Feature-specific CDW12.
    pub cdw12: u32,
    /// Feature-specific CDW13.
    pub cdw13: u32,
    /// CDW14 (UUID Index in bits 6:0).
    pub cdw14: u32,
    /// Feature-specific CDW15.
    pub cdw15: u32,
    /// Data pointer (Timestamp, Host Identifier).
    pub dptr: SglDescriptor,
}

impl SetFeatures {
    /// The SQE.
    pub fn to_sqe(&self) -> Sqe {
        let mut sqe = base_sqe(AdminOpcode::SET_FEATURES, self.cid, self.nsid, self.dptr);
        sqe.cdw = [
            u32::from(self.fid.0) | (u32::from(self.save) << 31),
            self.cdw11,
            self.cdw12,
            self.cdw13,
            self.cdw14,
            self.cdw15,
        ];
        sqe
    }
}

impl TryFrom<&Sqe> for SetFeatures {
    type Error = StructDecodeError;

    fn try_from(sqe: &Sqe) -> Result<Self, Self::Error> {
        check(sqe, AdminOpcode::SET_FEATURES, "Set Features")?;
        Ok(Self {
            cid: sqe.cid,
            nsid: sqe.nsid,
            fid: FeatureId(lo8(sqe.cdw(10))),
            save: bits32(sqe.cdw(10), 31, 1) != 0,
            cdw11: sqe.cdw(11),
            cdw12: sqe.cdw(12),
            cdw13: sqe.cdw(13),
            cdw14: sqe.cdw(14),
            cdw15: sqe.cdw(15),
            dptr: sqe.dptr,
        })
    }
}

//~ NVMe Base 2.0 (Get Features): CDW10 FID 7:0, SEL 10:8 (0 current, 1 default,
//~ 2 saved, 3 supported capabilities); CDW11 feature specific; CDW14 UUID Index.
/// Get Features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GetFeatures {
    /// Command Identifier.
    pub cid: u16,
    /// Namespace Identifier.
    pub nsid: u32,
    /// Feature Identifier.
    pub fid: FeatureId,
    /// Select (3 bits).
    pub sel: u8,
    /// Feature-specific CDW11.
    pub cdw11: u32,
    /// UUID Index.
    pub uuid_index: u8,
    /// Data pointer.
    pub dptr: SglDescriptor,
}

impl GetFeatures {
    /// The SQE.
    pub fn to_sqe(&self) -> Sqe {
        let mut sqe = base_sqe(AdminOpcode::GET_FEATURES, self.cid, self.nsid, self.dptr);
        sqe.cdw[0] = u32::from(self.fid.0) | (u32::from(self.sel & 0x7) << 8);
        sqe.cdw[1] = self.cdw11;
        sqe.cdw[4] = u32::from(self.uuid_index & 0x7f);
        sqe
    }
}

impl TryFrom<&Sqe> for GetFeatures {
    type Error = StructDecodeError;

    fn try_from(sqe: &Sqe) -> Result<Self, Self::Error> {
        check(sqe, AdminOpcode::GET_FEATURES, "Get Features")?;
        Ok(Self {
            cid: sqe.cid,
            nsid: sqe.nsid,
            fid: FeatureId(lo8(sqe.cdw(10))),
            sel: lo8(bits32(sqe.cdw(10), 8, 3)),
            cdw11: sqe.cdw(11),
            uuid_index: lo8(bits32(sqe.cdw(14), 0, 7)),
            dptr: sqe.dptr,
        })
    }
}

//~ NVMe Base 2.0 (Abort): CDW10 SQID 15:0, CID 31:16.
/// Abort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Abort {
    /// Command Identifier of the Abort itself.
    pub cid: u16,
    /// Submission Queue of the command to abort.
    pub sqid: u16,
    /// Command Identifier of the command to abort.
    pub abort_cid: u16,
}

impl Abort {
    /// The SQE.
    pub fn to_sqe(&self) -> Sqe {
        let mut sqe = base_sqe(AdminOpcode::ABORT, self.cid, 0, SglDescriptor::default());
        sqe.cdw[0] = u32::from(self.sqid) | (u32::from(self.abort_cid) << 16);
        sqe
    }
}

impl TryFrom<&Sqe> for Abort {
    type Error = StructDecodeError;

    fn try_from(sqe: &Sqe) -> Result<Self, Self::Error> {
        check(sqe, AdminOpcode::ABORT, "Abort")?;
        Ok(Self {
            cid: sqe.cid,
            sqid: lo16(sqe.cdw(10)),
            abort_cid: hi16(sqe.cdw(10)),
        })
    }
}

/// An admin command with no parameters beyond its CID: Asynchronous Event Request or Keep
/// Alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SimpleAdmin {
    /// ASYNC_EVENT_REQUEST or KEEP_ALIVE.
    pub opcode: AdminOpcode,
    /// Command Identifier.
    pub cid: u16,
}

impl SimpleAdmin {
    /// The SQE.
    pub fn to_sqe(&self) -> Sqe {
        base_sqe(self.opcode, self.cid, 0, SglDescriptor::default())
    }
}

impl TryFrom<&Sqe> for SimpleAdmin {
    type Error = StructDecodeError;

    fn try_from(sqe: &Sqe) -> Result<Self, Self::Error> {
        let opcode = AdminOpcode(sqe.opcode);
        if opcode != AdminOpcode::ASYNC_EVENT_REQUEST && opcode != AdminOpcode::KEEP_ALIVE {
            return Err(StructDecodeError::WrongOpcode {
                structure: "AER/Keep Alive",
                opcode: sqe.opcode,
            });
        }
        Ok(Self {
            opcode,
            cid: sqe.cid,
        })
    }
}
