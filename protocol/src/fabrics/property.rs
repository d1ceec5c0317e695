//! Property Get and Property Set: how a fabrics host reads and writes the controller
//! properties (the registers of PCIe NVMe).

use super::{FabricsCommandType, check_fctype, fabrics_sqe};
use crate::nvme::{SglDescriptor, Sqe};
use crate::wire::{StructDecodeError, hi32, lo32, open_enum};

open_enum! {
    //~ NVMe Base 2.0, Controller Properties figure: offset and size of each property.
    /// A controller property, by its offset.
    pub struct Property(u32) {
        /// Controller Capabilities (8 bytes).
        CAP = 0x00,
        /// Version (4 bytes).
        VS = 0x08,
        /// Interrupt Mask Set (PCIe only).
        INTMS = 0x0C,
        /// Interrupt Mask Clear (PCIe only).
        INTMC = 0x10,
        /// Controller Configuration (4 bytes).
        CC = 0x14,
        /// Controller Status (4 bytes).
        CSTS = 0x1C,
        /// NVM Subsystem Reset (4 bytes, optional).
        NSSR = 0x20,
        /// Admin Queue Attributes (PCIe only).
        AQA = 0x24,
        /// Admin Submission Queue Base Address (PCIe only).
        ASQ = 0x28,
        /// Admin Completion Queue Base Address (PCIe only).
        ACQ = 0x30,
        /// Controller Ready Timeouts (4 bytes; mandatory from NVMe 2.0 with CAP.CRMS.CRWMS).
        CRTO = 0x68,
    }
}

impl Property {
    /// Size in bytes of the property, `None` for offsets that are not fabrics properties.
    pub const fn size(self) -> Option<PropertySize> {
        match self {
            Self::CAP | Self::ASQ | Self::ACQ => Some(PropertySize::Eight),
            Self::VS
            | Self::INTMS
            | Self::INTMC
            | Self::CC
            | Self::CSTS
            | Self::NSSR
            | Self::AQA
            | Self::CRTO => Some(PropertySize::Four),
            _ => None,
        }
    }
}

//~ NVMe-oF 1.1, Property Get/Set: ATTRIB (byte 40) bits 2:0 SIZE: 0 = 4 bytes,
//~ 1 = 8 bytes; OFST (44..48); VALUE (48..56, Set only).
/// Property access size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PropertySize {
    /// 4 bytes (ATTRIB.SIZE 0).
    #[default]
    Four,
    /// 8 bytes (ATTRIB.SIZE 1).
    Eight,
    /// A reserved SIZE value (kept so that it can be rejected with its value).
    Reserved(u8),
}

impl PropertySize {
    fn from_attrib(attrib: u8) -> Self {
        match attrib & 0x7 {
            0 => Self::Four,
            1 => Self::Eight,
            other => Self::Reserved(other),
        }
    }

    fn to_attrib(self) -> u8 {
        match self {
            Self::Four => 0,
            Self::Eight => 1,
            Self::Reserved(v) => v & 0x7,
        }
    }

    /// Bytes, if the value is valid.
    pub const fn bytes(self) -> Option<u32> {
        match self {
            Self::Four => Some(4),
            Self::Eight => Some(8),
            Self::Reserved(_) => None,
        }
    }
}

/// Property Get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PropertyGet {
    /// Command Identifier.
    pub cid: u16,
    /// Access size.
    pub size: PropertySize,
    /// Property offset.
    pub offset: Property,
}

impl PropertyGet {
    /// The SQE.
    pub fn to_sqe(&self) -> Sqe {
        let mut sqe = fabrics_sqe(
            FabricsCommandType::PROPERTY_GET,
            self.cid,
            SglDescriptor::default(),
        );
        sqe.cdw[0] = u32::from(self.size.to_attrib());
        sqe.cdw[1] = self.offset.0;
        sqe
    }
}

impl TryFrom<&Sqe> for PropertyGet {
    type Error = StructDecodeError;

    fn try_from(sqe: &Sqe) -> Result<Self, Self::Error> {
        check_fctype(sqe, FabricsCommandType::PROPERTY_GET, "Property Get")?;
        Ok(Self {
            cid: sqe.cid,
            size: PropertySize::from_attrib(sqe.cdw(10).to_le_bytes()[0]),
            offset: Property(sqe.cdw(11)),
        })
    }
}

/// Property Set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PropertySet {
    /// Command Identifier.
    pub cid: u16,
    /// Access size.
    pub size: PropertySize,
    /// Property offset.
    pub offset: Property,
    /// Value (the low 4 bytes for a 4-byte property).
    pub value: u64,
}

impl PropertySet {
    /// The SQE.
    pub fn to_sqe(&self) -> Sqe {
        let mut sqe = fabrics_sqe(
            FabricsCommandType::PROPERTY_SET,
            self.cid,
            SglDescriptor::default(),
        );
        sqe.cdw[0] = u32::from(self.size.to_attrib());
        sqe.cdw[1] = self.offset.0;
        sqe.cdw[2] = lo32(self.value);
        sqe.cdw[3] = hi32(self.value);
        sqe
    }
}

impl TryFrom<&Sqe> for PropertySet {
    type Error = StructDecodeError;

    fn try_from(sqe: &Sqe) -> Result<Self, Self::Error> {
        check_fctype(sqe, FabricsCommandType::PROPERTY_SET, "Property Set")?;
        Ok(Self {
            cid: sqe.cid,
            size: PropertySize::from_attrib(sqe.cdw(10).to_le_bytes()[0]),
            offset: Property(sqe.cdw(11)),
            value: u64::from(sqe.cdw(12)) | (u64::from(sqe.cdw(13)) << 32),
        })
    }
}
