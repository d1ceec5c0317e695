//! Asymmetric Namespace Access log page (LID 0Ch): a header and one descriptor per ANA group.

use bytes::BytesMut;

use crate::wire::{Reader, StructDecodeError, Writer, open_enum};

//~ NVMe Base 2.0, ANA log page figure: Change Count (0..8), Number of ANA Group
//~ Descriptors (8..10), reserved to 16; then descriptors: ANAGRPID (0), NNSID (4), Change Count
//~ (8), ANA State (16, bits 3:0), reserved to 32, then NNSID NSIDs.
/// Size of the header.
pub const ANA_HEADER_LEN: usize = 16;
/// Size of a group descriptor without its NSIDs.
pub const ANA_DESC_LEN: usize = 32;

open_enum! {
    //~ NVMe Base 2.0, Asymmetric Namespace Access States.
    /// ANA state of a group.
    pub struct AnaState(u8) {
        /// Optimized.
        OPTIMIZED = 0x1,
        /// Non-Optimized.
        NON_OPTIMIZED = 0x2,
        /// Inaccessible.
        INACCESSIBLE = 0x3,
        /// Persistent Loss.
        PERSISTENT_LOSS = 0x4,
        /// Change.
        CHANGE = 0xF,
    }
}

/// One ANA group descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AnaGroupDescriptor {
    /// ANA Group ID.
    pub anagrpid: u32,
    /// Change Count.
    pub change_count: u64,
    /// ANA State (4 bits).
    pub state: AnaState,
    /// Namespaces in the group (omitted when the host asked for RGO, "groups only").
    pub nsids: Vec<u32>,
}

/// The ANA log page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AnaLog {
    /// Change Count.
    pub change_count: u64,
    /// Group descriptors (NGRPS of them).
    pub groups: Vec<AnaGroupDescriptor>,
}

impl AnaLog {
    /// Bytes `encode` appends.
    pub fn encoded_len(&self) -> usize {
        ANA_HEADER_LEN
            + self
                .groups
                .iter()
                .map(|g| ANA_DESC_LEN + 4 * g.nsids.len())
                .sum::<usize>()
    }

    /// Appends the page.
    pub fn encode(&self, dst: &mut BytesMut) {
        let mut w = Writer::append(dst, ANA_HEADER_LEN);
        w.u64(0, self.change_count);
        w.u16(8, u16::try_from(self.groups.len()).unwrap_or(u16::MAX));
        for g in &self.groups {
            let mut w = Writer::append(dst, ANA_DESC_LEN + 4 * g.nsids.len());
            w.u32(0, g.anagrpid);
            w.u32(4, u32::try_from(g.nsids.len()).unwrap_or(u32::MAX));
            w.u64(8, g.change_count);
            w.u8(16, g.state.0 & 0x0f);
            for (i, nsid) in g.nsids.iter().enumerate() {
                w.u32(ANA_DESC_LEN + 4 * i, *nsid);
            }
        }
    }

    /// Parses the page; NGRPS and NNSID are bounded by the bytes present, never trusted for
    /// allocation.
    pub fn decode(src: &[u8]) -> Result<Self, StructDecodeError> {
        let r = Reader::new(src, "ANA log", ANA_HEADER_LEN)?;
        let ngrps = usize::from(r.u16(8)?);
        let mut groups = Vec::new();
        let mut at = ANA_HEADER_LEN;
        for _ in 0..ngrps {
            let nnsid = usize::try_from(r.u32(at + 4)?).unwrap_or(usize::MAX);
            let ids_len = nnsid
                .checked_mul(4)
                .ok_or_else(|| r.invalid("NNSID", at + 4))?;
            let ids = r.slice(at + ANA_DESC_LEN, ids_len)?;
            groups.push(AnaGroupDescriptor {
                anagrpid: r.u32(at)?,
                change_count: r.u64(at + 8)?,
                state: AnaState(r.u8(at + 16)? & 0x0f),
                nsids: ids
                    .chunks_exact(4)
                    .filter_map(|c| <[u8; 4]>::try_from(c).ok())
                    .map(u32::from_le_bytes)
                    .collect(),
            });
            at += ANA_DESC_LEN + ids_len;
        }
        Ok(Self {
            change_count: r.u64(0)?,
            groups,
        })
    }
}
