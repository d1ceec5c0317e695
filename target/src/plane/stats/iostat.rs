//! The per-namespace view behind SPDK's `bdev_get_iostat` and `bdev_reset_iostat`.
//!
//! The metrics endpoint exports monotonic counters, and a reset must not break them (Prometheus
//! reads a drop as a restart). So a reset does not touch the counters: it records their values
//! as the view's *base*, and the view is the counters minus the base. Only the extremes (the
//! longest and shortest command of each class), which the metrics do not export, are really
//! cleared. The counters are the namespace's ([`super::NsStats`]); this file owns the base, the
//! extremes and the arithmetic.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{ERROR_STATUSES, OTHER_STATUS, OpClass};

/// What a reset clears, as SPDK's `mode` / `reset_mode` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResetMode {
    /// Every statistic.
    All,
    /// Only the longest and shortest latencies.
    Maxmin,
    /// Only the error counts.
    Error,
    /// Nothing.
    None,
}

/// The counters `bdev_get_iostat` reports, as read at one moment (or as a base).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoCounts {
    /// Bytes read.
    pub bytes_read: u64,
    /// Read commands.
    pub read_ops: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Write commands.
    pub write_ops: u64,
    /// Bytes deallocated by Dataset Management.
    pub bytes_unmapped: u64,
    /// Dataset Management commands.
    pub unmap_ops: u64,
    /// Summed latency of reads, writes and Dataset Management, in nanoseconds.
    pub read_latency_ns: u64,
    /// See `read_latency_ns`.
    pub write_latency_ns: u64,
    /// See `read_latency_ns`.
    pub unmap_latency_ns: u64,
    /// Failed commands per status, in [`ERROR_STATUSES`] order then `other`.
    pub errors: [u64; ERROR_STATUSES.len() + 1],
}

impl IoCounts {
    /// `self - base`, field by field (a base is never above the counters it was read from).
    #[must_use]
    pub fn since(&self, base: &Self) -> Self {
        let mut errors = self.errors;
        for (e, b) in errors.iter_mut().zip(base.errors) {
            *e = e.saturating_sub(b);
        }
        Self {
            bytes_read: self.bytes_read.saturating_sub(base.bytes_read),
            read_ops: self.read_ops.saturating_sub(base.read_ops),
            bytes_written: self.bytes_written.saturating_sub(base.bytes_written),
            write_ops: self.write_ops.saturating_sub(base.write_ops),
            bytes_unmapped: self.bytes_unmapped.saturating_sub(base.bytes_unmapped),
            unmap_ops: self.unmap_ops.saturating_sub(base.unmap_ops),
            read_latency_ns: self.read_latency_ns.saturating_sub(base.read_latency_ns),
            write_latency_ns: self.write_latency_ns.saturating_sub(base.write_latency_ns),
            unmap_latency_ns: self.unmap_latency_ns.saturating_sub(base.unmap_latency_ns),
            errors,
        }
    }

    /// Adds `other` into `self` (a bdev exported by several namespaces).
    pub fn add(&mut self, other: &Self) {
        self.bytes_read += other.bytes_read;
        self.read_ops += other.read_ops;
        self.bytes_written += other.bytes_written;
        self.write_ops += other.write_ops;
        self.bytes_unmapped += other.bytes_unmapped;
        self.unmap_ops += other.unmap_ops;
        self.read_latency_ns += other.read_latency_ns;
        self.write_latency_ns += other.write_latency_ns;
        self.unmap_latency_ns += other.unmap_latency_ns;
        for (e, o) in self.errors.iter_mut().zip(other.errors) {
            *e += o;
        }
    }

    /// The non-zero error counts with their labels.
    pub fn error_labels(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        ERROR_STATUSES
            .iter()
            .map(|(_, l)| *l)
            .chain([OTHER_STATUS])
            .zip(self.errors)
            .filter(|(_, n)| *n > 0)
    }
}

/// The classes whose extremes `bdev_get_iostat` reports: read, write, unmap.
pub const EXTREME_CLASSES: [OpClass; 3] = [OpClass::Read, OpClass::Write, OpClass::Dsm];

