//! Prometheus metrics: what `GET /metrics` returns (text exposition format 0.0.4).
//!
//! Rendering runs a custom collector ([`LaminaCollector`]) that reads the hot-path counters of
//! `crate::plane::stats` at scrape time from a snapshot of refcounted handles (subsystems and their
//! namespaces, controllers, lvstores, lvols), plus the `prometheus` crate's process collector.
//! A scrape racing a delete sees the object or not, never freed state (Mayastor's exporter
//! crashed its engine exactly there, mayastor#2055), and the series of a deleted lvol,
//! namespace or subsystem are gone from the next scrape. Counting costs the I/O path a few
//! relaxed atomics per command and nothing else (see `crate::plane::stats`).
//!
//! Labels are bounded by configuration: subsystem NQN, NSID, lvstore and lvol names, UUIDs,
//! opcode class, NVMe status, FES, PDU type, RPC method (registered names, else `unknown`).
//! Never a command ID, an LBA, a controller ID or a host port.
//!
//! # Metrics
//!
//! Build and process:
//! - `lamina_build_info{version, git_commit}` gauge, always 1 (`git_commit` is
//!   `git rev-parse --short HEAD` at build time, or `unknown`).
//! - `lamina_io_stats_enabled` gauge: 0 when the `io_stats` setting turned per-command
//!   counting off (then the command, byte, latency and PDU counters stand still).
//! - `process_cpu_seconds_total`, `process_resident_memory_bytes`,
//!   `process_virtual_memory_bytes`, `process_open_fds`, `process_max_fds`,
//!   `process_start_time_seconds`, `process_threads`: the standard process collector.
//!
//! Subsystems (label `subsystem`, the NQN; the discovery subsystem included):
//! - `lamina_subsystem_namespaces` gauge: namespaces in the subsystem.
//! - `lamina_controllers` gauge: controllers connected.
//! - `lamina_admin_commands_total` counter: admin commands submitted.
//!
//! Namespaces (labels `subsystem`, `nsid`):
//! - `lamina_namespace_info{subsystem, nsid, bdev, uuid}` gauge, always 1: the backing bdev
//!   (lvol alias or bdev name) and its UUID, which joins with the `uuid` of `lamina_lvol_*`.
//! - `lamina_namespace_size_bytes` gauge.
//! - `lamina_commands_total{opcode}` counter: I/O commands completed, failed ones included;
//!   `opcode` is `read`, `write`, `flush`, `write_zeroes`, `dsm` or `other` (Compare).
//! - `lamina_command_duration_seconds{opcode}` histogram: dispatch to completion, buckets
//!   10 µs to 10 s (1-2-5 per decade).
//! - `lamina_command_errors_total{status}` counter: commands failed, by NVMe status
//!   (`invalid_field`, `lba_out_of_range`, `write_protected`, `capacity_exceeded`,
//!   `namespace_not_ready`, `write_fault`, `unrecovered_read`, ... and `other`).
//! - `lamina_read_bytes_total`, `lamina_written_bytes_total` counters.
//! - `lamina_commands_in_flight` gauge.
//!
//! Transport (target-wide):
//! - `lamina_connections` gauge and `lamina_connections_accepted_total` counter.
//! - `lamina_queues{type}` gauge: queues bound to a controller, `admin` or `io`.
//! - `lamina_keep_alive_expiries_total` counter.
//! - `lamina_connections_unconnected` gauge: connections that have not completed a Fabrics
//!   Connect; `lamina_connections_refused_total{reason}` counter: closed at accept because a
//!   limit was full of connected queues (`total`, `per_source`);
//!   `lamina_connections_evicted_total` counter: unconnected connections closed to make room;
//!   `lamina_connect_timeouts_total` counter: no ICReq and Connect within the connect timeout
//!   (see `crate::transport::admission` for the limits).
//! - `lamina_connection_panics_total` counter: connection tasks that panicked (caught; that
//!   connection closed).
//! - `lamina_zero_copy_sends_total{outcome}` counter: `MSG_ZEROCOPY` sends completed,
//!   `zero_copy` (sent from the buffer itself) or `copied` (the kernel copied after all, as
//!   over loopback; see `--zero-copy-min`).
//! - `lamina_term_reqs_sent_total{fes}` counter: C2HTermReqs by Fatal Error Status
//!   (`invalid_header_field`, `pdu_sequence_error`, `header_digest_error`,
//!   `data_out_of_range`, `data_limit_exceeded`, `unsupported_parameter`, `other`).
//! - `lamina_digest_errors_total{type}` counter: `header` or `data` CRC32C mismatches.
//! - `lamina_authentications_total{result}` counter: DH-HMAC-CHAP transactions, `success` or
//!   the reason one failed.
//! - `lamina_tls_handshakes_total{result}` counter: TLS handshakes on secure-channel ports,
//!   `success` or the reason one failed.
//! - `lamina_pdus_received_total{type}` counter (`ic_req`, `h2c_term_req`, `capsule_cmd`,
//!   `h2c_data`, `other`) and `lamina_pdus_sent_total{type}` counter (`ic_resp`,
//!   `c2h_term_req`, `capsule_resp`, `c2h_data`, `r2t`, `other`).
//!
//! Lvstores (label `lvstore`):
//! - `lamina_lvstore_info{lvstore, uuid, bdev}` gauge, always 1.
//! - `lamina_lvstore_data_clusters`, `lamina_lvstore_free_clusters` gauges.
//! - `lamina_lvstore_cluster_size_bytes`, `lamina_lvstore_size_bytes`,
//!   `lamina_lvstore_free_bytes` gauges.
//! - `lamina_lvstore_lvols` gauge: lvols, snapshots and clones included.
//!
//! Lvols (labels `lvstore`, `lvol`, `uuid`):
//! - `lamina_lvol_size_bytes` gauge.
//! - `lamina_lvol_allocated_clusters`, `lamina_lvol_allocated_bytes` gauges.
//! - `lamina_lvol_thin_provisioned`, `lamina_lvol_snapshot`, `lamina_lvol_clone`,
//!   `lamina_lvol_read_only` gauges, 0 or 1.
//!
//! Configuration:
//! - `lamina_config_pending_entries` gauge: configuration entries not applied yet (a device
//!   missing at start-up, and what depends on it; see `crate::mgmt::config`). While it is above 0,
//!   `/readyz` answers 503 and `lamina config pending` says what waits and why.
//!
//! Management (series appear once a method has been called):
//! - `lamina_rpc_requests_total{method, result}` counter, `result` `ok` or `error`.
//! - `lamina_rpc_request_duration_seconds{method}` histogram, buckets 100 µs to 60 s.
//!
//! The definitions live in [`catalog`]; the tests check that every one of them is exposed
//! with its type and labels, that nothing else is, and that this list names them all.

