//! The cluster allocator. A cluster is free when the metadata state does not use it and the
//! allocator does not hold it. The allocator holds clusters for two reasons: a reservation (a
//! first write is filling the cluster before its map record exists) and quarantine (freed by a
//! committed-or-pending operation, not yet safe to hand out). A quarantined cluster returns to
//! the pool only when (1) the operation that freed it is durable, so a crash cannot resurrect
//! the old owner over new data, (2) its clear method has run, and (3) two grace epochs have
//! passed, so no I/O that looked it up before the free can still touch it.

use crate::error::LvolError;
use crate::grace::Grace;
use crate::meta::state::MetaState;

/// Freed clusters waiting to be reusable.
#[derive(Debug)]
struct Parked {
    id: u64,
    clusters: Vec<u32>,
    op_seq: u64,
    epoch: u64,
    ready: bool,
}

/// Reservations and quarantine over a [`MetaState`].
#[derive(Debug, Default)]
pub(crate) struct Allocator {
    held: Vec<u64>,
    held_count: u32,
    /// Held clusters that are reservations (the rest are parked).
    reserved: u32,
    parked: Vec<Parked>,
    cursor: u32,
    next_id: u64,
}

impl Allocator {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn bit(c: u32) -> (usize, u64) {
        (
            usize::try_from(c / 64).unwrap_or(usize::MAX),
            1u64 << (c % 64),
        )
    }

    fn is_held(&self, c: u32) -> bool {
        let (w, b) = Self::bit(c);
        self.held.get(w).is_some_and(|x| x & b != 0)
    }

    fn set_held(&mut self, c: u32, on: bool) {
        let (w, b) = Self::bit(c);
        if self.held.len() <= w {
            self.held.resize(w + 1, 0);
        }
        if let Some(x) = self.held.get_mut(w) {
            let was = *x & b != 0;
            if on && !was {
                *x |= b;
                self.held_count += 1;
            } else if !on && was {
                *x &= !b;
                self.held_count -= 1;
            }
        }
    }

    /// Clusters free for allocation now.
    pub(crate) fn free_clusters(&self, st: &MetaState) -> u32 {
        st.data_clusters()
            .saturating_sub(st.used_clusters())
            .saturating_sub(self.held_count)
    }

    /// Clusters waiting in quarantine.
    pub(crate) fn parked_clusters(&self) -> usize {
        self.parked.iter().map(|p| p.clusters.len()).sum()
    }

    /// Reserves `n` free clusters, or fails with `NoSpace` reserving none.
    pub(crate) fn reserve(&mut self, st: &MetaState, n: u32) -> Result<Vec<u32>, LvolError> {
        let free = self.free_clusters(st);
        if free < n {
            return Err(LvolError::NoSpace {
                needed_clusters: u64::from(n),
                free_clusters: u64::from(free),
            });
        }
        let mut out = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
        let span = st.data_clusters();
        let mut c = self
            .cursor
            .clamp(st.first_data, st.total_clusters.saturating_sub(1));
        for _ in 0..span {
            if out.len() == out.capacity() {
                break;
            }
            if !st.is_used(c) && !self.is_held(c) {
                self.set_held(c, true);
                self.reserved += 1;
                out.push(c);
            }
            c = if c + 1 >= st.total_clusters {
                st.first_data
            } else {
                c + 1
            };
        }
        self.cursor = c;
        if out.len() < out.capacity() {
            self.release(&out);
            return Err(LvolError::corrupt(
                "allocator free count disagrees with its bitmap",
            ));
        }
        Ok(out)
    }

    /// Drops reservations: unused ones, or ones that the state now uses.
    pub(crate) fn release(&mut self, clusters: &[u32]) {
        for &c in clusters {
            if self.is_held(c) {
                self.set_held(c, false);
                self.reserved = self.reserved.saturating_sub(1);
            }
        }
    }

    /// Clusters reserved now (first writes and thick creates in progress).
    pub(crate) fn reserved_clusters(&self) -> u32 {
        self.reserved
    }

