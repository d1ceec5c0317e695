//! Self-describing block contents for `--verify`. Every logical block written carries a
//! header (magic, its own LBA, the run's seed, a write stamp) followed by bytes generated from
//! those four values, so a read can tell a block that is right from one that is stale (older
//! stamp), misplaced (other LBA), torn or corrupted (fill differs) or lost (zeros or foreign
//! data where this run wrote). Blocks this run has not written may hold anything (zeros, a
//! file system, an earlier run's blocks), but a `lamina-perf` block among them must still be
//! in its place and intact.
//!
//! Layout of one block: magic `b"LMNAPERF"` (0..8), LBA (8..16), seed (16..24), stamp
//! (24..28), zero (28..32), then the generated fill up to the block size.

use super::rng::{Rng, mix};

/// Block header magic.
pub const MAGIC: u64 = u64::from_le_bytes(*b"LMNAPERF");
/// Bytes of header before the fill.
pub const HEADER_LEN: usize = 32;

/// What a block is expected to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The block written by this run with this stamp.
    Stamp(u32),
    /// Nothing this run wrote: anything but a misplaced or damaged `lamina-perf` block.
    Unwritten,
}

/// Why a block failed the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    /// Not a `lamina-perf` block (bad magic) where this run wrote one.
    Garbage,
    /// A well-formed block of another LBA.
    WrongLba {
        /// LBA found in the header.
        found: u64,
    },
    /// A block of this LBA with another stamp or seed (stale or lost write).
    WrongStamp {
        /// Stamp found.
        found: u32,
        /// Stamp expected.
        expected: u32,
    },
    /// Header right, fill differs from byte `at` (torn or corrupted data).
    Corrupt {
        /// Offset within the block.
        at: usize,
    },
    /// Expected data, found zeros (lost write).
    Zeros,
}

impl core::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Garbage => write!(f, "not the lamina-perf block written there"),
            Self::WrongLba { found } => write!(f, "block of LBA {found}"),
            Self::WrongStamp { found, expected } => {
                write!(f, "stamp {found}, expected {expected}")
            }
            Self::Corrupt { at } => write!(f, "data differs from byte {at}"),
            Self::Zeros => write!(f, "zeros where data was written"),
        }
    }
}

fn fill_seed(lba: u64, seed: u64, stamp: u32) -> u64 {
    mix(&[lba, seed, u64::from(stamp)])
}

/// Writes the block for `lba` into `block`.
pub fn fill_block(block: &mut [u8], lba: u64, seed: u64, stamp: u32) {
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(&MAGIC.to_le_bytes());
    header[8..16].copy_from_slice(&lba.to_le_bytes());
    header[16..24].copy_from_slice(&seed.to_le_bytes());
    header[24..28].copy_from_slice(&stamp.to_le_bytes());
    let split = HEADER_LEN.min(block.len());
    let (head, rest) = block.split_at_mut(split);
    head.copy_from_slice(header.get(..split).unwrap_or_default());
    Rng::new(fill_seed(lba, seed, stamp)).fill(rest);
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .map_or(0, u64::from_le_bytes)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map_or(0, u32::from_le_bytes)
}

/// Checks `block` (as read from `lba`) against `expect` for a run with `seed`.
pub fn check_block(block: &[u8], lba: u64, seed: u64, expect: Expect) -> Result<(), Mismatch> {
    if u64_at(block, 0) != MAGIC {
        return match expect {
            Expect::Unwritten => Ok(()),
            Expect::Stamp(_) if block.iter().all(|b| *b == 0) => Err(Mismatch::Zeros),
            Expect::Stamp(_) => Err(Mismatch::Garbage),
        };
    }
    let found_lba = u64_at(block, 8);
    if found_lba != lba {
        return Err(Mismatch::WrongLba { found: found_lba });
    }
    let found_seed = u64_at(block, 16);
    let found_stamp = u32_at(block, 24);
    if let Expect::Stamp(expected) = expect
        && (found_stamp != expected || found_seed != seed)
    {
        return Err(Mismatch::WrongStamp {
            found: found_stamp,
            expected,
        });
    }
    check_fill(block, lba, found_seed, found_stamp)
}