pub mod catalog;
pub mod collector;
pub mod family;
pub mod nvmf;
pub mod transport;
pub mod volumes;

use std::sync::Arc;

use prometheus::proto::MetricFamily;
use prometheus::{Encoder, Registry, TextEncoder};

pub use collector::LaminaCollector;

use crate::mgmt::context::Target;
use crate::mgmt::rpc::dispatch::Observer;
use crate::plane::stats::RpcStats;

/// The commit Lamina was built from (`git rev-parse --short HEAD`), or `unknown`.
pub const GIT_COMMIT: &str = env!("LAMINA_GIT_COMMIT");

/// Why metrics could not be registered or rendered.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The `prometheus` crate refused a descriptor or a family.
    #[error("prometheus: {0}")]
    Prometheus(#[from] prometheus::Error),
    /// The encoder produced something that is not UTF-8.
    #[error("exposition is not UTF-8: {0}")]
    Utf8(#[from] std::string::FromUtf8Error),
}

/// The registry behind `/metrics`: Lamina's collector plus the process collector.
#[derive(Clone, Debug)]
pub struct Exporter {
    registry: Registry,
}

impl Exporter {
    /// An exporter of `target` and, if given, of the RPC counters.
    pub fn new(target: &Arc<Target>, rpc: Option<Arc<RpcStats>>) -> Result<Self, MetricsError> {
        let registry = Registry::new();
        registry.register(Box::new(LaminaCollector::new(target, rpc)?))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Self { registry })
    }

    /// Every family, sorted by name, each sorted by label values.
    pub fn gather(&self) -> Vec<MetricFamily> {
        self.registry.gather()
    }

    /// The text exposition.
    pub fn render(&self) -> Result<String, MetricsError> {
        let mut out = Vec::with_capacity(64 * 1024);
        TextEncoder::new().encode(&self.gather(), &mut out)?;
        Ok(String::from_utf8(out)?)
    }
}

/// An RPC observer (see `Methods::set_observer`) counting into `stats`.
pub fn rpc_observer(stats: &Arc<RpcStats>) -> Observer {
    let stats = stats.clone();
    Arc::new(move |method, outcome, seconds| stats.observe(method, outcome.is_ok(), seconds))
}

#[cfg(test)]
mod tests;
