//! How a run is split across connections ([`ConnPlan`]): the namespace is cut into `-o`-sized
//! units; random workloads spread every connection over all of them, while sequential ones and
//! `--verify` give each connection its own stripe (so streams do not overlap and verification
//! never races another connection's write).

use std::ops::Range;

use super::PerfError;
use super::args::PerfConfig;
use super::rng::mix;
use super::workload::WorkloadKind;

/// The work of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnPlan {
    /// Queue identifier.
    pub qid: u16,
    /// Index into the live counters.
    pub live_index: usize,
    /// Namespace ID.
    pub nsid: u32,
    /// Logical block size.
    pub block_size: u32,
    /// I/O size.
    pub io_size: u32,
    /// Commands kept in flight.
    pub queue_depth: usize,
    /// Workload kind.
    pub kind: WorkloadKind,
    /// Read percentage.
    pub read_percent: u8,
    /// Seed of this connection.
    pub seed: u64,
    /// Units (of `io_size` bytes) it may touch.
    pub units: Range<u64>,
    /// `--verify`.
    pub verify: bool,
}

/// One plan per connection for a namespace of `blocks` blocks of `block_size` bytes.
pub fn plans(cfg: &PerfConfig, block_size: u32, blocks: u64) -> Result<Vec<ConnPlan>, PerfError> {
    if block_size == 0 || !cfg.io_size.is_multiple_of(block_size) {
        return Err(PerfError::Config(format!(
            "-o {} is not a multiple of the {block_size}-byte block size",
            cfg.io_size
        )));
    }
    let blocks_per_unit = u64::from(cfg.io_size / block_size);
    let total = blocks / blocks_per_unit;
    let conns = u64::from(cfg.connections);
    let striped = cfg.verify || !cfg.workload.is_random();
    let per_conn = if striped { total / conns } else { total };
    if per_conn == 0 {
        return Err(PerfError::Config(format!(
            "the namespace holds {total} units of {} bytes: too few for {conns} connection(s)",
            cfg.io_size
        )));
    }
    Ok((0..cfg.connections)
        .map(|i| {
            let start = if striped { u64::from(i) * per_conn } else { 0 };
            ConnPlan {
                qid: i + 1,
                live_index: usize::from(i),
                nsid: cfg.nsid,
                block_size,
                io_size: cfg.io_size,
                queue_depth: usize::from(cfg.queue_depth),
                kind: cfg.workload,
                read_percent: cfg.read_percent,
                seed: mix(&[cfg.seed, u64::from(i)]),
                units: start..start + per_conn,
                verify: cfg.verify,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perf::args::PerfArgs;
    use clap::Parser;

    fn cfg(args: &[&str]) -> PerfConfig {
        let mut full = vec!["lamina-perf", "-a", "127.0.0.1:1", "-n", "nqn.x"];
        full.extend_from_slice(args);
        PerfArgs::try_parse_from(full)
            .unwrap()
            .into_config()
            .unwrap()
    }

    #[test]
    fn random_shares_sequential_stripes() {
        let p = plans(&cfg(&["-c", "3", "-w", "randread"]), 4096, 3000).unwrap();
        assert!(p.iter().all(|c| c.units == (0..3000)));
        assert_ne!(p[0].seed, p[1].seed);
        let p = plans(&cfg(&["-c", "3", "-w", "write", "-o", "8k"]), 4096, 3000).unwrap();
        let ranges: Vec<_> = p.iter().map(|c| c.units.clone()).collect();
        assert_eq!(ranges, vec![0..500, 500..1000, 1000..1500]);
        assert_eq!(p[2].qid, 3);
        let p = plans(&cfg(&["-c", "2", "--verify"]), 512, 1000).unwrap();
        // 4 KiB units of 512-byte blocks: 125 units, 62 per connection.
        assert_eq!(p[1].units, 62..124);
    }

    #[test]
    fn refuses_misaligned_sizes_and_tiny_namespaces() {
        assert!(plans(&cfg(&["-o", "6k"]), 4096, 100).is_err());
        assert!(plans(&cfg(&["-c", "4", "-w", "read"]), 4096, 3).is_err());
    }
}
