//! Counters on the hot paths: per namespace (commands, bytes, errors, latency, in flight), per
//! subsystem (admin commands), per target (connections, queues, keep-alive expiries, TermReqs,
//! digest errors, PDUs) and per RPC method (calls, results, latency).
//!
//! Every counter is a relaxed atomic in a fixed array: no lock, no allocation, no map lookup on
//! the I/O path. The objects that own them (a `Namespace`, a `Subsystem`, the `Target`) are what
//! a scrape iterates (see `crate::observe::metrics`), so the series of a removed namespace disappear
//! with it. A read or write costs two clock reads and three relaxed read-modify-writes on its
//! namespace (one latency bucket, the latency sum, the byte counter): the command count is the
//! histogram's count, and commands in flight are the namespace gate's own count. Target-wide
//! PDU counters are sharded per thread ([`shard`]) so connections on different cores do not
//! fight over one cache line.
//!
//! # Switching counting off
//!
//! [`set_counting`] turns the per-command counters off process-wide (the benchmark that
//! measures their cost uses it; the `io_stats` setting does it at start-up, see
//! `crate::settings`). The I/O path checks the switch once per command, before it reads the
//! clock, so a command is either fully counted or not at all. Connection and queue gauges,
//! commands in flight, TermReqs, digest errors and admin and RPC counters are always kept: they
//! are not per I/O.

pub mod histogram;
pub mod iostat;
pub mod rpc;
pub mod shard;
pub mod spdk_histogram;
pub mod transport;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use lamina_protocol::nvme::StatusCode;

pub use histogram::{AtomicHistogram, HistogramSnapshot};
pub use iostat::{IoCounts, ResetMode};
pub use rpc::RpcStats;
pub use spdk_histogram::SpdkHistogram;
pub use transport::{FES_SLOTS, PDU_TYPES, TransportStats};

static COUNTING: AtomicBool = AtomicBool::new(true);

/// Ticks per second of every tick count the RPC statistics report (SPDK's `tick_rate`):
/// Lamina's ticks are nanoseconds.
pub const TICK_RATE: u64 = 1_000_000_000;

/// Turns per-command counting (namespace statistics, PDU counts) on or off, process-wide.
pub fn set_counting(on: bool) {
    COUNTING.store(on, Ordering::Relaxed);
}

/// Whether per-command counting is on (the default).
#[inline]
pub fn is_counting() -> bool {
    COUNTING.load(Ordering::Relaxed)
}

/// Command classes counted per namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpClass {
    /// Read.
    Read,
    /// Write.
    Write,
    /// Flush.
    Flush,
    /// Write Zeroes.
    WriteZeroes,
    /// Dataset Management.
    Dsm,
    /// Compare and anything else.
    Other,
}

impl OpClass {
    /// Every class, in index order.
    pub const ALL: [Self; 6] = [
        Self::Read,
        Self::Write,
        Self::Flush,
        Self::WriteZeroes,
        Self::Dsm,
        Self::Other,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Flush => "flush",
            Self::WriteZeroes => "write_zeroes",
            Self::Dsm => "dsm",
            Self::Other => "other",
        }
    }

    /// The class of SPDK's I/O type name (`bdev_enable_histogram`'s `opc`).
    pub fn from_spdk_io_type(name: &str) -> Option<Self> {
        Some(match name {
            "read" => Self::Read,
            "write" => Self::Write,
            "flush" => Self::Flush,
            "write_zeroes" => Self::WriteZeroes,
            "unmap" => Self::Dsm,
            "compare" => Self::Other,
            _ => return None,
        })
    }

    fn index(self) -> usize {
        match self {
            Self::Read => 0,
            Self::Write => 1,
            Self::Flush => 2,
            Self::WriteZeroes => 3,
            Self::Dsm => 4,
            Self::Other => 5,
        }
    }
}

