//! `framework_get_reactors` and `thread_get_stats`, describing Lamina's runtime as it is.
//!
//! SPDK pins one reactor per core, each polling its lightweight threads. Lamina runs on a tokio
//! multi-threaded runtime instead: worker threads that sleep in epoll until a socket or timer
//! wakes them, with tasks (connections, queues, RPC calls) moving between workers. So each
//! worker is reported as a reactor (`lcore` is the worker's index, not a pinned core) in
//! interrupt mode (`in_interrupt`: true, it is event-driven), with its busy time from tokio's
//! runtime metrics and its idle time the rest of its life; `lw_threads` is empty, tasks
//! belonging to no worker. `thread_get_stats` reports the same workers as threads, with no
//! pollers (Lamina has none). Ticks are nanoseconds (`tick_rate` 1e9). `cpumask` is the set of
//! CPUs the process may run on, since workers are not pinned.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use super::dispatch::Methods;
use super::fields::NoParams;
use crate::mgmt::context::Target;
use crate::plane::stats::TICK_RATE;

/// Registers the methods.
pub fn register(m: &mut Methods, t: &Arc<Target>) {
    super::reg(
        m,
        t,
        "framework_get_reactors",
        |_t, _p: NoParams| async move {
            let workers = workers();
            let reactors: Vec<Value> = workers
                .iter()
                .map(|w| {
                    json!({
                        "lcore": w.index,
                        "busy": w.busy_ns,
                        "idle": w.idle_ns,
                        "in_interrupt": true,
                        "park_count": w.parks,
                        "lw_threads": [],
                    })
                })
                .collect();
            Ok(json!({
                "tick_rate": TICK_RATE,
                "pid": std::process::id(),
                "runtime": "tokio multi-thread",
                "alive_tasks": tokio::runtime::Handle::current().metrics().num_alive_tasks(),
                "reactors": reactors,
            }))
        },
    );
    super::reg(m, t, "thread_get_stats", |_t, _p: NoParams| async move {
        let mask = cpumask();
        let threads: Vec<Value> = workers()
            .iter()
            .map(|w| {
                json!({
                    "name": format!("lamina-worker-{}", w.index),
                    "id": w.index + 1,
                    "cpumask": mask,
                    "busy": w.busy_ns,
                    "idle": w.idle_ns,
                    "in_interrupt": true,
                    "active_pollers_count": 0,
                    "timed_pollers_count": 0,
                    "paused_pollers_count": 0,
                })
            })
            .collect();
        Ok(json!({"tick_rate": TICK_RATE, "threads": threads}))
    });
}

/// One runtime worker's figures.
struct Worker {
    index: usize,
    busy_ns: u64,
    idle_ns: u64,
    parks: u64,
}

/// When the runtime's workers started, near enough: the first time anything asked. Set at
/// start-up by [`mark_start`] so idle time counts from then.
static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// Records the runtime's start (the server calls it once when it starts).
pub fn mark_start() {
    let _ = STARTED.get_or_init(Instant::now);
}

fn workers() -> Vec<Worker> {
    let metrics = tokio::runtime::Handle::current().metrics();
    let alive =
        u64::try_from(STARTED.get_or_init(Instant::now).elapsed().as_nanos()).unwrap_or(u64::MAX);
    (0..metrics.num_workers())
        .map(|i| {
            let busy =
                u64::try_from(metrics.worker_total_busy_duration(i).as_nanos()).unwrap_or(u64::MAX);
            Worker {
                index: i,
                busy_ns: busy,
                idle_ns: alive.saturating_sub(busy),
                parks: metrics.worker_park_count(i),
            }
        })
        .collect()
}

/// The process's allowed CPUs as a hex mask (`Cpus_allowed` in `/proc/self/status`).
fn cpumask() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed:"))
                .map(|m| m.trim().replace(',', "").trim_start_matches('0').to_owned())
        })
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "1".to_owned())
}
