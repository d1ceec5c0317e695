//! JSON-RPC counters: calls per method and result, and latency per method.
//!
//! The table is built once from the registered method names (plus `unknown` for names no
//! handler knows, which the dispatcher already folds together), so recording a call is a binary
//! search over a sorted slice and three relaxed atomics: no lock, no allocation, and the label
//! set stays bounded whatever clients send.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::histogram::AtomicHistogram;

/// The method label for calls to names no handler knows.
pub const UNKNOWN_METHOD: &str = "unknown";

/// RPC latency bucket bounds in nanoseconds: 100 µs to 60 s (lvol deletes that clear, inflates
/// and thick creates can take that long).
pub static RPC_BOUNDS_NS: [u64; 18] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
    60_000_000_000,
];

/// Counters of one method.
#[derive(Debug)]
pub struct MethodStats {
    ok: AtomicU64,
    error: AtomicU64,
    latency: AtomicHistogram<18>,
}

impl MethodStats {
    fn new() -> Self {
        Self {
            ok: AtomicU64::new(0),
            error: AtomicU64::new(0),
            latency: AtomicHistogram::new(&RPC_BOUNDS_NS),
        }
    }

    /// Calls that succeeded.
    pub fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Calls that returned a JSON-RPC error.
    pub fn errors(&self) -> u64 {
        self.error.load(Ordering::Relaxed)
    }

    /// Latency of every call.
    pub fn latency(&self) -> &AtomicHistogram<18> {
        &self.latency
    }
}

/// Counters of every method.
#[derive(Debug)]
pub struct RpcStats {
    /// Sorted, deduplicated, `unknown` included.
    names: Vec<&'static str>,
    methods: Vec<MethodStats>,
}

impl RpcStats {
    /// A table for `names` (the registered methods) plus `unknown`.
    pub fn new(names: &[&'static str]) -> Arc<Self> {
        let mut names: Vec<&'static str> = names.to_vec();
        names.push(UNKNOWN_METHOD);
        names.sort_unstable();
        names.dedup();
        let methods = names.iter().map(|_| MethodStats::new()).collect();
        Arc::new(Self { names, methods })
    }

    fn get(&self, method: &str) -> Option<&MethodStats> {
        let i = self
            .names
            .binary_search(&method)
            .or_else(|_| self.names.binary_search(&UNKNOWN_METHOD))
            .ok()?;
        self.methods.get(i)
    }

    /// Records one call of `method` that took `seconds`.
    pub fn observe(&self, method: &str, ok: bool, seconds: f64) {
        let Some(m) = self.get(method) else { return };
        if ok {
            m.ok.fetch_add(1, Ordering::Relaxed);
        } else {
            m.error.fetch_add(1, Ordering::Relaxed);
        }
        // Negative or NaN cannot happen with a monotonic clock; count them as zero, not as huge.
        let d = if seconds > 0.0 {
            Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
        } else {
            Duration::ZERO
        };
        m.latency.observe(d);
    }

    /// Every method with its counters, by name.
    pub fn methods(&self) -> impl Iterator<Item = (&'static str, &MethodStats)> {
        self.names.iter().copied().zip(&self.methods)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_method_and_result() {
        let s = RpcStats::new(&["b_method", "a_method", "a_method"]);
        s.observe("a_method", true, 0.001);
        s.observe("a_method", false, 0.5);
        s.observe("not_registered", false, 0.0);
        s.observe("b_method", true, -1.0); // a nonsense duration cannot panic
        let m: Vec<_> = s.methods().collect();
        assert_eq!(
            m.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            vec!["a_method", "b_method", UNKNOWN_METHOD]
        );
        assert_eq!((m[0].1.ok(), m[0].1.errors()), (1, 1));
        assert_eq!(m[0].1.latency().count(), 2);
        assert_eq!((m[2].1.ok(), m[2].1.errors()), (0, 1));
        assert_eq!(m[1].1.latency().count(), 1);
    }
}
