//! Connection admission: how many NVMe/TCP connections the target holds, in total and per
//! source address, and how long a connection may take to become a queue.
//!
//! A connection is *unconnected* from accept until its Fabrics Connect succeeds; that state
//! costs the target a socket and a task but proves nothing about the peer, so it is capped
//! separately (in total and per source), and it must end within the connect timeout (ICReq
//! and Connect both). When a cap would refuse a new connection, the oldest unconnected
//! connection (of that source, for a per-source cap) is closed to make room instead, so a
//! flood of idle handshakes cannot lock out well-behaved hosts. Connected queues are never
//! evicted: once they fill the total or per-source cap, new connections are refused (closed at
//! once) and counted.
//!
//! Defaults (flags and `LAMINA_*` variables of `lamina serve`): 16384 connections in total,
//! 1024 per source address, 1024 unconnected in total and 64 per source, 10 s to Connect.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

/// The limits (see the module docs for the defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections held at once, connected or not.
    pub max_connections: usize,
    /// Connections from one source address.
    pub max_per_source: usize,
    /// Connections that have not completed a Fabrics Connect.
    pub max_unconnected: usize,
    /// Unconnected connections from one source address.
    pub max_unconnected_per_source: usize,
    /// Time from accept to a successful Connect.
    pub connect_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 16 * 1024,
            max_per_source: 1024,
            max_unconnected: 1024,
            max_unconnected_per_source: 64,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The total cap is full of connected queues.
    Total,
    /// The source's cap is full of its connected queues.
    PerSource,
}

impl Refusal {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Total => "total",
            Self::PerSource => "per_source",
        }
    }
}

#[derive(Debug, Default)]
struct Source {
    all: usize,
    unconnected: usize,
}

#[derive(Debug, Default)]
struct State {
    total: usize,
    sources: HashMap<IpAddr, Source>,
    /// Unconnected connections, oldest first: admission order, source, how to close it.
    waiting: BTreeMap<u64, (IpAddr, CancellationToken)>,
    next: u64,
}

/// Counters the metrics read.
#[derive(Debug, Default)]
pub struct AdmissionStats {
    /// Refused because the total cap was full of connected queues.
    pub refused_total: AtomicU64,
    /// Refused because the source's cap was full of its connected queues.
    pub refused_per_source: AtomicU64,
    /// Unconnected connections closed to make room for new ones.
    pub evicted: AtomicU64,
    /// Connections closed for not completing ICReq and Connect in time.
    pub connect_timeouts: AtomicU64,
}

/// The admission state of the target.
#[derive(Debug)]
pub struct Admission {
    limits: Mutex<ConnectionLimits>,
    state: Mutex<State>,
    /// Counters for the metrics.
    pub stats: AdmissionStats,
}

/// One admitted connection; dropping it releases its place.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
    source: IpAddr,
    seq: u64,
    connected: bool,
    /// Cancelled when the connection is evicted.
    pub token: CancellationToken,
}

impl Admission {
    /// Admission with `limits`.
    pub fn new(limits: ConnectionLimits) -> Arc<Self> {
        Arc::new(Self {
            limits: Mutex::new(limits),
            state: Mutex::new(State::default()),
            stats: AdmissionStats::default(),
        })
    }

    /// The limits now.
    pub fn limits(&self) -> ConnectionLimits {
        *self.limits.lock()
    }

    /// Changes the limits (connections held already are kept).
    pub fn set_limits(&self, limits: ConnectionLimits) {
        *self.limits.lock() = limits;
    }

    /// Connections held now, and how many of them are unconnected.
    pub fn counts(&self) -> (usize, usize) {
        let s = self.state.lock();
        (s.total, s.waiting.len())
    }

