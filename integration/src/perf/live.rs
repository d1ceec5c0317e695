//! Live progress: per-connection counters the engines bump once per batch of completions
//! (each on its own cache line, so connections on different threads never share one), and
//! the once-a-second line printed on a terminal.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Counters of one connection.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct LiveConn {
    ios: AtomicU64,
    bytes: AtomicU64,
    latency_ns: AtomicU64,
    errors: AtomicU64,
}

/// A point-in-time sum of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Completed I/Os.
    pub ios: u64,
    /// Bytes moved.
    pub bytes: u64,
    /// Sum of latencies.
    pub latency_ns: u64,
    /// Failed I/Os.
    pub errors: u64,
}

/// Counters of every connection.
#[derive(Debug)]
pub struct Live {
    conns: Vec<LiveConn>,
}

impl Live {
    /// Counters for `connections` connections.
    pub fn new(connections: usize) -> Self {
        Self {
            conns: (0..connections.max(1))
                .map(|_| LiveConn::default())
                .collect(),
        }
    }

    /// Adds a batch to connection `index`.
    pub fn add(&self, index: usize, batch: Snapshot) {
        if let Some(c) = self.conns.get(index) {
            c.ios.fetch_add(batch.ios, Ordering::Relaxed);
            c.bytes.fetch_add(batch.bytes, Ordering::Relaxed);
            c.latency_ns.fetch_add(batch.latency_ns, Ordering::Relaxed);
            c.errors.fetch_add(batch.errors, Ordering::Relaxed);
        }
    }

    /// Sum over all connections.
    pub fn snapshot(&self) -> Snapshot {
        self.conns
            .iter()
            .fold(Snapshot::default(), |acc, c| Snapshot {
                ios: acc.ios + c.ios.load(Ordering::Relaxed),
                bytes: acc.bytes + c.bytes.load(Ordering::Relaxed),
                latency_ns: acc.latency_ns + c.latency_ns.load(Ordering::Relaxed),
                errors: acc.errors + c.errors.load(Ordering::Relaxed),
            })
    }
}

/// One progress line for the interval between `prev` and `now` of `dt`.
pub fn line(
    elapsed: Duration,
    warming: bool,
    prev: Snapshot,
    now: Snapshot,
    dt: Duration,
) -> String {
    let secs = dt.as_secs_f64().max(f64::EPSILON);
    let ios = now.ios.saturating_sub(prev.ios);
    let bytes = now.bytes.saturating_sub(prev.bytes);
    let lat = now.latency_ns.saturating_sub(prev.latency_ns);
    let avg_us = if ios == 0 {
        0.0
    } else {
        lat as f64 / ios as f64 / 1000.0
    };
    format!(
        "[{:>5.0} s{}] {:>11.0} IOPS {:>10.2} MiB/s  avg {:>9.2} us  errors {}",
        elapsed.as_secs_f64(),
        if warming { " warm-up" } else { "" },
        ios as f64 / secs,
        bytes as f64 / secs / 1_048_576.0,
        avg_us,
        now.errors
    )
}

/// Prints a progress line every second to stderr (overwriting the previous one) until
/// `end`; the run started at `start` and measures from `warm_end`.
pub async fn print_every_second(live: &Live, start: Instant, warm_end: Instant, end: Instant) {
    let mut prev = live.snapshot();
    let mut prev_at = Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.tick().await;
    while Instant::now() < end {
        ticks.tick().await;
        let now = live.snapshot();
        let at = Instant::now();
        let text = line(at - start, at < warm_end, prev, now, at - prev_at);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{text}\x1b[K");
        let _ = err.flush();
        prev = now;
        prev_at = at;
    }
    let _ = writeln!(std::io::stderr());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_sum_and_lines_show_rates() {
        let live = Live::new(2);
        live.add(
            0,
            Snapshot {
                ios: 10,
                bytes: 40960,
                latency_ns: 100_000,
                errors: 0,
            },
        );
        live.add(
            1,
            Snapshot {
                ios: 10,
                bytes: 40960,
                latency_ns: 300_000,
                errors: 1,
            },
        );
        let s = live.snapshot();
        assert_eq!((s.ios, s.bytes, s.errors), (20, 81920, 1));
        let text = line(
            Duration::from_secs(3),
            false,
            Snapshot::default(),
            s,
            Duration::from_secs(2),
        );
        assert!(text.contains(" 10 IOPS"), "{text}");
        assert!(text.contains("avg     20.00 us"), "{text}");
        assert!(std::mem::align_of::<LiveConn>() >= 128);
    }
}
