//! Commands Supported and Effects log page (LID 05h).

use bytes::BytesMut;

use crate::wire::{Reader, StructDecodeError, Writer};

//~ NVMe Base 2.0, Commands Supported and Effects Log Page figure: ACS0..ACS255 (bytes
//~ 0..1024), IOCS0..IOCS255 (1024..2048), reserved to 4095.
/// Byte offset of the I/O command entries.
pub const IOCS_OFFSET: usize = 1024;

//~ NVMe Base 2.0, Commands Supported and Effects Data Structure: CSUPP (bit 0), LBCC (1),
//~ NCC (2), NIC (3), CCC (4), CSER (15:14), CSE (18:16), USS (19), CSP (31:20: bit 20
//~ namespace, 21 controller, 22 NVM set, 23 endurance group, 24 domain, 25 NVM subsystem
//~ scope).
/// One Commands Supported and Effects entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CommandEffects(pub u32);

impl CommandEffects {
    /// Command Supported.
    pub const CSUPP: u32 = 1 << 0;
    /// Logical Block Content Change.
    pub const LBCC: u32 = 1 << 1;
    /// Namespace Capability Change.
    pub const NCC: u32 = 1 << 2;
    /// Namespace Inventory Change.
    pub const NIC: u32 = 1 << 3;
    /// Controller Capability Change.
    pub const CCC: u32 = 1 << 4;
    /// Command scope: namespace.
    pub const NSCPE: u32 = 1 << 20;
    /// Command scope: controller.
    pub const CSCPE: u32 = 1 << 21;
    /// Command scope: NVM subsystem.
    pub const NSSCPE: u32 = 1 << 25;

    /// Whether the command is supported.
    pub const fn is_supported(self) -> bool {
        self.0 & Self::CSUPP != 0
    }
}

/// The log page: one entry per admin and per I/O opcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandsSupportedEffects {
    /// Admin Command Supported entries, indexed by opcode.
    pub admin: [CommandEffects; 256],
    /// I/O Command Supported entries, indexed by opcode.
    pub io: [CommandEffects; 256],
}

impl Default for CommandsSupportedEffects {
    fn default() -> Self {
        Self {
            admin: [CommandEffects(0); 256],
            io: [CommandEffects(0); 256],
        }
    }
}

impl CommandsSupportedEffects {
    /// Size on the wire.
    pub const SIZE: usize = 4096;

    /// Bytes `encode` appends.
    pub const fn encoded_len(&self) -> usize {
        Self::SIZE
    }

    /// Appends the 4096-byte page.
    pub fn encode(&self, dst: &mut BytesMut) {
        let mut w = Writer::append(dst, Self::SIZE);
        for (i, e) in self.admin.iter().enumerate() {
            w.u32(4 * i, e.0);
        }
        for (i, e) in self.io.iter().enumerate() {
            w.u32(IOCS_OFFSET + 4 * i, e.0);
        }
    }

    /// Parses the page.
    pub fn decode(src: &[u8]) -> Result<Self, StructDecodeError> {
        let r = Reader::new(src, "Commands Supported and Effects", Self::SIZE)?;
        let mut out = Self::default();
        for (i, e) in out.admin.iter_mut().enumerate() {
            *e = CommandEffects(r.u32(4 * i)?);
        }
        for (i, e) in out.io.iter_mut().enumerate() {
            *e = CommandEffects(r.u32(IOCS_OFFSET + 4 * i)?);
        }
        Ok(out)
    }
}
