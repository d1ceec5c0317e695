//! Firmware Slot Information log page (LID 03h).

use bytes::BytesMut;

use super::LOG_512;
use crate::nvme::strings::{put_space_padded, read_space_padded};
use crate::wire::{Reader, StructDecodeError, Writer};

//~ NVMe Base 2.0, Firmware Slot Information Log figure: AFI (0), FRS1..FRS7 (8 bytes
//~ each from byte 8), reserved to 511.
/// Firmware Slot Information.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FirmwareSlotInfo {
    /// Active Firmware Info: active slot (2:0), slot activated at next reset (6:4).
    pub afi: u8,
    /// Firmware Revision in slots 1..7 (ASCII, empty when the slot is empty).
    pub frs: [String; 7],
}

impl FirmwareSlotInfo {
    /// Size on the wire.
    pub const SIZE: usize = LOG_512;

    /// Bytes `encode` appends.
    pub const fn encoded_len(&self) -> usize {
        Self::SIZE
    }

    /// Appends the 512-byte page.
    pub fn encode(&self, dst: &mut BytesMut) {
        let mut w = Writer::append(dst, Self::SIZE);
        w.u8(0, self.afi);
        for (i, frs) in self.frs.iter().enumerate() {
            // An empty slot reads as zeroes, not spaces.
            if !frs.is_empty() {
                put_space_padded(&mut w, 8 + 8 * i, 8, frs);
            }
        }
    }

    /// Parses the page.
    pub fn decode(src: &[u8]) -> Result<Self, StructDecodeError> {
        let r = Reader::new(src, "Firmware Slot log", Self::SIZE)?;
        let mut frs: [String; 7] = Default::default();
        for (i, slot) in frs.iter_mut().enumerate() {
            *slot = read_space_padded(&r, 8 + 8 * i, 8)?;
        }
        Ok(Self { afi: r.u8(0)?, frs })
    }
}
