//! Per-thread shards for counters every connection touches: each thread adds to its own
//! cache-line-aligned copy, a scrape sums the copies.
//!
//! A counter shared by every connection (PDUs by type, target-wide) would otherwise make every
//! core that runs a connection fight for the same cache line on every PDU. Threads get an index
//! on first use; there are as many shards as the machine has CPUs, at most [`MAX_SHARDS`], so
//! the tokio workers that run connections land on different shards.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The most shards a sharded counter set keeps.
pub const MAX_SHARDS: usize = 16;

static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static THREAD_INDEX: usize = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
}

/// How many shards a set keeps on this machine.
pub fn count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .clamp(1, MAX_SHARDS)
    })
}

/// The shard the calling thread uses, below `shards`.
#[inline]
pub fn index(shards: usize) -> usize {
    THREAD_INDEX.with(|i| *i) % shards.max(1)
}

/// One shard's values, alone on their cache lines (128 bytes: adjacent-line prefetch pairs
/// 64-byte lines on x86).
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Padded<T>(pub T);

/// A value per shard.
#[derive(Debug)]
pub struct Sharded<T> {
    shards: Box<[Padded<T>]>,
}

impl<T: Default> Default for Sharded<T> {
    fn default() -> Self {
        Self {
            shards: (0..count()).map(|_| Padded(T::default())).collect(),
        }
    }
}

impl<T> Sharded<T> {
    /// The calling thread's shard.
    #[inline]
    pub fn local(&self) -> Option<&T> {
        self.shards.get(index(self.shards.len())).map(|p| &p.0)
    }

    /// Every shard, to sum at scrape time.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.shards.iter().map(|p| &p.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn threads_add_to_shards_and_the_sum_is_exact() {
        let s: std::sync::Arc<Sharded<AtomicU64>> = std::sync::Arc::default();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        s.local().unwrap().fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let total: u64 = s.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        assert_eq!(total, 4000);
        assert!(s.iter().count() >= 1 && s.iter().count() <= MAX_SHARDS);
        assert_eq!(std::mem::align_of::<Padded<AtomicU64>>(), 128);
    }
}