fn check_fill(block: &[u8], lba: u64, seed: u64, stamp: u32) -> Result<(), Mismatch> {
    let mut rng = Rng::new(fill_seed(lba, seed, stamp));
    let fill = block.get(HEADER_LEN..).unwrap_or_default();
    let mut words = fill.chunks_exact(8);
    let mut at = HEADER_LEN;
    for word in &mut words {
        let want = rng.next_u64();
        // Compare whole words; find the byte only on a mismatch.
        if <[u8; 8]>::try_from(word).ok().map(u64::from_le_bytes) != Some(want) {
            let i = word
                .iter()
                .zip(want.to_le_bytes())
                .position(|(a, b)| *a != b);
            return Err(Mismatch::Corrupt {
                at: at + i.unwrap_or(0),
            });
        }
        at += 8;
    }
    let want = rng.next_u64().to_le_bytes();
    if let Some(i) = words
        .remainder()
        .iter()
        .zip(want)
        .position(|(a, b)| *a != b)
    {
        return Err(Mismatch::Corrupt { at: at + i });
    }
    if u32_at(block, 28) != 0 {
        return Err(Mismatch::Corrupt { at: 28 });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(lba: u64, stamp: u32) -> Vec<u8> {
        let mut b = vec![0; 4096];
        fill_block(&mut b, lba, 99, stamp);
        b
    }

    #[test]
    fn a_written_block_checks_out() {
        let b = block(7, 3);
        assert_eq!(check_block(&b, 7, 99, Expect::Stamp(3)), Ok(()));
        assert_eq!(check_block(&b, 7, 99, Expect::Unwritten), Ok(()));
    }

    #[test]
    fn every_kind_of_damage_is_named() {
        let b = block(7, 3);
        assert_eq!(
            check_block(&b, 8, 99, Expect::Stamp(3)),
            Err(Mismatch::WrongLba { found: 7 })
        );
        assert_eq!(
            check_block(&b, 7, 99, Expect::Stamp(4)),
            Err(Mismatch::WrongStamp {
                found: 3,
                expected: 4
            })
        );
        assert_eq!(
            check_block(&b, 7, 100, Expect::Stamp(3)),
            Err(Mismatch::WrongStamp {
                found: 3,
                expected: 3
            })
        );
        let mut torn = b.clone();
        torn[2000] ^= 1;
        assert_eq!(
            check_block(&torn, 7, 99, Expect::Stamp(3)),
            Err(Mismatch::Corrupt { at: 2000 })
        );
        let zeros = vec![0; 4096];
        assert_eq!(check_block(&zeros, 7, 99, Expect::Unwritten), Ok(()));
        assert_eq!(
            check_block(&zeros, 7, 99, Expect::Stamp(1)),
            Err(Mismatch::Zeros)
        );
        assert_eq!(
            check_block(&[1; 512], 7, 99, Expect::Stamp(1)),
            Err(Mismatch::Garbage)
        );
        // Foreign data where this run never wrote is fine; a misplaced block is not.
        assert_eq!(check_block(&[1; 512], 7, 99, Expect::Unwritten), Ok(()));
        assert_eq!(
            check_block(&b, 8, 99, Expect::Unwritten),
            Err(Mismatch::WrongLba { found: 7 })
        );
    }

    #[test]
    fn tiny_blocks_do_not_panic() {
        let mut b = [0u8; 16];
        fill_block(&mut b, 1, 2, 3);
        // The header does not fit: the check fails, but without panicking.
        assert!(check_block(&b, 1, 2, Expect::Stamp(3)).is_err());
        assert!(check_block(&[], 1, 2, Expect::Unwritten).is_ok());
    }
}
