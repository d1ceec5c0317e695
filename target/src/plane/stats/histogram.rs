//! A fixed-bucket latency histogram made of relaxed atomics: one `fetch_add` for the bucket and
//! one for the sum per observation, no lock, no allocation.
//!
//! Buckets are stored per bucket (not cumulative) so an observation touches one slot; the
//! cumulative counts Prometheus wants are computed at scrape time. The count is derived from the
//! buckets rather than kept in a third atomic, so a snapshot's `+Inf` bucket always equals its
//! count even while observations race the scrape.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Observations are clamped to an hour, so one absurd value cannot wrap the sum.
const MAX_OBSERVATION_NS: u64 = 3_600 * 1_000_000_000;

/// Observations per bucket, with upper bounds in nanoseconds.
#[derive(Debug)]
pub struct AtomicHistogram<const N: usize> {
    bounds_ns: &'static [u64; N],
    /// `buckets[i]` counts observations in `(bounds[i-1], bounds[i]]`.
    buckets: [AtomicU64; N],
    /// Observations above the last bound (they appear only in `+Inf`).
    overflow: AtomicU64,
    sum_ns: AtomicU64,
}

/// A copy of a histogram, shaped for the exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound in seconds, cumulative count)` per finite bound, ascending.
    pub buckets: Vec<(f64, u64)>,
    /// Every observation (the `+Inf` bucket).
    pub count: u64,
    /// Sum of the observations in seconds.
    pub sum_seconds: f64,
}

impl<const N: usize> AtomicHistogram<N> {
    /// An empty histogram over `bounds_ns` (ascending upper bounds in nanoseconds).
    pub fn new(bounds_ns: &'static [u64; N]) -> Self {
        debug_assert!(bounds_ns.windows(2).all(|w| w[0] < w[1]));
        Self {
            bounds_ns,
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            overflow: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        self.observe_ns(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Records one observation given in nanoseconds (for callers that already converted).
    pub fn observe_ns(&self, ns: u64) {
        let ns = ns.min(MAX_OBSERVATION_NS);
        // Linear from the smallest bound: most observations land in the first few buckets.
        let slot = self
            .bounds_ns
            .iter()
            .position(|b| ns <= *b)
            .and_then(|i| self.buckets.get(i))
            .unwrap_or(&self.overflow);
        slot.fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.buckets
            .iter()
            .chain(std::iter::once(&self.overflow))
            .map(|b| b.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }

    /// Sum of the observations in nanoseconds.
    pub fn sum_ns(&self) -> u64 {
        self.sum_ns.load(Ordering::Relaxed)
    }

    /// The upper bounds in seconds.
    pub fn bounds_seconds(&self) -> impl Iterator<Item = f64> + '_ {
        self.bounds_ns.iter().map(|ns| *ns as f64 / 1e9)
    }

    /// Cumulative counts per bound, the count and the sum, for the exposition.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut acc: u64 = 0;
        let buckets = self
            .bounds_seconds()
            .zip(&self.buckets)
            .map(|(bound, b)| {
                acc = acc.wrapping_add(b.load(Ordering::Relaxed));
                (bound, acc)
            })
            .collect();
        let count = acc.wrapping_add(self.overflow.load(Ordering::Relaxed));
        HistogramSnapshot {
            buckets,
            count,
            sum_seconds: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static BOUNDS: [u64; 3] = [10_000, 100_000, 1_000_000];

    #[test]
    fn buckets_are_cumulative_and_inclusive() {
        let h = AtomicHistogram::new(&BOUNDS);
        h.observe(Duration::from_micros(5));
        h.observe(Duration::from_micros(10)); // on the bound: le is inclusive
        h.observe(Duration::from_micros(11));
        h.observe(Duration::from_secs(3)); // above every bound
        let s = h.snapshot();
        assert_eq!(
            s.buckets.iter().map(|b| b.1).collect::<Vec<_>>(),
            vec![2, 3, 3]
        );
        assert_eq!(s.count, 4);
        assert_eq!(h.count(), 4);
        assert!((s.sum_seconds - 3.000_026).abs() < 1e-9);
        assert!((s.buckets[0].0 - 1e-5).abs() < f64::EPSILON);
        assert!((s.buckets[2].0 - 1e-3).abs() < f64::EPSILON);
    }

    #[test]
    fn huge_durations_are_clamped() {
        let h = AtomicHistogram::new(&BOUNDS);
        h.observe(Duration::MAX);
        h.observe(Duration::MAX);
        let s = h.snapshot();
        assert_eq!(s.count, 2);
        assert_eq!(s.buckets[2].1, 0);
        assert!(
            (s.sum_seconds - 7200.0).abs() < 1e-6,
            "the sum does not wrap"
        );
    }
}
