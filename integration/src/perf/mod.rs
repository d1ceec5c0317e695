//! `lamina-perf`: an NVMe/TCP load generator on Lamina's host, in the spirit of
//! `spdk_nvme_perf` and fio.
//!
//! # Layout and threading
//!
//! The admin queue (bring-up, Keep Alive) runs on the caller's runtime. The I/O connections
//! are spread over worker threads, one per available CPU (so `taskset -c 1 lamina-perf` uses
//! one), each running a current-thread tokio runtime; every connection is one task driving
//! its own [`crate::host::OwnedQueue`] with the [`engine`] loop, without locks or cross-thread
//! hops. All connections start measuring at the same instant, after an optional warm-up.
//!
//! - [`args`]: the command line; [`plan`]: who touches which units; [`workload`] and [`rng`]:
//!   operations and offsets; [`pattern`] and [`verify`]: `--verify`; [`stats`], [`live`] and
//!   [`report`]: histograms, the per-second line and the final table or JSON.

pub mod args;
pub mod engine;
pub mod live;
pub mod pattern;
pub mod plan;
pub mod report;
pub mod rng;
pub mod stats;
pub mod verify;
mod workers;
pub mod workload;

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use args::{PerfArgs, PerfConfig};
pub use report::PerfReport;

use crate::host::{ConnectOptions, Controller, HostError};
use report::TargetInfo;

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum PerfError {
    /// Bad arguments, or arguments the target cannot serve.
    #[error("{0}")]
    Config(String),
    /// The host failed (connection, protocol, fatal queue error).
    #[error(transparent)]
    Host(#[from] HostError),
    /// Commands stopped completing.
    #[error("queue {qid}: {in_flight} command(s) without a completion for {after:?}")]
    Stalled {
        /// Queue identifier.
        qid: u16,
        /// Commands in flight.
        in_flight: usize,
        /// How long nothing completed.
        after: Duration,
    },
    /// A worker thread could not be started or died.
    #[error("worker: {0}")]
    Worker(String),
}

/// Longest wait for any completion before a run is declared stuck.
const STALL_LIMIT: Duration = Duration::from_secs(30);

/// Runs `cfg` against its target and returns the report. Prints a live line each second on
/// stderr when it is a terminal (and `--json` is off).
pub async fn run(cfg: PerfConfig) -> Result<PerfReport, PerfError> {
    let mut opts =
        ConnectOptions::new(&cfg.subnqn)?.with_digests(cfg.header_digest, cfg.data_digest);
    opts.io_queues = 0;
    // Unless asked to keep it, lets the target complete reads with C2HData SUCCESS (Linux's
    // host asks for this too; spdk_nvme_perf does not).
    opts.disable_sq_flow_control = !cfg.sq_flow_control;
    opts.max_transfer_bytes = cfg.io_size.max(64 * 1024);
    opts.kato_ms = 30_000;
    opts.io_queue_size = cfg.io_queue_size;
    if let Some(h) = &cfg.hostnqn {
        opts.hostnqn = lamina_protocol::nvme::Nqn::new(h)
            .map_err(|e| PerfError::Config(format!("--hostnqn: {e}")))?;
    }
    if let Some(path) = &cfg.tls_key {
        let text = std::fs::read_to_string(path)
            .map_err(|e| PerfError::Config(format!("--tls-key {}: {e}", path.display())))?;
        let psk = crate::host::TlsPsk::from_configured(
            &text,
            opts.hostnqn.as_str(),
            &cfg.subnqn,
            cfg.tls_identity,
        )
        .map_err(|e| PerfError::Config(format!("--tls-key {}: {e}", path.display())))?;
        opts.tls = Some(psk);
    }
    if let Some(d) = &cfg.dhchap {
        opts.dhchap = Some(dhchap(d)?);
    }
    let ctrl = Controller::connect(cfg.addr, opts).await?;
    let result = run_on(&ctrl, cfg).await;
    // A failed run still leaves the controller cleanly.
    let _ = ctrl.shutdown().await;
    result
}

/// The DH-HMAC-CHAP settings of `d`: the secrets read, the names checked.
fn dhchap(d: &args::DhchapFiles) -> Result<crate::host::Dhchap, PerfError> {
    use lamina_target::plane::auth::{chap::HashFn, dh::DhGroup};
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_owned())
            .map_err(|e| PerfError::Config(format!("{}: {e}", p.display())))
    };
    Ok(crate::host::Dhchap {
        secret: read(&d.key)?,
        ctrl_secret: d.ctrl_key.as_deref().map(read).transpose()?,
        hash: HashFn::from_name(&d.hash)
            .ok_or_else(|| PerfError::Config(format!("--dhchap-hash {}: not a hash", d.hash)))?,
        group: DhGroup::from_name(&d.group).ok_or_else(|| {
            PerfError::Config(format!("--dhchap-group {}: not a DH group", d.group))
        })?,
    })
}

/// Checks what the controller allows against `cfg`; returns the I/O queue size to use.
async fn check_limits(ctrl: &Controller, cfg: &PerfConfig) -> Result<u16, PerfError> {
    if cfg.io_size > ctrl.max_transfer() {
        return Err(PerfError::Config(format!(
            "-o {} exceeds the controller's largest transfer ({} bytes)",
            cfg.io_size,
            ctrl.max_transfer()
        )));
    }
    let granted = ctrl.request_io_queues(cfg.connections).await?;
    if granted < cfg.connections {
        return Err(PerfError::Config(format!(
            "the controller grants {granted} I/O queue(s), -c asks for {}",
            cfg.connections
        )));
    }
    let queue_size = ctrl.io_queue_size();
    if usize::from(queue_size) <= usize::from(cfg.queue_depth) {
        return Err(PerfError::Config(format!(
            "-q {} needs an I/O queue of {} entries; the controller allows {queue_size}",
            cfg.queue_depth,
            cfg.queue_depth + 1
        )));
    }
    Ok(queue_size)
}

async fn run_on(ctrl: &Controller, cfg: PerfConfig) -> Result<PerfReport, PerfError> {
    let ns = ctrl.namespace(cfg.nsid).await?;
    let queue_size = check_limits(ctrl, &cfg).await?;
    let plans = plan::plans(&cfg, ns.block_size, ns.blocks)?;
    let live = Arc::new(live::Live::new(plans.len()));
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let mut pool = workers::Pool::spawn(ctrl.io_connector(), plans, queue_size, &live, threads)?;
    pool.wait_connected().await?;
    let t0 = Instant::now();
    let timing = engine::Timing {
        warm_end: t0 + cfg.warmup,
        end: t0 + cfg.warmup + cfg.duration,
        stall_limit: STALL_LIMIT,
    };
    pool.go(timing);
    let show_live = !cfg.json && std::io::stderr().is_terminal();
    let results = if show_live {
        let printer = live::print_every_second(&live, t0, timing.warm_end, timing.end);
        let (results, ()) = tokio::join!(pool.results(), printer);
        results?
    } else {
        pool.results().await?
    };
    let id = ctrl.identity();
    let target = TargetInfo {
        model: id.model_number.clone(),
        serial: id.serial_number.clone(),
        firmware: id.firmware_revision.clone(),
        block_size: ns.block_size,
        blocks: ns.blocks,
        queue_size,
    };
    let mut mismatches = Vec::new();
    let mut stats = Vec::with_capacity(results.len());
    for r in results {
        mismatches.extend(r.mismatches);
        stats.push(r.stats);
    }
    stats.sort_by_key(|s| s.qid);
    Ok(PerfReport::new(cfg, target, &stats, mismatches))
}
