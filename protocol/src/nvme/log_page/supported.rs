//! The NVMe 2.0 "what is supported" log pages: Supported Log Pages (LID 00h), Feature
//! Identifiers Supported and Effects (LID 12h) and NVMe-MI Commands Supported and Effects
//! (LID 13h). Each is a table indexed by identifier.

use bytes::BytesMut;

use crate::wire::{Reader, StructDecodeError, Writer};

//~ NVMe Base 2.0, Supported Log Pages Log Page: LID Supported and Effects Data Structure for
//~ LID 00h to FFh, 4 bytes each (1024 bytes). Each entry: LSUPP (bit 0), IOS (bit 1: index
//~ offset supported), LID Specific (31:16).
/// One LID Supported and Effects entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LidSupport(pub u32);

impl LidSupport {
    /// LSUPP: the log page is supported.
    pub const LSUPP: u32 = 1 << 0;
    /// IOS: the Get Log Page Offset Type "index" is supported for the page.
    pub const IOS: u32 = 1 << 1;

    /// Whether the log page is supported.
    pub const fn is_supported(self) -> bool {
        self.0 & Self::LSUPP != 0
    }
}

/// Supported Log Pages (LID 00h).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportedLogPages {
    /// One entry per LID.
    pub lids: [LidSupport; 256],
}

impl Default for SupportedLogPages {
    fn default() -> Self {
        Self {
            lids: [LidSupport(0); 256],
        }
    }
}

impl SupportedLogPages {
    /// Size on the wire.
    pub const SIZE: usize = 1024;

    /// Bytes `encode` appends.
    pub const fn encoded_len(&self) -> usize {
        Self::SIZE
    }

    /// Appends the 1024-byte page.
    pub fn encode(&self, dst: &mut BytesMut) {
        let mut w = Writer::append(dst, Self::SIZE);
        for (i, e) in self.lids.iter().enumerate() {
            w.u32(4 * i, e.0);
        }
    }

    /// Parses the page.
    pub fn decode(src: &[u8]) -> Result<Self, StructDecodeError> {
        let r = Reader::new(src, "Supported Log Pages", Self::SIZE)?;
        let mut out = Self::default();
        for (i, e) in out.lids.iter_mut().enumerate() {
            *e = LidSupport(r.u32(4 * i)?);
        }
        Ok(out)
    }

    /// The LIDs marked supported, in order.
    pub fn supported(&self) -> Vec<u8> {
        (0..=u8::MAX)
            .zip(self.lids.iter())
            .filter(|(_, e)| e.is_supported())
            .map(|(lid, _)| lid)
            .collect()
    }
}

//~ NVMe Base 2.0, Feature Identifiers Supported and Effects Log Page: FID Supported and
//~ Effects Data Structure for FID 00h to FFh, 4 bytes each (1024 bytes). Each entry: FSUPP
//~ (0), UDCC (1), NCC (2), NIC (3), CCC (4), USS (19), FSP (31:20: bit 20 namespace, 21
//~ controller, 22 NVM set, 23 endurance group, 24 domain, 25 NVM subsystem scope).
/// One FID Supported and Effects entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FeatureEffects(pub u32);

impl FeatureEffects {
    /// FSUPP: the feature is supported.
    pub const FSUPP: u32 = 1 << 0;
    /// UDCC: a Set Features may change user data content.
    pub const UDCC: u32 = 1 << 1;
    /// NCC: a Set Features may change namespace capabilities.
    pub const NCC: u32 = 1 << 2;
    /// NIC: a Set Features may change the namespace inventory.
    pub const NIC: u32 = 1 << 3;
    /// CCC: a Set Features may change controller capabilities.
    pub const CCC: u32 = 1 << 4;
    /// USS: UUID selection supported.
    pub const USS: u32 = 1 << 19;
    /// NSCPE: namespace scope.
    pub const NSCPE: u32 = 1 << 20;
    /// CSCPE: controller scope.
    pub const CSCPE: u32 = 1 << 21;
    /// NSSCPE: NVM subsystem scope.
    pub const NSSCPE: u32 = 1 << 25;

    /// Whether the feature is supported.
    pub const fn is_supported(self) -> bool {
        self.0 & Self::FSUPP != 0
    }
}

/// Feature Identifiers Supported and Effects (LID 12h).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureIdsEffects {
    /// One entry per FID.
    pub fids: [FeatureEffects; 256],
}

impl Default for FeatureIdsEffects {
    fn default() -> Self {
        Self {
            fids: [FeatureEffects(0); 256],
        }
    }
}

impl FeatureIdsEffects {
    /// Size on the wire.
    pub const SIZE: usize = 1024;

    /// Bytes `encode` appends.
    pub const fn encoded_len(&self) -> usize {
        Self::SIZE
    }

    /// Appends the 1024-byte page.
    pub fn encode(&self, dst: &mut BytesMut) {
        let mut w = Writer::append(dst, Self::SIZE);
        for (i, e) in self.fids.iter().enumerate() {
            w.u32(4 * i, e.0);
        }
    }

    /// Parses the page.
    pub fn decode(src: &[u8]) -> Result<Self, StructDecodeError> {
        let r = Reader::new(src, "Feature Identifiers Supported and Effects", Self::SIZE)?;
        let mut out = Self::default();
        for (i, e) in out.fids.iter_mut().enumerate() {
            *e = FeatureEffects(r.u32(4 * i)?);
        }
        Ok(out)
    }

    /// The FIDs marked supported, in order.
    pub fn supported(&self) -> Vec<u8> {
        (0..=u8::MAX)
            .zip(self.fids.iter())
            .filter(|(_, e)| e.is_supported())
            .map(|(fid, _)| fid)
            .collect()
    }
}

//~ NVMe Base 2.0, NVMe-MI Commands Supported and Effects Log Page: one 4-byte entry per
//~ NVMe-MI command opcode 00h to FFh (bytes 1023:0), reserved to 4095.
/// NVMe-MI Commands Supported and Effects (LID 13h).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvmeMiCommandsEffects {
    /// One entry per NVMe-MI opcode (the layout of a Commands Supported and Effects entry).
    pub commands: [u32; 256],
}

impl Default for NvmeMiCommandsEffects {
    fn default() -> Self {
        Self { commands: [0; 256] }
    }
}

impl NvmeMiCommandsEffects {
    /// Size on the wire.
    pub const SIZE: usize = 4096;

    /// Bytes `encode` appends.
    pub const fn encoded_len(&self) -> usize {
        Self::SIZE
    }

    /// Appends the 4096-byte page.
    pub fn encode(&self, dst: &mut BytesMut) {
        let mut w = Writer::append(dst, Self::SIZE);
        for (i, e) in self.commands.iter().enumerate() {
            w.u32(4 * i, *e);
        }
    }

    /// Parses the page.
    pub fn decode(src: &[u8]) -> Result<Self, StructDecodeError> {
        let r = Reader::new(src, "NVMe-MI Commands Supported and Effects", Self::SIZE)?;
        let mut out = Self::default();
        for (i, e) in out.commands.iter_mut().enumerate() {
            *e = r.u32(4 * i)?;
        }
        Ok(out)
    }
}
