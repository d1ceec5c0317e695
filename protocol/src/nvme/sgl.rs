//! SGL descriptors as NVMe/TCP uses them in the SQE's DPTR: Data Block with the Offset subtype
//! for in-capsule data, and Transport SGL Data Block for data moved by R2T/H2CData or C2HData.

use crate::wire::{Reader, StructDecodeError, Writer, open_enum};

//~ NVMe Base 2.0, SGL Descriptor figure: Address (bytes 0..8), Length (8..12),
//~ descriptor-specific bytes 12..15, SGL Identifier (byte 15: type in bits 7:4, subtype 3:0).
/// Size of an SGL descriptor.
pub const SGL_DESC_LEN: usize = 16;
/// Byte offset of the SGL Identifier.
pub const SGL_ID_OFFSET: usize = 15;

open_enum! {
    //~ NVMe Base 2.0, SGL Descriptor Type codes (bits 7:4 of the SGL Identifier).
    /// SGL descriptor type.
    pub struct SglDescType(u8) {
        /// Data Block.
        DATA_BLOCK = 0x0,
        /// Bit Bucket.
        BIT_BUCKET = 0x1,
        /// Segment.
        SEGMENT = 0x2,
        /// Last Segment.
        LAST_SEGMENT = 0x3,
        /// Keyed Data Block (RDMA).
        KEYED_DATA_BLOCK = 0x4,
        /// Transport SGL Data Block.
        TRANSPORT_DATA_BLOCK = 0x5,
        /// Vendor specific.
        VENDOR_SPECIFIC = 0xF,
    }
}

open_enum! {
    //~ NVMe Base 2.0, SGL Descriptor Sub Type codes (bits 3:0 of the SGL Identifier).
    /// SGL descriptor subtype.
    pub struct SglSubtype(u8) {
        /// Address: the Address field is a memory address.
        ADDRESS = 0x0,
        /// Offset: the Address field is an offset into the in-capsule data.
        OFFSET = 0x1,
        /// Transport specific (NVMe/TCP: the data moves by R2T/H2CData or C2HData).
        TRANSPORT = 0xA,
    }
}

/// The SGL Identifier byte: descriptor type and subtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SglId(pub u8);

impl SglId {
    //= NVMe/TCP 1.0 §3.3.2
    //# An SGL Data Block descriptor with an SGL Descriptor Sub Type value of 1h specifies
    //# the use of in-capsule data.
    // Linux nvme_tcp_set_sg_inline(): (NVME_SGL_FMT_DATA_DESC << 4) | NVME_SGL_FMT_OFFSET.
    /// Data Block, Offset subtype (0x01): the data is in the capsule at the given offset.
    pub const IN_CAPSULE: Self = Self(0x01);
    //= NVMe/TCP 1.0 §3.3.2
    //# A Transport SGL Data block descriptor with an SGL Descriptor Sub Type value
    //# of Ah is referred to as Command Data Buffer Descriptor and specifies the use of the NVMe/TCP
    //# transport specific data transfer mechanism.
    // Linux nvme_tcp_set_sg_host_data() and nvme_tcp_set_sg_null():
    // (NVME_TRANSPORT_SGL_DATA_DESC << 4) | NVME_SGL_FMT_TRANSPORT_A.
    /// Transport SGL Data Block, transport subtype (0x5A): data moves by R2T/H2CData or C2HData.
    pub const TRANSPORT: Self = Self(0x5A);

    /// The descriptor type (bits 7:4).
    pub const fn desc_type(self) -> SglDescType {
        SglDescType(self.0 >> 4)
    }

    /// The subtype (bits 3:0).
    pub const fn subtype(self) -> SglSubtype {
        SglSubtype(self.0 & 0x0f)
    }

    /// Builds the identifier from its two halves.
    pub const fn new(desc_type: SglDescType, subtype: SglSubtype) -> Self {
        Self(((desc_type.0 & 0x0f) << 4) | (subtype.0 & 0x0f))
    }
}

/// A 16-byte SGL descriptor. All bytes round-trip, including the descriptor-specific ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SglDescriptor {
    /// Address, or offset into the in-capsule data for the Offset subtype.
    pub address: u64,
    /// Length in bytes.
    pub length: u32,
    /// Bytes 12..15: reserved for Data Block descriptors (keyed descriptors use them).
    pub reserved: [u8; 3],
    /// SGL Identifier.
    pub id: SglId,
}

impl SglDescriptor {
    /// In-capsule data of `length` bytes at `offset` (ICDOFF) into the capsule's data.
    pub const fn in_capsule(offset: u64, length: u32) -> Self {
        Self {
            address: offset,
            length,
            reserved: [0; 3],
            id: SglId::IN_CAPSULE,
        }
    }

    /// Data of `length` bytes transferred by R2T/H2CData (write) or C2HData (read).
    pub const fn transport(length: u32) -> Self {
        Self {
            address: 0,
            length,
            reserved: [0; 3],
            id: SglId::TRANSPORT,
        }
    }

    /// Whether this is the in-capsule form (Data Block, Offset).
    pub fn is_in_capsule(&self) -> bool {
        self.id == SglId::IN_CAPSULE
    }

    /// Whether this is the transport form (Transport SGL Data Block).
    pub fn is_transport(&self) -> bool {
        self.id.desc_type() == SglDescType::TRANSPORT_DATA_BLOCK
    }

    /// The 16 wire bytes.
    pub fn to_bytes(&self) -> [u8; SGL_DESC_LEN] {
        let mut out = [0u8; SGL_DESC_LEN];
        let mut w = Writer::over(&mut out);
        w.u64(0, self.address);
        w.u32(8, self.length);
        w.bytes(12, &self.reserved);
        w.u8(SGL_ID_OFFSET, self.id.0);
        out
    }

    /// Parses 16 wire bytes.
    pub fn from_bytes(src: &[u8; SGL_DESC_LEN]) -> Self {
        Self::decode(src).unwrap_or_default()
    }

    /// Parses the first 16 bytes of `src`.
    pub fn decode(src: &[u8]) -> Result<Self, StructDecodeError> {
        let r = Reader::new(src, "SGL descriptor", SGL_DESC_LEN)?;
        Ok(Self {
            address: r.u64(0)?,
            length: r.u32(8)?,
            reserved: r.array(12)?,
            id: SglId(r.u8(SGL_ID_OFFSET)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_sgl_identifiers() {
        assert_eq!(SglId::IN_CAPSULE.desc_type(), SglDescType::DATA_BLOCK);
        assert_eq!(SglId::IN_CAPSULE.subtype(), SglSubtype::OFFSET);
        assert_eq!(
            SglId::TRANSPORT.desc_type(),
            SglDescType::TRANSPORT_DATA_BLOCK
        );
        assert_eq!(SglId::TRANSPORT.subtype(), SglSubtype::TRANSPORT);
        assert_eq!(
            SglId::new(SglDescType::TRANSPORT_DATA_BLOCK, SglSubtype::TRANSPORT),
            SglId(0x5a)
        );
    }

    #[test]
    fn descriptor_layout() {
        let d = SglDescriptor::in_capsule(0, 4096);
        let b = d.to_bytes();
        assert_eq!(b, [0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x10, 0, 0, 0, 0, 0, 0x01]);
        assert_eq!(SglDescriptor::from_bytes(&b), d);
    }
}
