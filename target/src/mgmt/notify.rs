//! The event log behind SPDK's `notify_get_types` and `notify_get_notifications`: bdevs
//! (base bdevs and lvols, under the name `bdev_get_bdevs` lists) appearing and going.
//!
//! Events are found by comparing the registries with what was last seen ([`Notifier::observe`]),
//! which the RPC layer runs after every management call and before every read of the log; every
//! bdev and lvol is created and deleted by such a call (a restore and a retry of pending
//! configuration replay them), so each change is seen in the order the calls finished. A bdev
//! created and deleted by two calls racing each other between two observations can go
//! unreported; nothing else can. As in SPDK the log keeps the last 1024 events, numbered from 0;
//! a reader asking for an older one gets the oldest kept.

use std::collections::{BTreeSet, VecDeque};

use parking_lot::Mutex;

/// The event types, as SPDK names them.
pub const TYPES: [&str; 2] = ["bdev_register", "bdev_unregister"];

/// Events kept (SPDK's `SPDK_NOTIFY_MAX_EVENTS`).
pub const CAPACITY: usize = 1024;

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Its number, from 0.
    pub id: u64,
    /// One of [`TYPES`].
    pub kind: &'static str,
    /// The bdev's name.
    pub ctx: String,
}

/// The event log.
#[derive(Debug, Default)]
pub struct Notifier {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    seen: BTreeSet<String>,
    events: VecDeque<Event>,
    next: u64,
}

impl Inner {
    fn push(&mut self, kind: &'static str, ctx: String) {
        if self.events.len() == CAPACITY {
            self.events.pop_front();
        }
        self.events.push_back(Event {
            id: self.next,
            kind,
            ctx,
        });
        self.next += 1;
    }
}

impl Notifier {
    /// Records the bdevs that appeared or went since the last observation; `names` lists
    /// every bdev now (`Target::bdev_names`), and is called under the log's lock so two
    /// observers cannot report one change twice or out of order.
    pub fn observe(&self, names: impl FnOnce() -> Vec<String>) {
        let mut inner = self.inner.lock();
        let now: BTreeSet<String> = names().into_iter().collect();
        let gone: Vec<String> = inner.seen.difference(&now).cloned().collect();
        let new: Vec<String> = now.difference(&inner.seen).cloned().collect();
        for name in gone {
            inner.push("bdev_unregister", name);
        }
        for name in new {
            inner.push("bdev_register", name);
        }
        inner.seen = now;
    }

    /// Up to `max` events from number `from` on (from the oldest kept when it is older).
    pub fn events(&self, from: u64, max: u64) -> Vec<Event> {
        let inner = self.inner.lock();
        inner
            .events
            .iter()
            .filter(|e| e.id >= from)
            .take(usize::try_from(max).unwrap_or(usize::MAX))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_the_last_events_numbered_from_zero() {
        let n = Notifier::default();
        {
            let mut i = n.inner.lock();
            for k in 0..(CAPACITY + 10) {
                i.push("bdev_register", format!("b{k}"));
            }
        }
        let all = n.events(0, u64::MAX);
        assert_eq!(all.len(), CAPACITY);
        assert_eq!(all[0].id, 10, "the oldest ten were dropped");
        assert_eq!(n.events(CAPACITY as u64 + 8, 10).len(), 2);
        assert_eq!(
            n.events(20, 3).iter().map(|e| e.id).collect::<Vec<_>>(),
            [20, 21, 22]
        );
    }
}
