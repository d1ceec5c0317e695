//! In-band authentication (NVMe Base 2.x, DH-HMAC-CHAP) of each queue: a host whose entry on
//! the subsystem's allow-list has a `dhchap_key` gets ATR in every Connect response, and until
//! the queue has authenticated, every command on it but Authentication Send/Receive fails with
//! Authentication Required (as SPDK gates its queues). This module owns the per-queue state
//! ([`QueueAuth`]); `commands` runs the two Fabrics commands, `watchdog` ends a first
//! authentication that stalls, [`session`] is the state machine, [`chap`] and [`dh`] the computations.

pub mod chap;
mod commands;
pub mod dh;
mod ffdhe;
pub mod session;
mod watchdog;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

pub use chap::HashFn;
pub use commands::{receive, send};
pub use dh::DhGroup;
pub use session::{FailReason, Policy, Step};
pub use watchdog::watchdog;

use session::Session;

/// One queue's authentication: whether the host must authenticate, whether it has, and the
/// transaction in progress.
#[derive(Debug)]
pub struct QueueAuth {
    required: bool,
    authenticated: AtomicBool,
    session: Mutex<Session>,
    /// When the queue connected: a host that never starts authenticating times out from here.
    connected: Instant,
    step_timeout: Duration,
}

impl QueueAuth {
    /// A queue whose host must (`required`) or need not authenticate; each step of a
    /// transaction must follow the last within `step_timeout`.
    pub fn new(required: bool, step_timeout: Duration) -> Self {
        Self {
            required,
            authenticated: AtomicBool::new(false),
            session: Mutex::new(Session::new(step_timeout)),
            connected: Instant::now(),
            step_timeout,
        }
    }

    /// When the first authentication of the queue times out, unless it completes first.
    pub(crate) fn first_deadline(&self) -> Instant {
        self.session
            .lock()
            .deadline()
            .unwrap_or(self.connected + self.step_timeout)
    }

    /// Whether commands other than authentication may run.
    pub fn admits(&self) -> bool {
        !self.required || self.authenticated.load(Ordering::Acquire)
    }

    /// Whether the host must authenticate on this queue.
    pub fn required(&self) -> bool {
        self.required
    }

    /// SPDK's `auth` object of `nvmf_subsystem_get_qpairs`: state, digest and DH group.
    pub fn describe(&self) -> Option<(Step, Option<(HashFn, DhGroup)>)> {
        let s = self.session.lock();
        (self.required || s.step() != Step::Negotiate).then(|| (s.step(), s.negotiated()))
    }
}

/// The step timeout for a controller with keep-alive timeout `kato_ms` (0: none): KATO as
/// SPDK and nvmet use it, but never under [`MIN_STEP_TIMEOUT`] (a host's first use of a large
/// DH group can take seconds: Linux self-tests the algorithm then), and 120 s without one.
pub fn step_timeout(kato_ms: u32) -> Duration {
    if kato_ms == 0 {
        session::DEFAULT_STEP_TIMEOUT
    } else {
        Duration::from_millis(u64::from(kato_ms)).max(MIN_STEP_TIMEOUT)
    }
}

/// The shortest step timeout.
pub const MIN_STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// The next challenge sequence number: a random start, then one more each time, never 0.
pub(crate) fn next_seqnum() -> u32 {
    static NEXT: std::sync::OnceLock<AtomicU32> = std::sync::OnceLock::new();
    let counter = NEXT.get_or_init(|| {
        let mut b = [0u8; 4];
        // Without the OS's randomness the sequence still works; it is just predictable.
        let _ = getrandom::fill(&mut b);
        AtomicU32::new(u32::from_le_bytes(b))
    });
    loop {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        if n != 0 {
            return n;
        }
    }
}
