//! Namespace ID lists (Active Namespace ID list, CNS 02h; also the Changed Namespace List log
//! page) and the Namespace Identification Descriptor list (CNS 03h).

use bytes::{BufMut, BytesMut};

use super::IDENTIFY_LEN;
use crate::wire::{Reader, StructDecodeError, Writer, open_enum};

//~ NVMe Base 2.0, Active Namespace ID list: up to 1024 NSIDs in increasing order,
//~ zero filled after the last one.
/// Most entries a namespace ID list holds.
pub const NS_LIST_MAX: usize = 1024;

/// A list of namespace IDs in a 4096-byte structure.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NsIdList {
    /// The NSIDs, at most 1024, none zero (zero terminates the list on the wire).
    pub nsids: Vec<u32>,
}

impl NsIdList {
    /// Size on the wire.
    pub const SIZE: usize = IDENTIFY_LEN;

    /// Bytes `encode` appends.
    pub const fn encoded_len(&self) -> usize {
        Self::SIZE
    }

    /// Appends the 4096-byte list; entries past 1024 are dropped.
    pub fn encode(&self, dst: &mut BytesMut) {
        let mut w = Writer::append(dst, Self::SIZE);
        for (i, nsid) in self.nsids.iter().take(NS_LIST_MAX).enumerate() {
            w.u32(4 * i, *nsid);
        }
    }

    /// Parses a list, stopping at the first zero entry.
    pub fn decode(src: &[u8]) -> Result<Self, StructDecodeError> {
        let r = Reader::new(src, "Namespace ID list", Self::SIZE)?;
        let mut nsids = Vec::new();
        for i in 0..NS_LIST_MAX {
            match r.u32(4 * i)? {
                0 => break,
                nsid => nsids.push(nsid),
            }
        }
        Ok(Self { nsids })
    }
}

open_enum! {
    //~ NVMe Base 2.0, Namespace Identifier Type figure.
    /// Namespace Identifier Type of a descriptor.
    pub struct NidType(u8) {
        /// IEEE Extended Unique Identifier (8 bytes).
        EUI64 = 1,
        /// Namespace Globally Unique Identifier (16 bytes).
        NGUID = 2,
        /// Namespace UUID (16 bytes).
        UUID = 3,
        /// Command Set Identifier (1 byte).
        CSI = 4,
    }
}

//~ NVMe Base 2.0, Namespace Identification Descriptor figure: NIDT (0), NIDL (1),
//~ reserved (2..4), NID (4..4+NIDL).
/// One Namespace Identification Descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NsIdDescriptor {
    /// EUI64.
    Eui64([u8; 8]),
    /// NGUID.
    Nguid([u8; 16]),
    /// UUID.
    Uuid([u8; 16]),
    /// Command Set Identifier.
    Csi(u8),
}

impl NsIdDescriptor {
    /// Size on the wire, header included.
    pub fn encoded_len(&self) -> usize {
        4 + self.nid().len()
    }

    fn nidt(&self) -> NidType {
        match self {
            Self::Eui64(_) => NidType::EUI64,
            Self::Nguid(_) => NidType::NGUID,
            Self::Uuid(_) => NidType::UUID,
            Self::Csi(_) => NidType::CSI,
        }
    }

    fn nid(&self) -> &[u8] {
        match self {
            Self::Eui64(v) => v,
            Self::Nguid(v) | Self::Uuid(v) => v,
            Self::Csi(v) => core::slice::from_ref(v),
        }
    }

    /// Appends the descriptor to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        let nid = self.nid();
        dst.put_u8(self.nidt().0);
        dst.put_u8(u8::try_from(nid.len()).unwrap_or(0));
        dst.put_u16_le(0);
        dst.put_slice(nid);
    }

    /// Appends a whole 4096-byte CNS 03h structure holding `descriptors`, zero filled.
    pub fn encode_list(descriptors: &[Self], dst: &mut BytesMut) {
        let start = dst.len();
        for d in descriptors {
            if dst.len() - start + d.encoded_len() > IDENTIFY_LEN {
                break;
            }
            d.encode(dst);
        }
        let written = dst.len() - start;
        dst.put_bytes(0, IDENTIFY_LEN - written);
    }

    /// Parses a CNS 03h structure; a descriptor with NIDT 0 ends the list. Unknown types are
    /// skipped (as the Linux host does); a known type with the wrong NIDL is an error.
    pub fn decode_list(src: &[u8]) -> Result<Vec<Self>, StructDecodeError> {
        let r = Reader::new(src, "NS Identification Descriptor list", IDENTIFY_LEN)?;
        let mut out = Vec::new();
        let mut at = 0;
        while at + 4 <= IDENTIFY_LEN {
            let nidt = NidType(r.u8(at)?);
            let nidl = usize::from(r.u8(at + 1)?);
            if nidt.0 == 0 {
                break;
            }
            let nid = r
                .slice(at + 4, nidl)
                .map_err(|_| r.invalid("NIDL", at + 1))?;
            let desc = match nidt {
                NidType::EUI64 => <[u8; 8]>::try_from(nid).map(Self::Eui64).ok(),
                NidType::NGUID => <[u8; 16]>::try_from(nid).map(Self::Nguid).ok(),
                NidType::UUID => <[u8; 16]>::try_from(nid).map(Self::Uuid).ok(),
                NidType::CSI => <[u8; 1]>::try_from(nid).map(|[csi]| Self::Csi(csi)).ok(),
                _ => {
                    at += 4 + nidl;
                    continue;
                }
            };
            out.push(desc.ok_or_else(|| r.invalid("NIDL", at + 1))?);
            at += 4 + nidl;
        }
        Ok(out)
    }
}