    /// Every broken invariant of the allocator over `st`, one sentence each.
    pub(crate) fn verify(&self, st: &MetaState) -> Vec<String> {
        let mut problems = Vec::new();
        let marked = self.held.iter().map(|w| w.count_ones()).sum::<u32>();
        if marked != self.held_count {
            problems.push(format!(
                "the allocator marks {marked} clusters held but counts {}",
                self.held_count
            ));
        }
        let parked = self.parked_clusters();
        if u64::from(self.held_count) != u64::from(self.reserved) + parked as u64 {
            problems.push(format!(
                "the allocator holds {} clusters: {} reserved and {parked} quarantined do not add up",
                self.held_count, self.reserved
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for c in self.parked.iter().flat_map(|p| p.clusters.iter().copied()) {
            if !seen.insert(c) {
                problems.push(format!("cluster {c} is quarantined twice"));
            }
            if !self.is_held(c) {
                problems.push(format!("quarantined cluster {c} is not held"));
            }
        }
        for (w, &bits) in self.held.iter().enumerate() {
            let mut b = bits;
            while b != 0 {
                let c = u32::try_from(w * 64).unwrap_or(u32::MAX) + b.trailing_zeros();
                b &= b - 1;
                if st.is_used(c) {
                    problems.push(format!(
                        "cluster {c} is both held by the allocator and mapped"
                    ));
                }
                if !st.is_data_cluster(c) {
                    problems.push(format!("the allocator holds {c}, outside the data region"));
                }
            }
        }
        problems
    }

    /// Quarantines clusters just freed by operation `op_seq` in grace epoch `epoch`; `ready`
    /// is false while a clear is still to run. Returns an id for [`Allocator::mark_ready`].
    pub(crate) fn park(&mut self, clusters: Vec<u32>, op_seq: u64, epoch: u64, ready: bool) -> u64 {
        for &c in &clusters {
            self.set_held(c, true);
        }
        self.next_id += 1;
        let id = self.next_id;
        self.parked.push(Parked {
            id,
            clusters,
            op_seq,
            epoch,
            ready,
        });
        id
    }

    /// The clear of parked batch `id` finished.
    pub(crate) fn mark_ready(&mut self, id: u64) {
        if let Some(p) = self.parked.iter_mut().find(|p| p.id == id) {
            p.ready = true;
        }
    }

    /// Returns every safe quarantined cluster to the pool; how many were returned.
    pub(crate) fn reclaim(&mut self, durable_seq: u64, grace: &Grace) -> usize {
        if self.parked.is_empty() {
            return 0;
        }
        // Two advances: enough for every batch freed before now when no I/O holds a guard.
        grace.try_advance();
        grace.try_advance();
        let mut back = Vec::new();
        self.parked.retain_mut(|p| {
            let safe = p.ready && p.op_seq <= durable_seq && grace.is_safe(p.epoch);
            if safe {
                back.append(&mut p.clusters);
            }
            !safe
        });
        let n = back.len();
        for &c in &back {
            self.set_held(c, false);
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_park_reclaim() {
        let st = MetaState::new(16, 2);
        let grace = Grace::new();
        let mut a = Allocator::new();
        assert_eq!(a.free_clusters(&st), 14);
        let got = a.reserve(&st, 10).unwrap();
        assert_eq!(got.len(), 10);
        assert!(got.iter().all(|&c| (2..16).contains(&c)));
        assert!(matches!(
            a.reserve(&st, 5),
            Err(LvolError::NoSpace {
                needed_clusters: 5,
                free_clusters: 4
            })
        ));
        a.release(&got[..4]);
        assert_eq!(a.free_clusters(&st), 8);
        let guard = grace.enter(); // an I/O that looked the clusters up before the free
        let id = a.park(got[4..].to_vec(), 7, grace.epoch(), false);
        assert_eq!(a.parked_clusters(), 6);
        assert_eq!(a.reclaim(7, &grace), 0, "not cleared yet");
        a.mark_ready(id);
        assert_eq!(a.reclaim(6, &grace), 0, "not durable yet");
        assert_eq!(a.reclaim(7, &grace), 0, "an I/O may still hold it");
        drop(guard);
        assert_eq!(a.reclaim(7, &grace), 6);
        assert_eq!(a.free_clusters(&st), 14);
    }
}