/// The longest and shortest command of each class since the last max/min reset, in
/// nanoseconds. The I/O path reads before it writes, so a command that sets no record costs two
/// relaxed loads.
#[derive(Debug)]
pub struct Extremes {
    max: [AtomicU64; OpClass::ALL.len()],
    min: [AtomicU64; OpClass::ALL.len()],
}

impl Default for Extremes {
    fn default() -> Self {
        Self {
            max: std::array::from_fn(|_| AtomicU64::new(0)),
            min: std::array::from_fn(|_| AtomicU64::new(u64::MAX)),
        }
    }
}

impl Extremes {
    /// Records a command of `class` that took `ns`.
    pub fn observe(&self, class: OpClass, ns: u64) {
        if let Some(max) = self.max.get(class.index())
            && ns > max.load(Ordering::Relaxed)
        {
            max.fetch_max(ns, Ordering::Relaxed);
        }
        if let Some(min) = self.min.get(class.index())
            && ns < min.load(Ordering::Relaxed)
        {
            min.fetch_min(ns, Ordering::Relaxed);
        }
    }

    /// `(max, min)` of `class` in nanoseconds; `(0, 0)` when none was recorded (as SPDK).
    pub fn get(&self, class: OpClass) -> (u64, u64) {
        let max = self
            .max
            .get(class.index())
            .map_or(0, |m| m.load(Ordering::Relaxed));
        let min = self
            .min
            .get(class.index())
            .map_or(u64::MAX, |m| m.load(Ordering::Relaxed));
        (max, if min == u64::MAX { 0 } else { min })
    }

    /// Forgets every record.
    pub fn reset(&self) {
        for m in &self.max {
            m.store(0, Ordering::Relaxed);
        }
        for m in &self.min {
            m.store(u64::MAX, Ordering::Relaxed);
        }
    }
}

/// Applies `mode` to a view's base, given the counters now.
pub fn reset_base(base: &mut IoCounts, now: &IoCounts, mode: ResetMode) {
    match mode {
        ResetMode::All => *base = *now,
        ResetMode::Error => base.errors = now.errors,
        ResetMode::Maxmin | ResetMode::None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(n: u64) -> IoCounts {
        IoCounts {
            bytes_read: n * 4096,
            read_ops: n,
            errors: [n; ERROR_STATUSES.len() + 1],
            ..IoCounts::default()
        }
    }

    #[test]
    fn a_reset_moves_the_base_and_the_view_counts_from_it() {
        let mut base = IoCounts::default();
        reset_base(&mut base, &counts(5), ResetMode::None);
        assert_eq!(counts(7).since(&base), counts(7));
        reset_base(&mut base, &counts(5), ResetMode::Error);
        let v = counts(7).since(&base);
        assert_eq!(v.read_ops, 7, "an error reset keeps the I/O counts");
        assert_eq!(v.errors[0], 2);
        reset_base(&mut base, &counts(5), ResetMode::All);
        assert_eq!(counts(7).since(&base), counts(2));
        assert_eq!(
            counts(7).since(&base).error_labels().count(),
            ERROR_STATUSES.len() + 1
        );
    }

    #[test]
    fn extremes_track_and_reset() {
        let e = Extremes::default();
        assert_eq!(e.get(OpClass::Read), (0, 0));
        e.observe(OpClass::Read, 50);
        e.observe(OpClass::Read, 10);
        e.observe(OpClass::Read, 30);
        assert_eq!(e.get(OpClass::Read), (50, 10));
        assert_eq!(e.get(OpClass::Write), (0, 0));
        e.reset();
        assert_eq!(e.get(OpClass::Read), (0, 0));
    }

    #[test]
    fn reset_modes_parse_as_spdk_spells_them() {
        for (s, m) in [
            ("\"all\"", ResetMode::All),
            ("\"maxmin\"", ResetMode::Maxmin),
            ("\"error\"", ResetMode::Error),
            ("\"none\"", ResetMode::None),
        ] {
            assert_eq!(serde_json::from_str::<ResetMode>(s).unwrap(), m);
        }
        assert!(serde_json::from_str::<ResetMode>("\"some\"").is_err());
    }
}
