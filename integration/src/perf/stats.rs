//! Measurements of one connection ([`ConnStats`]): an HDR histogram of latencies (ns) and
//! counts per operation, plus the [`Summary`] (IOPS, MiB/s, average/min/max and percentiles)
//! computed from them. Histograms are sized once; recording does not allocate.

use hdrhistogram::Histogram;
use serde::Serialize;

use super::workload::Op;

/// Highest latency the histograms track, in ns (60 s; higher values are clamped).
const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// Latencies and counts of one operation type.
#[derive(Debug, Clone)]
pub struct OpStats {
    /// Latency histogram in nanoseconds.
    pub hist: Histogram<u64>,
    /// Completed operations.
    pub ios: u64,
    /// Bytes moved.
    pub bytes: u64,
}

impl OpStats {
    fn new() -> Self {
        Self {
            // 3 significant digits: 0.1% resolution at every magnitude.
            hist: Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
                .expect("constant histogram bounds are valid"),
            ios: 0,
            bytes: 0,
        }
    }

    fn record(&mut self, latency_ns: u64, bytes: u64) {
        self.hist
            .saturating_record(latency_ns.clamp(1, MAX_LATENCY_NS));
        self.ios += 1;
        self.bytes += bytes;
    }

    fn reset(&mut self) {
        self.hist.reset();
        self.ios = 0;
        self.bytes = 0;
    }

    fn merge(&mut self, other: &Self) {
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.hist.add(&other.hist);
        self.ios += other.ios;
        self.bytes += other.bytes;
    }
}

/// What `--verify` found on one connection.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct VerifyStats {
    /// Blocks checked.
    pub blocks_checked: u64,
    /// Blocks that did not match.
    pub mismatches: u64,
    /// Read-backs issued after writes.
    pub readbacks: u64,
}

impl VerifyStats {
    fn merge(&mut self, other: &Self) {
        self.blocks_checked += other.blocks_checked;
        self.mismatches += other.mismatches;
        self.readbacks += other.readbacks;
    }
}

/// Everything measured on one connection during the measured window.
#[derive(Debug, Clone)]
pub struct ConnStats {
    /// Queue identifier (0 for a total).
    pub qid: u16,
    /// Reads.
    pub read: OpStats,
    /// Writes.
    pub write: OpStats,
    /// Commands that completed with an error status or failed.
    pub errors: u64,
    /// Verification results (whole run, warm-up included).
    pub verify: VerifyStats,
}

impl ConnStats {
    /// Empty statistics for queue `qid`.
    pub fn new(qid: u16) -> Self {
        Self {
            qid,
            read: OpStats::new(),
            write: OpStats::new(),
            errors: 0,
            verify: VerifyStats::default(),
        }
    }

    /// Records one completed operation.
    pub fn record(&mut self, op: Op, latency_ns: u64, bytes: u64) {
        match op {
            Op::Read => self.read.record(latency_ns, bytes),
            Op::Write => self.write.record(latency_ns, bytes),
        }
    }

    /// Forgets the warm-up (verification counts are kept: they cover the whole run).
    pub fn reset_measurements(&mut self) {
        self.read.reset();
        self.write.reset();
        self.errors = 0;
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Self) {
        self.read.merge(&other.read);
        self.write.merge(&other.write);
        self.errors += other.errors;
        self.verify.merge(&other.verify);
    }

    /// Summary over both operations for a window of `seconds`.
    pub fn summary(&self, seconds: f64) -> Summary {
        let mut all = self.read.clone();
        all.merge(&self.write);
        Summary::of(&all, seconds)
    }

    /// Summary of one operation.
    pub fn op_summary(&self, op: Op, seconds: f64) -> Summary {
        match op {
            Op::Read => Summary::of(&self.read, seconds),
            Op::Write => Summary::of(&self.write, seconds),
        }
    }
}

/// Throughput and latency over a window.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Summary {
    /// Operations completed.
    pub ios: u64,
    /// Operations per second.
    pub iops: f64,
    /// MiB per second.
    pub mib_s: f64,
    /// Mean latency in µs.
    pub avg_us: f64,
    /// Lowest latency in µs.
    pub min_us: f64,
    /// Highest latency in µs.
    pub max_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p99_9_us: f64,
    /// 99.99th percentile.
    pub p99_99_us: f64,
}

impl Summary {
    fn of(stats: &OpStats, seconds: f64) -> Self {
        if stats.ios == 0 {
            return Self::default();
        }
        let h = &stats.hist;
        let us = |ns: u64| ns as f64 / 1000.0;
        let secs = seconds.max(f64::EPSILON);
        Self {
            ios: stats.ios,
            iops: stats.ios as f64 / secs,
            mib_s: stats.bytes as f64 / secs / (1024.0 * 1024.0),
            avg_us: h.mean() / 1000.0,
            min_us: us(h.min()),
            max_us: us(h.max()),
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p99_9_us: us(h.value_at_quantile(0.999)),
            p99_99_us: us(h.value_at_quantile(0.9999)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_known_latencies() {
        let mut s = ConnStats::new(1);
        for i in 1..=1000u64 {
            s.record(Op::Read, i * 1000, 4096);
        }
        let sum = s.summary(2.0);
        assert_eq!(sum.ios, 1000);
        assert!((sum.iops - 500.0).abs() < 1e-9);
        assert!((sum.mib_s - 1000.0 * 4096.0 / 2.0 / 1_048_576.0).abs() < 1e-9);
        assert!((sum.min_us - 1.0).abs() < 0.01);
        assert!((sum.max_us - 1000.0).abs() < 1.0);
        assert!((sum.p50_us - 500.0).abs() < 1.0, "{}", sum.p50_us);
        assert!((sum.p99_us - 990.0).abs() < 1.0, "{}", sum.p99_us);
        assert!((sum.avg_us - 500.5).abs() < 1.0);
    }

    #[test]
    fn merge_reset_and_empty() {
        let mut a = ConnStats::new(1);
        let mut b = ConnStats::new(2);
        a.record(Op::Read, 10_000, 512);
        b.record(Op::Write, 20_000, 512);
        b.errors = 2;
        b.verify.mismatches = 1;
        a.merge(&b);
        assert_eq!(a.summary(1.0).ios, 2);
        assert_eq!(a.op_summary(Op::Write, 1.0).ios, 1);
        assert_eq!(a.errors, 2);
        a.reset_measurements();
        assert_eq!(a.summary(1.0), Summary::default());
        assert_eq!(
            a.verify.mismatches, 1,
            "verification survives the warm-up reset"
        );
    }
}
