//! Progress reporting for long operations (inflate, decouple, clear on delete, thick create):
//! a cheap shared pair of counters the caller polls from another task (the CLI's progress bar,
//! an RPC status call) while the operation runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Shared progress counters. Clones share the same counters.
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<Counters>);

#[derive(Debug, Default)]
struct Counters {
    done: AtomicU64,
    total: AtomicU64,
}

impl Progress {
    /// Fresh counters at 0 of 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Units (clusters) finished so far.
    pub fn done(&self) -> u64 {
        self.0.done.load(Ordering::Relaxed)
    }

    /// Units (clusters) the operation will process; 0 until it knows.
    pub fn total(&self) -> u64 {
        self.0.total.load(Ordering::Relaxed)
    }

    /// Completion in `0.0..=1.0` (1.0 when there is nothing to do).
    pub fn fraction(&self) -> f64 {
        let total = self.total();
        if total == 0 {
            1.0
        } else {
            self.done().min(total) as f64 / total as f64
        }
    }

    pub(crate) fn start(&self, total: u64) {
        self.0.done.store(0, Ordering::Relaxed);
        self.0.total.store(total, Ordering::Relaxed);
    }

    pub(crate) fn advance(&self, by: u64) {
        self.0.done.fetch_add(by, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraction_tracks_counters() {
        let p = Progress::new();
        assert!((p.fraction() - 1.0).abs() < f64::EPSILON);
        p.start(4);
        p.clone().advance(1);
        assert_eq!(p.done(), 1);
        assert!((p.fraction() - 0.25).abs() < f64::EPSILON);
    }
}
