//! [`Verifier`]: the `--verify` bookkeeping of one connection. Each connection owns a disjoint
//! range of I/O units and never has two commands on the same unit in flight, so what a read
//! must return is exact: the block pattern of the last completed write of this run (a stamp
//! per unit); units this run has not written may hold anything but a misplaced or damaged
//! `lamina-perf` block (see [`super::pattern`]). Every completed write is followed by a
//! read-back of the same unit.

use std::collections::VecDeque;
use std::ops::Range;

use super::PerfError;
use super::pattern::{Expect, Mismatch, check_block, fill_block};
use super::stats::VerifyStats;

/// Stamp of a unit whose last write failed: its content is unknown.
const UNKNOWN: u32 = u32::MAX;
/// Largest stamp table (entries) a connection may need: 64 Mi units, 256 MiB.
const MAX_UNITS: u64 = 64 << 20;
/// Mismatch descriptions kept for the report.
const KEEP_MISMATCHES: usize = 10;

/// Verification state of one connection.
#[derive(Debug)]
pub struct Verifier {
    seed: u64,
    block_size: usize,
    blocks_per_unit: u64,
    range: Range<u64>,
    /// Stamp of the last completed write per unit (0: not written by this run).
    stamps: Vec<u32>,
    busy: Vec<bool>,
    next_stamp: u32,
    readbacks: VecDeque<u64>,
    /// Counters for the report.
    pub stats: VerifyStats,
    /// The first mismatches, described.
    pub mismatches: Vec<String>,
}

impl Verifier {
    /// Bookkeeping for units `range` of `io_size` bytes each, blocks of `block_size` bytes.
    pub fn new(
        seed: u64,
        block_size: u32,
        io_size: u32,
        range: Range<u64>,
        queue_depth: usize,
    ) -> Result<Self, PerfError> {
        let units = range.end.saturating_sub(range.start);
        if units > MAX_UNITS {
            return Err(PerfError::Config(format!(
                "--verify tracks at most {MAX_UNITS} units per connection ({units} asked): \
                 use a larger -o or more connections"
            )));
        }
        let len = usize::try_from(units).map_err(|_| PerfError::Config("range".into()))?;
        Ok(Self {
            seed,
            block_size: usize::try_from(block_size).unwrap_or(4096),
            blocks_per_unit: u64::from(io_size / block_size.max(1)),
            range,
            stamps: vec![0; len],
            busy: vec![false; len],
            next_stamp: 1,
            readbacks: VecDeque::with_capacity(queue_depth * 2),
            stats: VerifyStats::default(),
            mismatches: Vec::new(),
        })
    }

    fn index(&self, unit: u64) -> Option<usize> {
        unit.checked_sub(self.range.start)
            .filter(|_| unit < self.range.end)
            .and_then(|i| usize::try_from(i).ok())
    }

    /// Whether a command on `unit` is in flight.
    pub fn is_busy(&self, unit: u64) -> bool {
        self.index(unit)
            .and_then(|i| self.busy.get(i).copied())
            .unwrap_or(true)
    }

    fn set_busy(&mut self, unit: u64, busy: bool) {
        if let Some(b) = self.index(unit).and_then(|i| self.busy.get_mut(i)) {
            *b = busy;
        }
    }

    /// Marks `unit` as having a read in flight.
    pub fn begin_read(&mut self, unit: u64) {
        self.set_busy(unit, true);
    }

    /// Marks `unit` busy and fills `buf` (`io_size` bytes) with the blocks of a new write;
    /// returns the stamp to pass to [`Verifier::write_done`].
    pub fn begin_write(&mut self, unit: u64, buf: &mut [u8]) -> u32 {
        self.set_busy(unit, true);
        let stamp = self.next_stamp;
        self.next_stamp = if stamp >= UNKNOWN - 1 { 1 } else { stamp + 1 };
        let first_lba = unit * self.blocks_per_unit;
        for (lba, block) in (first_lba..).zip(buf.chunks_mut(self.block_size)) {
            fill_block(block, lba, self.seed, stamp);
        }
        stamp
    }

