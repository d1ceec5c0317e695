//! A session-level fuzzer of NVMe/TCP targets: whole valid sessions (an admin queue and its
//! I/O queues doing real work), mutated at the level of their steps and of their bytes, run
//! over TCP against a live target, with a well-behaved host checking between sessions that
//! the target still serves (`lamina-session-fuzz`; a bounded run is a test). It finds what
//! single-PDU fuzzing cannot: state reached only after a Connect, an enable and a few
//! commands, and what a broken host leaves behind when it hangs up.
//!
//! * [`script`]: valid sessions and their encoding.
//! * [`mutate`]: step, byte and segmentation mutations.
//! * [`driver`]: running one session.

pub mod driver;
pub mod mutate;
pub mod script;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::host::{ConnectOptions, Controller, HostError};

/// A small deterministic generator (xorshift64*), so a seed replays a run.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// One of `choices`.
    pub fn pick<T: Copy + Default>(&mut self, choices: &[T]) -> T {
        let i = usize::try_from(self.below(choices.len() as u64)).unwrap_or(0);
        choices.get(i).copied().unwrap_or_default()
    }
}

/// A fuzzing run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The target's NVMe/TCP address.
    pub target: SocketAddr,
    /// The subsystem and host to connect as.
    pub opts: ConnectOptions,
    /// How long to run.
    pub duration: Duration,
    /// Seed of the run.
    pub seed: u64,
    /// One PDU in this many is mutated.
    pub mutate_one_in: u64,
    /// A well-behaved host checks the target every this many sessions.
    pub probe_every: u64,
    /// The target's PID, to follow its resident memory (an external target).
    pub pid: Option<u32>,
}

/// What a run did.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Sessions run.
    pub sessions: u64,
    /// PDUs sent.
    pub pdus_sent: u64,
    /// PDUs received.
    pub pdus_received: u64,
    /// C2HTermReqs received.
    pub term_reqs: u64,
    /// Malformed PDUs from the target (bugs).
    pub malformed: u64,
    /// Probes that passed.
    pub probes: u64,
    /// Resident memory of the target at the first and the last probe, in bytes.
    pub rss_first: u64,
    /// See `rss_first`.
    pub rss_last: u64,
    /// The largest resident memory seen.
    pub rss_max: u64,
}

/// Resident memory of process `pid` (this process when `None`), from /proc.
pub fn rss_bytes(pid: Option<u32>) -> u64 {
    let path = pid.map_or_else(
        || "/proc/self/status".to_owned(),
        |p| format!("/proc/{p}/status"),
    );
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A well-behaved host: connects, writes and reads back a block, disconnects. Its keep-alive
/// timeout is long: on a loaded machine bringing a controller up (a dozen round trips before
/// the first Keep Alive) can take seconds, and the probe checks liveness, not timing.
pub async fn probe(target: SocketAddr, opts: &ConnectOptions, seed: u64) -> Result<(), HostError> {
    let mut opts = opts.clone();
    opts.kato_ms = opts.kato_ms.max(30_000);
    let ctrl = Controller::connect(target, opts).await?;
    let ns = ctrl.namespace(1).await?;
    let q = ctrl.io_queue(0)?;
    let slba = (seed % 1024) * 8 + (1 << 20) / u64::from(ns.block_size);
    let data = Bytes::from(vec![u8::try_from(seed % 251).unwrap_or(1); 4096]);
    q.write(&ns, slba, data.clone(), false).await?;
    let blocks = ns.blocks_of(4096)?;
    let back = q.read(&ns, slba, blocks, BytesMut::new()).await?;
    if back.freeze() != data {
        return Err(HostError::InvalidRequest(
            "probe read back other data".into(),
        ));
    }
    ctrl.shutdown().await
}

/// Runs sessions until `cfg.duration` is over; `Err` when a probe fails or the target sent a
/// malformed PDU.
pub async fn run(cfg: &Config) -> Result<Report, (String, Report)> {
    let mut rng = Rng::new(cfg.seed);
    let mut r = Report::default();
    let started = Instant::now();
    let mut donor = script::session(&mut rng, 1 << 18);
    while started.elapsed() < cfg.duration {
        let mut scripts = script::session(&mut rng, 1 << 18);
        mutate::steps(&mut rng, &mut scripts, &donor);
        if rng.below(16) == 0 {
            donor.clone_from(&scripts);
        }
        let out = driver::run(&mut rng, cfg.target, &cfg.opts, scripts, cfg.mutate_one_in).await;
        r.sessions += 1;
        r.pdus_sent += out.sent;
        r.pdus_received += out.received;
        r.term_reqs += out.term_reqs;
        r.malformed += out.malformed;
        if out.malformed > 0 {
            return Err((
                format!("session {}: the target sent a malformed PDU", r.sessions),
                r,
            ));
        }
        if r.sessions % cfg.probe_every.max(1) == 0 {
            let p = tokio::time::timeout(
                Duration::from_secs(30),
                probe(cfg.target, &cfg.opts, r.sessions),
            );
            match p.await {
                Ok(Ok(())) => r.probes += 1,
                Ok(Err(e)) => {
                    return Err((
                        format!("after {} sessions the probe failed: {e}", r.sessions),
                        r,
                    ));
                }
                Err(_) => return Err((format!("after {} sessions the probe hung", r.sessions), r)),
            }
            let rss = rss_bytes(cfg.pid);
            if r.rss_first == 0 {
                r.rss_first = rss;
            }
            r.rss_last = rss;
            r.rss_max = r.rss_max.max(rss);
        }
    }
    Ok(r)
}
