//! The I/O Command Set data structure (Identify CNS 1Ch): the I/O command set combinations a
//! controller supports, which the I/O Command Set Profile feature (FID 19h) selects by index.

use bytes::BytesMut;

use super::{Csi, IDENTIFY_LEN};
use crate::wire::{Reader, StructDecodeError, Writer};

//~ NVMe Base 2.0, Identify I/O Command Set data structure: I/O Command Set Vector 0 to 511,
//~ 8 bytes each; a vector has bit N set when the command set with CSI N is in the
//~ combination; a vector cleared to 0h ends the list.
/// Number of vectors in the structure.
pub const IOCS_VECTORS: usize = IDENTIFY_LEN / 8;

/// One I/O Command Set combination: bit N is the command set with CSI N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct IoCommandSetVector(pub u64);

impl IoCommandSetVector {
    /// The NVM Command Set alone.
    pub const NVM_ONLY: Self = Self(1 << Csi::NVM.0);

    /// Whether the combination holds the command set `csi`.
    pub fn contains(self, csi: Csi) -> bool {
        csi.0 < 64 && self.0 & (1 << csi.0) != 0
    }
}

/// The I/O Command Set data structure: the combinations in index order (index 0 first).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IoCommandSetList {
    /// The combinations, at most 512, none zero (zero ends the list on the wire).
    pub vectors: Vec<IoCommandSetVector>,
}

impl IoCommandSetList {
    /// Size on the wire.
    pub const SIZE: usize = IDENTIFY_LEN;

    /// Bytes `encode` appends.
    pub const fn encoded_len(&self) -> usize {
        Self::SIZE
    }

    /// Appends the 4096-byte structure; vectors past 512 are dropped.
    pub fn encode(&self, dst: &mut BytesMut) {
        let mut w = Writer::append(dst, Self::SIZE);
        for (i, v) in self.vectors.iter().take(IOCS_VECTORS).enumerate() {
            w.u64(8 * i, v.0);
        }
    }

    /// Parses the structure, stopping at the first zero vector.
    pub fn decode(src: &[u8]) -> Result<Self, StructDecodeError> {
        let r = Reader::new(src, "I/O Command Set data structure", Self::SIZE)?;
        let mut vectors = Vec::new();
        for i in 0..IOCS_VECTORS {
            match r.u64(8 * i)? {
                0 => break,
                v => vectors.push(IoCommandSetVector(v)),
            }
        }
        Ok(Self { vectors })
    }
}