/// Command latency bucket bounds in nanoseconds: 10 µs to 10 s, 1-2-5 per decade.
pub static LATENCY_BOUNDS_NS: [u64; 19] = [
    10_000,
    20_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    20_000_000,
    50_000_000,
    100_000_000,
    200_000_000,
    500_000_000,
    1_000_000_000,
    2_000_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// A command latency histogram.
pub type Latency = AtomicHistogram<19>;

/// The NVMe statuses counted per namespace with their label; any other failure is `other`.
/// These are the statuses the I/O path returns (see `io::status`).
pub const ERROR_STATUSES: [(StatusCode, &str); 13] = [
    (StatusCode::INVALID_FIELD, "invalid_field"),
    (StatusCode::INTERNAL_ERROR, "internal_error"),
    (StatusCode::INVALID_NAMESPACE_OR_FORMAT, "invalid_namespace"),
    (StatusCode::DATA_SGL_LENGTH_INVALID, "sgl_length_invalid"),
    (StatusCode::NAMESPACE_WRITE_PROTECTED, "write_protected"),
    (StatusCode::TRANSIENT_TRANSPORT_ERROR, "transient_transport"),
    (StatusCode::LBA_OUT_OF_RANGE, "lba_out_of_range"),
    (StatusCode::CAPACITY_EXCEEDED, "capacity_exceeded"),
    (StatusCode::NAMESPACE_NOT_READY, "namespace_not_ready"),
    (StatusCode::WRITE_FAULT, "write_fault"),
    (StatusCode::UNRECOVERED_READ_ERROR, "unrecovered_read"),
    (StatusCode::COMPARE_FAILURE, "compare_failure"),
    (StatusCode::INVALID_OPCODE, "invalid_opcode"),
];

/// The label of failures not in [`ERROR_STATUSES`].
pub const OTHER_STATUS: &str = "other";

/// Per-namespace counters.
#[derive(Debug)]
pub struct NsStats {
    latency: [Latency; 6],
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    bytes_unmapped: AtomicU64,
    errors: [AtomicU64; ERROR_STATUSES.len() + 1],
    extremes: iostat::Extremes,
    /// The `bdev_get_iostat` view's base (see [`iostat`]).
    iostat_base: Mutex<IoCounts>,
    /// Whether `histogram` holds one: the I/O path reads this flag, not the lock.
    histogram_on: AtomicBool,
    histogram: RwLock<Option<Arc<SpdkHistogram>>>,
}

impl Default for NsStats {
    fn default() -> Self {
        Self {
            latency: std::array::from_fn(|_| Latency::new(&LATENCY_BOUNDS_NS)),
            bytes_read: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            bytes_unmapped: AtomicU64::new(0),
            errors: std::array::from_fn(|_| AtomicU64::new(0)),
            extremes: iostat::Extremes::default(),
            iostat_base: Mutex::new(IoCounts::default()),
            histogram_on: AtomicBool::new(false),
            histogram: RwLock::new(None),
        }
    }
}

impl NsStats {
    /// A command of `class` ended after `elapsed`; `status` is `None` on success, else the
    /// (SCT, SC) of its failure.
    pub fn end(&self, class: OpClass, elapsed: Duration, status: Option<(u8, u8)>) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        if let Some(l) = self.latency.get(class.index()) {
            l.observe_ns(ns);
        }
        self.extremes.observe(class, ns);
        if self.histogram_on.load(Ordering::Relaxed)
            && let Some(h) = self.histogram.read().as_ref()
        {
            h.tally(class, ns);
        }
        if let Some((sct, sc)) = status {
            let idx = ERROR_STATUSES
                .iter()
                .position(|(code, _)| code.sct.0 == sct && code.sc == sc)
                .unwrap_or(ERROR_STATUSES.len());
            if let Some(e) = self.errors.get(idx) {
                e.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Counts bytes read (skipped while counting is off).
    pub fn add_read(&self, bytes: u64) {
        if is_counting() {
            self.bytes_read.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// Counts bytes written (skipped while counting is off).
    pub fn add_written(&self, bytes: u64) {
        if is_counting() {
            self.bytes_written.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// Counts bytes deallocated by Dataset Management (skipped while counting is off).
    pub fn add_unmapped(&self, bytes: u64) {
        if is_counting() {
            self.bytes_unmapped.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// The counters `bdev_get_iostat` reports, since the last reset of the view.
    pub fn iostat(&self) -> IoCounts {
        self.counts().since(&self.iostat_base.lock())
    }

    /// `(max, min)` latency in nanoseconds of `class` since the last max/min reset.
    pub fn extremes(&self, class: OpClass) -> (u64, u64) {
        self.extremes.get(class)
    }

    /// Resets the `bdev_get_iostat` view (the metrics counters go on, see [`iostat`]).
    pub fn reset_iostat(&self, mode: ResetMode) {
        let now = self.counts();
        iostat::reset_base(&mut self.iostat_base.lock(), &now, mode);
        if matches!(mode, ResetMode::All | ResetMode::Maxmin) {
            self.extremes.reset();
        }
    }

    /// Starts (`Some`) or stops (`None`) the SPDK-format latency histogram.
    pub fn set_histogram(&self, h: Option<Arc<SpdkHistogram>>) {
        let on = h.is_some();
        *self.histogram.write() = h;
        self.histogram_on.store(on, Ordering::Relaxed);
    }

    /// The SPDK-format latency histogram, when one is running.
    pub fn histogram(&self) -> Option<Arc<SpdkHistogram>> {
        self.histogram.read().clone()
    }

    fn counts(&self) -> IoCounts {
        let lat = |c: OpClass| self.latency(c).map_or(0, Latency::sum_ns);
        let mut errors = [0; ERROR_STATUSES.len() + 1];
        for (e, a) in errors.iter_mut().zip(&self.errors) {
            *e = a.load(Ordering::Relaxed);
        }
        IoCounts {
            bytes_read: self.bytes_read(),
            read_ops: self.commands(OpClass::Read),
            bytes_written: self.bytes_written(),
            write_ops: self.commands(OpClass::Write),
            bytes_unmapped: self.bytes_unmapped.load(Ordering::Relaxed),
            unmap_ops: self.commands(OpClass::Dsm),
            read_latency_ns: lat(OpClass::Read),
            write_latency_ns: lat(OpClass::Write),
            unmap_latency_ns: lat(OpClass::Dsm),
            errors,
        }
    }

    /// Commands completed of `class`, failed ones included.
    pub fn commands(&self, class: OpClass) -> u64 {
        self.latency.get(class.index()).map_or(0, Latency::count)
    }

    /// The latency histogram of `class`.
    pub fn latency(&self, class: OpClass) -> Option<&Latency> {
        self.latency.get(class.index())
    }

    /// Bytes read.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }

    /// Bytes written.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written.load(Ordering::Relaxed)
    }

    /// Failed commands per status label, in [`ERROR_STATUSES`] order, then `other`.
    pub fn errors(&self) -> Vec<(&'static str, u64)> {
        ERROR_STATUSES
            .iter()
            .map(|(_, l)| *l)
            .chain([OTHER_STATUS])
            .zip(self.errors.iter().map(|e| e.load(Ordering::Relaxed)))
            .collect()
    }
}

/// Per-subsystem counters.
#[derive(Debug, Default)]
pub struct SubsystemStats {
    admin_commands: AtomicU64,
}

impl SubsystemStats {
    /// Counts an admin command submitted to a controller of the subsystem.
    pub fn on_admin_command(&self) {
        self.admin_commands.fetch_add(1, Ordering::Relaxed);
    }

    /// Admin commands submitted since the subsystem was created.
    pub fn admin_commands(&self) -> u64 {
        self.admin_commands.load(Ordering::Relaxed)
    }
}

/// Adds to a gauge.
pub fn gauge_add(g: &AtomicI64, delta: i64) {
    g.fetch_add(delta, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_bounds_span_10us_to_10s() {
        let l = Latency::new(&LATENCY_BOUNDS_NS);
        let b: Vec<f64> = l.bounds_seconds().collect();
        assert!((b[0] - 10e-6).abs() < 1e-12);
        assert!((b[b.len() - 1] - 10.0).abs() < 1e-12);
    }

    #[test]
    fn namespace_counters() {
        let s = NsStats::default();
        s.end(OpClass::Write, Duration::from_micros(30), Some((0, 0x80)));
        s.add_written(4096);
        assert_eq!(s.commands(OpClass::Write), 1);
        assert_eq!(s.commands(OpClass::Read), 0);
        assert_eq!(s.bytes_written(), 4096);
        let errors = s.errors();
        assert_eq!(errors.len(), ERROR_STATUSES.len() + 1);
        assert_eq!(
            errors
                .iter()
                .find(|(l, _)| *l == "lba_out_of_range")
                .unwrap()
                .1,
            1
        );
        s.end(OpClass::Read, Duration::ZERO, Some((7, 7)));
        assert_eq!(s.errors().last().unwrap(), &(OTHER_STATUS, 1));
        let lat = s.latency(OpClass::Write).unwrap().snapshot();
        assert_eq!(lat.count, 1);
        assert_eq!(lat.buckets[1].1, 0, "30 µs is above the 20 µs bound");
        assert_eq!(lat.buckets[2].1, 1);
    }

    #[test]
    fn error_labels_are_unique_snake_case() {
        let mut labels: Vec<&str> = ERROR_STATUSES.iter().map(|(_, l)| *l).collect();
        labels.push(OTHER_STATUS);
        let n = labels.len();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), n);
        assert!(labels.iter().all(|l| {
            l.chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
        }));
    }

    #[test]
    fn subsystem_counts_admin_commands() {
        let s = SubsystemStats::default();
        s.on_admin_command();
        s.on_admin_command();
        assert_eq!(s.admin_commands(), 2);
    }
}
