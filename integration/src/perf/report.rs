//! [`PerfReport`]: the results of a run, per queue and in total, as a text table or JSON.

use std::fmt::Write as _;

use serde::Serialize;

use super::args::PerfConfig;
use super::stats::{ConnStats, Summary, VerifyStats};
use super::workload::Op;

/// Results of one queue (or the total, with `qid` 0).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QueueReport {
    /// Queue identifier (0 for the total).
    pub qid: u16,
    /// Reads and writes together.
    pub all: Summary,
    /// Reads only.
    pub read: Summary,
    /// Writes only.
    pub write: Summary,
    /// Failed commands.
    pub errors: u64,
}

impl QueueReport {
    fn of(stats: &ConnStats, seconds: f64) -> Self {
        Self {
            qid: stats.qid,
            all: stats.summary(seconds),
            read: stats.op_summary(Op::Read, seconds),
            write: stats.op_summary(Op::Write, seconds),
            errors: stats.errors,
        }
    }
}

/// What `--verify` found.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VerifyReport {
    /// Counts.
    #[serde(flatten)]
    pub stats: VerifyStats,
    /// The first mismatches, described.
    pub first_mismatches: Vec<String>,
}

/// Identity of the target measured.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TargetInfo {
    /// Model number.
    pub model: String,
    /// Serial number.
    pub serial: String,
    /// Firmware revision.
    pub firmware: String,
    /// Logical block size of the namespace.
    pub block_size: u32,
    /// Namespace size in blocks.
    pub blocks: u64,
    /// Queue size of each I/O queue.
    pub queue_size: u16,
}

/// The results of a run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PerfReport {
    /// The configuration.
    pub config: PerfConfig,
    /// The target.
    pub target: TargetInfo,
    /// Measured seconds.
    pub seconds: f64,
    /// Per queue.
    pub queues: Vec<QueueReport>,
    /// All queues.
    pub total: QueueReport,
    /// `--verify` results.
    pub verify: Option<VerifyReport>,
}

impl PerfReport {
    /// Builds the report from each connection's statistics.
    pub fn new(
        config: PerfConfig,
        target: TargetInfo,
        conns: &[ConnStats],
        mismatches: Vec<String>,
    ) -> Self {
        let seconds = config.duration.as_secs_f64();
        let mut total = ConnStats::new(0);
        for c in conns {
            total.merge(c);
        }
        let verify = config.verify.then_some(VerifyReport {
            stats: total.verify,
            first_mismatches: mismatches,
        });
        Self {
            queues: conns.iter().map(|c| QueueReport::of(c, seconds)).collect(),
            total: QueueReport::of(&total, seconds),
            seconds,
            verify,
            config,
            target,
        }
    }

    /// No failed command and no verification mismatch.
    pub fn passed(&self) -> bool {
        self.total.errors == 0 && self.verify.as_ref().is_none_or(|v| v.stats.mismatches == 0)
    }

    /// JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// The text table.
    pub fn to_text(&self) -> String {
        let c = &self.config;
        let mut out = self.headline();
        let _ = writeln!(
            out,
            "{:<12} {:>11} {:>10} {:>9} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}",
            "queue",
            "IOPS",
            "MiB/s",
            "avg us",
            "min us",
            "max us",
            "p50",
            "p90",
            "p99",
            "p99.9",
            "p99.99",
            "errors"
        );
        for q in &self.queues {
            row(&mut out, &format!("qid {}", q.qid), &q.all, q.errors);
        }
        row(&mut out, "total", &self.total.all, self.total.errors);
        if c.workload.is_mixed() {
            row(&mut out, "  reads", &self.total.read, 0);
            row(&mut out, "  writes", &self.total.write, 0);
        }
        if let Some(v) = &self.verify {
            let _ = writeln!(
                out,
                "verify: {} blocks checked, {} read-backs, {} mismatches",
                v.stats.blocks_checked, v.stats.readbacks, v.stats.mismatches
            );
            for m in &v.first_mismatches {
                let _ = writeln!(out, "  {m}");
            }
        }
        out
    }
}

impl PerfReport {
    /// The line describing the run.
    fn headline(&self) -> String {
        let c = &self.config;
        let digests = match (c.header_digest, c.data_digest) {
            (false, false) => "none",
            (true, false) => "hdr",
            (false, true) => "data",
            (true, true) => "hdr,data",
        };
        format!(
            "lamina-perf: {} {} nsid {} ({} x {} B blocks, {}), {} {} B, read {}%, QD {} x {} connection(s), {:.1} s + {:.1} s warm-up, digests {}{}\n",
            c.addr,
            c.subnqn,
            c.nsid,
            self.target.blocks,
            self.target.block_size,
            self.target.model,
            c.workload.name(),
            c.io_size,
            c.read_percent,
            c.queue_depth,
            c.connections,
            c.duration.as_secs_f64(),
            c.warmup.as_secs_f64(),
            digests,
            if c.verify { ", verify" } else { "" },
        )
    }
}

fn row(out: &mut String, name: &str, s: &Summary, errors: u64) {
    let _ = writeln!(
        out,
        "{:<12} {:>11.1} {:>10.2} {:>9.2} {:>9.2} {:>10.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>7}",
        name,
        s.iops,
        s.mib_s,
        s.avg_us,
        s.min_us,
        s.max_us,
        s.p50_us,
        s.p90_us,
        s.p99_us,
        s.p99_9_us,
        s.p99_99_us,
        errors
    );
}
