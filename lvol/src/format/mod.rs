//! The on-disk format (see `lvol/FORMAT.md`): the superblock, the framing shared by every
//! metadata block, the lvol records and the metadata operations. Pure encoding and decoding,
//! bounds-checked, no I/O.

pub(crate) mod block;
pub(crate) mod codec;
pub(crate) mod record;
pub(crate) mod superblock;

/// Every metadata block (superblock slot, checkpoint block, journal block) is this big.
pub(crate) const MD_BLOCK: usize = 4096;
/// [`MD_BLOCK`] as `u64`.
pub(crate) const MD_BLOCK_U64: u64 = 4096;
