//! Every live controller by CNTLID, and dynamic CNTLID allocation.
//!
//! CNTLIDs are unique across the whole target (a stronger form of the per-subsystem uniqueness
//! NVMe requires), allocated round-robin from 1 to FFEFh so a reconnecting host does not get
//! the CNTLID of the controller it just lost while stale state may still refer to it.

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use super::Controller;

pub use crate::plane::subsystem::MAX_CNTLID;

/// The registry of controllers.
#[derive(Debug)]
pub struct Controllers {
    map: DashMap<u16, Arc<Controller>>,
    next: AtomicU16,
}

impl Default for Controllers {
    fn default() -> Self {
        Self {
            map: DashMap::new(),
            next: AtomicU16::new(1),
        }
    }
}

impl Controllers {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Allocates a CNTLID in `range` (a subsystem's `min_cntlid..=max_cntlid`, within
    /// `1..=MAX_CNTLID`) and registers the controller `make` builds with it; `None` when all of
    /// them are in use.
    pub fn register<T>(
        &self,
        range: RangeInclusive<u16>,
        make: impl FnOnce(u16) -> (Arc<Controller>, T),
    ) -> Option<(Arc<Controller>, T)> {
        let (first, last) = ((*range.start()).max(1), (*range.end()).min(MAX_CNTLID));
        if first > last {
            return None;
        }
        let span = last - first + 1;
        for _ in 0..span {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let id = first + n % span;
            if let Entry::Vacant(v) = self.map.entry(id) {
                let (ctrl, extra) = make(id);
                v.insert(ctrl.clone());
                return Some((ctrl, extra));
            }
        }
        None
    }

    /// The controller `cntlid`.
    pub fn get(&self, cntlid: u16) -> Option<Arc<Controller>> {
        self.map.get(&cntlid).map(|r| r.value().clone())
    }

    /// Forgets controller `cntlid` (after teardown).
    pub fn remove(&self, cntlid: u16) {
        self.map.remove(&cntlid);
    }

    /// A snapshot of every controller.
    pub fn list(&self) -> Vec<Arc<Controller>> {
        let mut v: Vec<Arc<Controller>> = self.map.iter().map(|r| r.value().clone()).collect();
        v.sort_by_key(|c| c.cntlid());
        v
    }

    /// The controllers of subsystem `nqn`.
    pub fn of_subsystem(&self, nqn: &str) -> Vec<Arc<Controller>> {
        let mut v: Vec<Arc<Controller>> = self
            .map
            .iter()
            .filter(|r| r.value().subsystem().nqn() == nqn)
            .map(|r| r.value().clone())
            .collect();
        v.sort_by_key(|c| c.cntlid());
        v
    }

    /// How many controllers exist.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
