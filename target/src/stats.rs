//! Counters on the hot paths: per namespace (commands, bytes, errors, latency, in flight) and per
//! target (connections, queues, keep-alive expiries, TermReqs, digest errors, PDUs).
//!
//! Every counter is a relaxed atomic in a fixed array: no lock, no allocation, no map lookup on
//! the I/O path. The objects that own them (a `Namespace`, the `Target`) are what a scrape
//! iterates, so the series of a removed namespace disappear with it.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

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

/// Latency histogram upper bounds in seconds: 10 µs to 10 s, three per decade.
pub const LATENCY_BUCKETS: [f64; 19] = [
    10e-6, 20e-6, 50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3, 20e-3, 50e-3, 0.1, 0.2,
    0.5, 1.0, 2.0, 5.0, 10.0,
];

/// Error statuses tracked per namespace: (SCT, SC) pairs with their label; anything else is
/// counted as "other".
pub const ERROR_STATUSES: [(u8, u8, &str); 9] = [
    (0, 0x02, "invalid_field"),
    (0, 0x0B, "invalid_namespace"),
    (0, 0x0F, "sgl_length_invalid"),
    (0, 0x20, "write_protected"),
    (0, 0x22, "transient_transport"),
    (0, 0x80, "lba_out_of_range"),
    (0, 0x81, "capacity_exceeded"),
    (2, 0x80, "write_fault"),
    (2, 0x81, "unrecovered_read"),
];

/// A latency histogram of atomics.
#[derive(Debug, Default)]
pub struct Latency {
    /// Observations per bucket (not cumulative); the last slot is +Inf.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_ns: AtomicU64,
    count: AtomicU64,
}

impl Latency {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let idx = LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        if let Some(b) = self.buckets.get(idx) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Cumulative counts per bound (for the exposition), the sum in seconds and the count.
    pub fn snapshot(&self) -> (Vec<u64>, f64, u64) {
        let mut acc = 0;
        let cumulative = self
            .buckets
            .iter()
            .map(|b| {
                acc += b.load(Ordering::Relaxed);
                acc
            })
            .collect();
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        (cumulative, sum, self.count.load(Ordering::Relaxed))
    }
}

/// Per-namespace counters.
#[derive(Debug, Default)]
pub struct NsStats {
    commands: [AtomicU64; 6],
    latency: [Latency; 6],
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    errors: [AtomicU64; ERROR_STATUSES.len() + 1],
    in_flight: AtomicI64,
}

impl NsStats {
    /// A command starts.
    pub fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// A command of `class` ends after `elapsed`; `status` is `None` on success, else the
    /// (SCT, SC) of its failure.
    pub fn end(&self, class: OpClass, elapsed: Duration, status: Option<(u8, u8)>) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        let i = class.index();
        if let Some(c) = self.commands.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(l) = self.latency.get(i) {
            l.observe(elapsed);
        }
        if let Some((sct, sc)) = status {
            let idx = ERROR_STATUSES
                .iter()
                .position(|(t, c, _)| *t == sct && *c == sc)
                .unwrap_or(ERROR_STATUSES.len());
            if let Some(e) = self.errors.get(idx) {
                e.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Counts bytes read.
    pub fn add_read(&self, bytes: u64) {
        self.bytes_read.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts bytes written.
    pub fn add_written(&self, bytes: u64) {
        self.bytes_written.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Commands completed of `class`.
    pub fn commands(&self, class: OpClass) -> u64 {
        self.commands
            .get(class.index())
            .map_or(0, |c| c.load(Ordering::Relaxed))
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

    /// Errors per status label (the last is "other").
    pub fn errors(&self) -> Vec<(&'static str, u64)> {
        ERROR_STATUSES
            .iter()
            .map(|(_, _, l)| *l)
            .chain(["other"])
            .zip(self.errors.iter().map(|e| e.load(Ordering::Relaxed)))
            .collect()
    }

    /// Commands in flight now.
    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// Number of PDU type slots counted (NVMe/TCP 1.0 types are 0..=9).
pub const PDU_TYPES: usize = 10;
/// Number of FES slots counted (1..=6 defined; 0 and 7 catch the rest).
pub const FES_SLOTS: usize = 8;

/// Target-wide transport counters.
#[derive(Debug, Default)]
pub struct TransportStats {
    /// TCP connections open.
    pub connections: AtomicI64,
    /// Connections accepted since start.
    pub connections_total: AtomicU64,
    /// Admin queues open.
    pub admin_queues: AtomicI64,
    /// I/O queues open.
    pub io_queues: AtomicI64,
    /// Controllers torn down by keep-alive timeout.
    pub kato_expiries: AtomicU64,
    /// Header digest errors.
    pub header_digest_errors: AtomicU64,
    /// Data digest errors.
    pub data_digest_errors: AtomicU64,
    term_reqs: [AtomicU64; FES_SLOTS],
    pdus_rx: [AtomicU64; PDU_TYPES],
    pdus_tx: [AtomicU64; PDU_TYPES],
}

impl TransportStats {
    /// Counts a C2HTermReq sent with `fes`.
    pub fn on_term_req(&self, fes: u16) {
        let i = usize::from(fes).min(FES_SLOTS - 1);
        if let Some(c) = self.term_reqs.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a PDU received.
    pub fn on_pdu_rx(&self, pdu_type: u8) {
        if let Some(c) = self.pdus_rx.get(usize::from(pdu_type)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a PDU sent.
    pub fn on_pdu_tx(&self, pdu_type: u8) {
        if let Some(c) = self.pdus_tx.get(usize::from(pdu_type)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// TermReqs sent, per FES slot.
    pub fn term_reqs(&self) -> Vec<(usize, u64)> {
        self.term_reqs
            .iter()
            .enumerate()
            .map(|(i, c)| (i, c.load(Ordering::Relaxed)))
            .collect()
    }

    /// PDUs received and sent, per type.
    pub fn pdus(&self) -> Vec<(usize, u64, u64)> {
        (0..PDU_TYPES)
            .map(|i| {
                let rx = self.pdus_rx.get(i).map_or(0, |c| c.load(Ordering::Relaxed));
                let tx = self.pdus_tx.get(i).map_or(0, |c| c.load(Ordering::Relaxed));
                (i, rx, tx)
            })
            .collect()
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
    fn latency_buckets_are_cumulative() {
        let l = Latency::default();
        l.observe(Duration::from_micros(5));
        l.observe(Duration::from_micros(15));
        l.observe(Duration::from_secs(20));
        let (b, sum, count) = l.snapshot();
        assert_eq!(count, 3);
        assert_eq!(b[0], 1);
        assert_eq!(b[1], 2);
        assert_eq!(*b.last().unwrap(), 3);
        assert_eq!(b[b.len() - 2], 2, "20 s lands in +Inf only");
        assert!((sum - 20.00002).abs() < 1e-6);
    }

    #[test]
    fn namespace_counters() {
        let s = NsStats::default();
        s.begin();
        assert_eq!(s.in_flight(), 1);
        s.end(OpClass::Write, Duration::from_micros(30), Some((0, 0x80)));
        s.add_written(4096);
        assert_eq!(s.in_flight(), 0);
        assert_eq!(s.commands(OpClass::Write), 1);
        assert_eq!(s.bytes_written(), 4096);
        let errors = s.errors();
        assert_eq!(
            errors
                .iter()
                .find(|(l, _)| *l == "lba_out_of_range")
                .unwrap()
                .1,
            1
        );
        s.begin();
        s.end(OpClass::Read, Duration::ZERO, Some((7, 7)));
        assert_eq!(s.errors().last().unwrap(), &("other", 1));
    }
}