    /// Admits a connection from `source`, closing the oldest unconnected connection when a cap
    /// is reached; its ticket's token is a child of `parent`.
    pub fn admit(
        self: &Arc<Self>,
        source: IpAddr,
        parent: &CancellationToken,
    ) -> Result<Ticket, Refusal> {
        let limits = self.limits();
        let mut s = self.state.lock();
        let from_source = |s: &State| {
            s.sources
                .get(&source)
                .map_or((0, 0), |c| (c.all, c.unconnected))
        };
        if s.total >= limits.max_connections && !self.evict(&mut s, None) {
            self.stats.refused_total.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::Total);
        }
        if from_source(&s).0 >= limits.max_per_source && !self.evict(&mut s, Some(source)) {
            self.stats
                .refused_per_source
                .fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::PerSource);
        }
        if s.waiting.len() >= limits.max_unconnected {
            self.evict(&mut s, None);
        }
        if from_source(&s).1 >= limits.max_unconnected_per_source {
            self.evict(&mut s, Some(source));
        }
        let seq = s.next;
        s.next += 1;
        let token = parent.child_token();
        s.waiting.insert(seq, (source, token.clone()));
        s.total += 1;
        let c = s.sources.entry(source).or_default();
        c.all += 1;
        c.unconnected += 1;
        Ok(Ticket {
            admission: Arc::clone(self),
            source,
            seq,
            connected: false,
            token,
        })
    }

    /// Closes the oldest unconnected connection (of `source`, if given); whether there was one.
    /// Its place is released when its task ends and drops the ticket; it no longer counts as
    /// unconnected from now on.
    fn evict(&self, s: &mut State, source: Option<IpAddr>) -> bool {
        let victim = s
            .waiting
            .iter()
            .find(|(_, (ip, _))| source.is_none_or(|want| *ip == want))
            .map(|(seq, _)| *seq);
        let Some(seq) = victim else {
            return false;
        };
        if let Some((ip, token)) = s.waiting.remove(&seq) {
            token.cancel();
            if let Some(c) = s.sources.get_mut(&ip) {
                c.unconnected -= 1;
            }
            // The evicted connection still holds its socket until its task sees the token;
            // its place counts as free now so the newcomer is not refused behind it.
            s.total -= 1;
            if let Some(c) = s.sources.get_mut(&ip) {
                c.all -= 1;
            }
        }
        self.stats.evicted.fetch_add(1, Ordering::Relaxed);
        true
    }
}

impl Ticket {
    /// The connection completed a Fabrics Connect: it is no longer evictable.
    pub fn connected(&mut self) {
        if self.connected {
            return;
        }
        let mut s = self.admission.state.lock();
        if s.waiting.remove(&self.seq).is_some() {
            if let Some(c) = s.sources.get_mut(&self.source) {
                c.unconnected -= 1;
            }
            self.connected = true;
        }
    }

    /// The connect timeout in force for this connection.
    pub fn connect_timeout(&self) -> Duration {
        self.admission.limits().connect_timeout
    }

    /// Counts a connect timeout.
    pub fn on_connect_timeout(&self) {
        let stats = &self.admission.stats;
        stats.connect_timeouts.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut s = self.admission.state.lock();
        // An evicted ticket was released at eviction already.
        let evicted = !self.connected && !s.waiting.contains_key(&self.seq);
        if evicted {
            return;
        }
        if !self.connected {
            s.waiting.remove(&self.seq);
        }
        s.total -= 1;
        let gone = match s.sources.get_mut(&self.source) {
            Some(c) => {
                c.all -= 1;
                if !self.connected {
                    c.unconnected -= 1;
                }
                c.all == 0
            }
            None => false,
        };
        if gone {
            s.sources.remove(&self.source);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            max_connections: 4,
            max_per_source: 3,
            max_unconnected: 3,
            max_unconnected_per_source: 2,
            connect_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn idle_handshakes_make_room_for_new_ones_oldest_first() {
        let a = Admission::new(limits());
        let root = CancellationToken::new();
        let first = a.admit(ip(1), &root).unwrap();
        let second = a.admit(ip(1), &root).unwrap();
        // The source's third unconnected connection evicts its oldest.
        let third = a.admit(ip(1), &root).unwrap();
        assert!(first.token.is_cancelled());
        assert!(!second.token.is_cancelled() && !third.token.is_cancelled());
        assert_eq!(a.counts(), (2, 2));
        drop(first);
        assert_eq!(a.counts(), (2, 2), "an evicted ticket was released once");
        assert_eq!(a.stats.evicted.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn connected_queues_are_never_evicted_and_fill_the_caps() {
        let a = Admission::new(limits());
        let root = CancellationToken::new();
        let mut held = Vec::new();
        for _ in 0..3 {
            let mut t = a.admit(ip(1), &root).unwrap();
            t.connected();
            held.push(t);
        }
        assert_eq!(a.admit(ip(1), &root).unwrap_err(), Refusal::PerSource);
        let mut other = a.admit(ip(2), &root).unwrap();
        other.connected();
        assert_eq!(a.admit(ip(3), &root).unwrap_err(), Refusal::Total);
        assert!(held.iter().all(|t| !t.token.is_cancelled()));
        assert_eq!(a.stats.refused_total.load(Ordering::Relaxed), 1);
        assert_eq!(a.stats.refused_per_source.load(Ordering::Relaxed), 1);
        drop(held);
        drop(other);
        assert_eq!(a.counts(), (0, 0));
    }

    #[test]
    fn a_full_total_cap_evicts_an_unconnected_connection_of_any_source() {
        let a = Admission::new(limits());
        let root = CancellationToken::new();
        let idle = a.admit(ip(9), &root).unwrap();
        let mut held = Vec::new();
        for last in 1..=3 {
            let mut t = a.admit(ip(last), &root).unwrap();
            t.connected();
            held.push(t);
        }
        let newcomer = a.admit(ip(4), &root).unwrap();
        assert!(idle.token.is_cancelled());
        assert!(!newcomer.token.is_cancelled());
    }
}