    /// A write of `unit` ended; on success its stamp is recorded and a read-back queued,
    /// on failure the unit's content becomes unknown.
    pub fn write_done(&mut self, unit: u64, stamp: u32, ok: bool) {
        let Some(i) = self.index(unit) else {
            return;
        };
        if let Some(s) = self.stamps.get_mut(i) {
            *s = if ok { stamp } else { UNKNOWN };
        }
        if ok {
            // Stays busy until its read-back completes.
            self.readbacks.push_back(unit);
        } else {
            self.set_busy(unit, false);
        }
    }

    /// The next unit to read back, if any (marked as a read in flight).
    pub fn next_readback(&mut self) -> Option<u64> {
        let unit = self.readbacks.pop_front()?;
        self.stats.readbacks += 1;
        Some(unit)
    }

    /// Checks the data read from `unit` (`None`: the read failed, nothing to check).
    pub fn read_done(&mut self, unit: u64, data: Option<&[u8]>) {
        self.set_busy(unit, false);
        let Some(data) = data else {
            return;
        };
        let expect = match self.index(unit).and_then(|i| self.stamps.get(i).copied()) {
            Some(0 | UNKNOWN) | None => Expect::Unwritten,
            Some(s) => Expect::Stamp(s),
        };
        let first_lba = unit * self.blocks_per_unit;
        for (lba, block) in (first_lba..).zip(data.chunks(self.block_size)) {
            self.stats.blocks_checked += 1;
            if let Err(m) = check_block(block, lba, self.seed, expect) {
                self.on_mismatch(lba, m);
            }
        }
    }

    fn on_mismatch(&mut self, lba: u64, m: Mismatch) {
        self.stats.mismatches += 1;
        if self.mismatches.len() < KEEP_MISMATCHES {
            let text = format!("LBA {lba}: {m}");
            tracing::error!("verify: {text}");
            self.mismatches.push(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier() -> Verifier {
        Verifier::new(5, 512, 4096, 10..20, 4).unwrap()
    }

    #[test]
    fn write_then_read_back_matches() {
        let mut v = verifier();
        let mut buf = vec![0; 4096];
        let stamp = v.begin_write(12, &mut buf);
        assert!(v.is_busy(12));
        v.write_done(12, stamp, true);
        assert_eq!(v.next_readback(), Some(12));
        assert!(v.is_busy(12), "busy until the read-back is done");
        v.read_done(12, Some(&buf));
        assert!(!v.is_busy(12));
        assert_eq!(v.stats.blocks_checked, 8);
        assert_eq!(v.stats.mismatches, 0);
    }

    #[test]
    fn stale_and_misplaced_data_are_caught() {
        let mut v = verifier();
        let mut old = vec![0; 4096];
        let s1 = v.begin_write(12, &mut old);
        v.write_done(12, s1, true);
        let mut new = vec![0; 4096];
        let s2 = v.begin_write(12, &mut new);
        v.write_done(12, s2, true);
        v.read_done(12, Some(&old));
        assert_eq!(v.stats.mismatches, 8, "stale data");
        v.read_done(13, Some(&new));
        assert_eq!(v.stats.mismatches, 16, "data of another unit");
        assert_eq!(v.mismatches.len(), KEEP_MISMATCHES);
        assert!(v.mismatches[0].contains("stamp"), "{}", v.mismatches[0]);
    }

    #[test]
    fn unwritten_and_failed_units_accept_zeros() {
        let mut v = verifier();
        v.read_done(15, Some(&[0; 4096]));
        let mut buf = vec![0; 4096];
        let s = v.begin_write(16, &mut buf);
        v.write_done(16, s, false);
        assert!(!v.is_busy(16));
        v.read_done(16, Some(&[0; 4096]));
        assert_eq!(v.stats.mismatches, 0);
        assert!(
            v.is_busy(99),
            "outside the range counts as busy: never chosen"
        );
        assert!(Verifier::new(0, 512, 512, 0..(MAX_UNITS + 1), 1).is_err());
    }
}
