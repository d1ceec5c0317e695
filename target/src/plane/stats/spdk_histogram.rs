//! The latency histogram of SPDK's `bdev_enable_histogram` / `bdev_get_histogram`, in SPDK's
//! own bucket layout so its tools (`scripts/histogram.py`) decode what Lamina sends.
//!
//! SPDK's layout is log-linear: a value's *range* is the position of its highest set bit above
//! the granularity, and within a range `2^granularity` equal buckets split it. Buckets are
//! `u64` counters, range after range from `min_range` to `max_range`, sent as base64 of their
//! little-endian bytes. Lamina's ticks are nanoseconds (it reports `tsc_rate` 1e9). Values below
//! the smallest range land in its first bucket and values above the largest in its last, as in
//! SPDK. Counters are relaxed atomics: tallying is one `fetch_add`.

use std::sync::atomic::{AtomicU64, Ordering};

use super::OpClass;

/// SPDK's default granularity: 128 buckets per range.
pub const DEFAULT_GRANULARITY: u32 = 7;
/// SPDK's default smallest value tracked: 1 µs.
pub const DEFAULT_MIN_NS: u64 = 1_000;
/// SPDK's default largest value tracked: 120 s.
pub const DEFAULT_MAX_NS: u64 = 120_000_000_000;
/// The largest granularity accepted (SPDK's buckets per range stay below 2^16 in practice;
/// more would only cost memory).
pub const MAX_GRANULARITY: u32 = 15;

/// One histogram: its shape, the I/O class it is limited to, and its buckets.
#[derive(Debug)]
pub struct SpdkHistogram {
    granularity: u32,
    min_range: u32,
    max_range: u32,
    only: Option<OpClass>,
    buckets: Box<[AtomicU64]>,
}

/// The range of a value (SPDK's `get_bucket_range`).
fn range_of(granularity: u32, value: u64) -> u32 {
    let lsb = 64 - granularity;
    let clz = value.leading_zeros();
    lsb.saturating_sub(clz)
}

impl SpdkHistogram {
    /// A histogram of values in `[min_ns, max_ns)`, counting only `only` when given.
    pub fn new(
        granularity: u32,
        min_ns: u64,
        max_ns: u64,
        only: Option<OpClass>,
    ) -> Result<Self, String> {
        if !(1..=MAX_GRANULARITY).contains(&granularity) {
            return Err(format!(
                "granularity {granularity} is out of range (1 to {MAX_GRANULARITY})"
            ));
        }
        if min_ns >= max_ns {
            return Err(format!(
                "min_nsec ({min_ns}) must be below max_nsec ({max_ns})"
            ));
        }
        let min_range = range_of(granularity, min_ns);
        let max_range = range_of(granularity, max_ns - 1);
        let n = ((max_range - min_range + 1) as usize) << granularity;
        Ok(Self {
            granularity,
            min_range,
            max_range,
            only,
            buckets: (0..n).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// Counts a command of `class` that took `ns`, unless the histogram is limited to another.
    pub fn tally(&self, class: OpClass, ns: u64) {
        if self.only.is_some_and(|o| o != class) {
            return;
        }
        let per_range = 1u64 << self.granularity;
        let range = range_of(self.granularity, ns);
        let (range, index) = if range < self.min_range {
            (self.min_range, 0)
        } else if range > self.max_range {
            (self.max_range, per_range - 1)
        } else {
            let shift = range.saturating_sub(1);
            (range, (ns >> shift) & (per_range - 1))
        };
        let slot = (u64::from(range - self.min_range) << self.granularity) + index;
        if let Some(b) = usize::try_from(slot).ok().and_then(|i| self.buckets.get(i)) {
            b.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The buckets as SPDK sends them: little-endian `u64`s, range after range (the tests'
    /// view of one histogram; the RPC encodes the merged counts).
    #[cfg(test)]
    pub fn bytes(&self) -> Vec<u8> {
        self.buckets
            .iter()
            .flat_map(|b| b.load(Ordering::Relaxed).to_le_bytes())
            .collect()
    }

    /// Adds `other`'s counts into a copy of the buckets of `acc` (same shape), for a bdev
    /// exported by several namespaces. Returns false when the shapes differ.
    pub fn add_into(&self, acc: &mut [u64]) -> bool {
        if acc.len() != self.buckets.len() {
            return false;
        }
        for (a, b) in acc.iter_mut().zip(self.buckets.iter()) {
            *a = a.wrapping_add(b.load(Ordering::Relaxed));
        }
        true
    }

    /// Number of buckets.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether the histogram has no buckets (never: every shape has at least one range).
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// The granularity.
    pub fn granularity(&self) -> u32 {
        self.granularity
    }

    /// The smallest range.
    pub fn min_range(&self) -> u32 {
        self.min_range
    }

    /// The largest range.
    pub fn max_range(&self) -> u32 {
        self.max_range
    }

    /// Total count (for tests and logs).
    pub fn total(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_give_spdks_shape() {
        let h =
            SpdkHistogram::new(DEFAULT_GRANULARITY, DEFAULT_MIN_NS, DEFAULT_MAX_NS, None).unwrap();
        // 1000 has 54 leading zeros: range 57 - 54 = 3; 120e9 - 1 has 27: range 30.
        assert_eq!((h.min_range(), h.max_range()), (3, 30));
        assert_eq!(h.len(), 28 * 128);
        assert_eq!(h.bytes().len(), 28 * 128 * 8);
    }

    #[test]
    fn values_land_in_spdks_buckets() {
        let h = SpdkHistogram::new(7, 1, 1 << 20, None).unwrap();
        assert_eq!(h.min_range(), 0);
        h.tally(OpClass::Read, 5); // range 0: the value itself is the index
        h.tally(OpClass::Read, 1000); // 2^9..2^10: range 3, index (1000 >> 2) & 127 = 122
        h.tally(OpClass::Write, u64::MAX); // above: the last bucket
        let b = h.bytes();
        let at = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
        assert_eq!(at(5), 1);
        assert_eq!(at((3 << 7) + 122), 1);
        assert_eq!(at(h.len() - 1), 1);
        assert_eq!(h.total(), 3);
    }

    #[test]
    fn a_class_filter_counts_only_that_class() {
        let h = SpdkHistogram::new(7, 1_000, 1_000_000, Some(OpClass::Write)).unwrap();
        h.tally(OpClass::Read, 5_000);
        h.tally(OpClass::Write, 5_000);
        assert_eq!(h.total(), 1);
        let mut acc = vec![0; h.len()];
        assert!(h.add_into(&mut acc));
        assert_eq!(acc.iter().sum::<u64>(), 1);
        assert!(!h.add_into(&mut [0; 3]));
    }

    #[test]
    fn bad_shapes_are_refused() {
        assert!(SpdkHistogram::new(0, 1, 2, None).is_err());
        assert!(SpdkHistogram::new(16, 1, 2, None).is_err());
        assert!(SpdkHistogram::new(7, 5, 5, None).is_err());
    }
}
