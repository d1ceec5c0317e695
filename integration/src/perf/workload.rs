//! What `lamina-perf` issues: the workload kinds of `-w`, and the per-connection
//! [`Generator`] of operations and offsets. Offsets are whole I/O units (`-o` bytes, aligned),
//! drawn uniformly for random workloads and in order (wrapping) for sequential ones, within
//! the connection's range of units.

use serde::Serialize;

use super::rng::Rng;

/// `-w`: the access pattern and operation mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    /// Sequential reads.
    Read,
    /// Sequential writes.
    Write,
    /// Random reads.
    Randread,
    /// Random writes.
    Randwrite,
    /// Sequential reads and writes mixed by `-M`.
    Rw,
    /// Random reads and writes mixed by `-M` (as fio's and spdk_nvme_perf's `randrw`).
    Randrw,
}

impl WorkloadKind {
    /// The name `-w` takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Randread => "randread",
            Self::Randwrite => "randwrite",
            Self::Rw => "rw",
            Self::Randrw => "randrw",
        }
    }

    /// Whether offsets are random.
    pub fn is_random(self) -> bool {
        matches!(self, Self::Randread | Self::Randwrite | Self::Randrw)
    }

    /// Percentage of reads, given `-M` for the mixed kinds.
    pub fn read_percent(self, mix: u8) -> u8 {
        match self {
            Self::Read | Self::Randread => 100,
            Self::Write | Self::Randwrite => 0,
            Self::Rw | Self::Randrw => mix.min(100),
        }
    }

    /// Whether `-M` applies.
    pub fn is_mixed(self) -> bool {
        matches!(self, Self::Rw | Self::Randrw)
    }
}

/// One operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Read.
    Read,
    /// Write.
    Write,
}

/// Operations and units for one connection.
#[derive(Debug, Clone)]
pub struct Generator {
    rng: Rng,
    random: bool,
    read_percent: u8,
    first_unit: u64,
    units: u64,
    next_seq: u64,
}

impl Generator {
    /// A generator over units `first_unit .. first_unit + units` (at least one unit).
    pub fn new(kind: WorkloadKind, mix: u8, seed: u64, first_unit: u64, units: u64) -> Self {
        Self {
            rng: Rng::new(seed),
            random: kind.is_random(),
            read_percent: kind.read_percent(mix),
            first_unit,
            units: units.max(1),
            next_seq: 0,
        }
    }

    /// The next operation.
    pub fn next_op(&mut self) -> Op {
        match self.read_percent {
            100 => Op::Read,
            0 => Op::Write,
            p => {
                if self.rng.below(100) < u64::from(p) {
                    Op::Read
                } else {
                    Op::Write
                }
            }
        }
    }

    /// The next unit (absolute index of an `-o`-sized unit of the namespace).
    pub fn next_unit(&mut self) -> u64 {
        let offset = if self.random {
            self.rng.below(self.units)
        } else {
            let o = self.next_seq;
            self.next_seq = (self.next_seq + 1) % self.units;
            o
        };
        self.first_unit + offset
    }

    /// The range of units this generator draws from.
    pub fn range(&self) -> std::ops::Range<u64> {
        self.first_unit..self.first_unit + self.units
    }

    /// The generator's random source (for write data).
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_wraps_within_the_range() {
        let mut g = Generator::new(WorkloadKind::Write, 0, 1, 10, 3);
        let units: Vec<u64> = (0..7).map(|_| g.next_unit()).collect();
        assert_eq!(units, vec![10, 11, 12, 10, 11, 12, 10]);
        assert_eq!(g.next_op(), Op::Write);
    }

    #[test]
    fn random_stays_within_the_range() {
        let mut g = Generator::new(WorkloadKind::Randread, 0, 9, 100, 50);
        for _ in 0..10_000 {
            assert!(g.range().contains(&g.next_unit()));
        }
        assert_eq!(g.next_op(), Op::Read);
    }

    #[test]
    fn mix_follows_the_read_percentage() {
        let mut g = Generator::new(WorkloadKind::Randrw, 70, 5, 0, 1000);
        let reads = (0..100_000).filter(|_| g.next_op() == Op::Read).count();
        assert!((69_000..71_000).contains(&reads), "{reads}");
        assert_eq!(WorkloadKind::Rw.read_percent(150), 100);
        assert!(!WorkloadKind::Rw.is_random());
        use clap::ValueEnum;
        for k in WorkloadKind::value_variants() {
            assert_eq!(k.to_possible_value().unwrap().get_name(), k.name());
        }
    }
}
