//! Controllers: one per admin Connect, shared by the admin queue and the I/O queues that join it.
//!
//! A controller owns what NVMe keeps per controller: CC/CSTS and their enable and shutdown state
//! machines ([`properties`]), the features the host set, the I/O queues that joined, the
//! Asynchronous Event state ([`aer`]), the keep-alive deadline and a supervisor task (in
//! `crate::plane::connect::supervisor`) that tears the controller down when the host goes silent past
//! KATO. Teardown is one
//! cancellation token: every queue of the controller holds a child of it, so cancelling it
//! closes every connection of the controller, which fails their outstanding commands. Its
//! lifecycle (connecting, enabled, failed, shutting down, shut down, tearing down, gone) is a
//! transition table ([`lifecycle`]) moved by CC writes, teardown and release.

pub mod aer;
pub mod errors;
pub mod lifecycle;
pub mod properties;
pub mod registry;
pub mod stats;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use lamina_lvol::drain::{Drain, DrainGuard};
use lamina_lvol::lifecycle::{Illegal, StateCell};
use lifecycle::{ControllerEvent, ControllerState};

use lamina_protocol::fabrics::{Cc, Csts};
use lamina_protocol::nvme::Cqe;
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use registry::Controllers;

use crate::plane::subsystem::{Namespace, Subsystem};
use aer::AerState;
use stats::ControllerStats;

/// What the host set with Set Features, and what the controller granted. A controller reset
/// brings every one back to [`Features::defaults`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// Arbitration (FID 01h): AB, LPW, MPW, HPW as the host set them.
    pub arbitration: u32,
    /// Power Management (FID 02h): PS and WH.
    pub power_management: u32,
    /// Temperature Threshold (FID 04h) of the Composite Temperature: over, in Kelvin.
    pub temperature_over_k: u16,
    /// Temperature Threshold of the Composite Temperature: under, in Kelvin.
    pub temperature_under_k: u16,
    /// Write Atomicity Normal (FID 0Ah): DN.
    pub write_atomicity: u32,
    /// I/O Command Set Profile (FID 19h): the index into the I/O Command Set data structure.
    pub iocs_profile: u16,
    /// Asynchronous Event Configuration (FID 0Bh).
    pub async_event_config: u32,
    /// Volatile Write Cache enabled (FID 06h).
    pub volatile_write_cache: bool,
    /// The host's Timestamp (FID 0Eh) in ms, and when it was set.
    pub timestamp: Option<(u64, Instant)>,
    /// I/O queues granted by Number of Queues (FID 07h), 1-based.
    pub io_queues_granted: u16,
    /// Whether Number of Queues was set (it may be set once per controller reset).
    pub io_queues_set: bool,
}

impl Features {
    /// The values a controller starts with and returns to at each controller reset.
    pub fn defaults(max_io_queues: u16) -> Self {
        Self {
            // AB 111b: no burst limit (each SQ is its own connection, served on its own).
            arbitration: 0b111,
            power_management: 0,
            // No sensor to cross either threshold: over at the top of the range, under at 0 K.
            temperature_over_k: u16::MAX,
            temperature_under_k: 0,
            write_atomicity: 0,
            iocs_profile: 0,
            async_event_config: 0,
            volatile_write_cache: true,
            timestamp: None,
            io_queues_granted: max_io_queues,
            io_queues_set: false,
        }
    }
}

/// Identity of the host and the connection that created the controller.
#[derive(Debug, Clone)]
pub struct HostIdentity {
    /// The host NQN from Connect.
    pub hostnqn: String,
    /// The host identifier from Connect.
    pub hostid: [u8; 16],
    /// The host's address.
    pub peer: SocketAddr,
    /// The local address the host connected to.
    pub local: SocketAddr,
}

/// One controller.
#[derive(Debug)]
pub struct Controller {
    cntlid: u16,
    subsystem: Arc<Subsystem>,
    host: HostIdentity,
    kato_ms: AtomicU32,
    /// KATO from Connect: the Keep Alive Timer's default value.
    kato_default_ms: u32,
    /// Wakes the supervisor when KATO changes, so a new value applies at once.
    kato_changed: tokio::sync::Notify,
    sq_flow_control_disabled: bool,
    regs: Mutex<(Cc, Csts)>,
    /// CC.EN and CSTS.RDY both set: kept with `regs` (written under its lock) so the I/O path
    /// reads one atomic instead of taking the register lock per command.
    ready: AtomicBool,
    features: Mutex<Features>,
    /// Features' Volatile Write Cache enable, kept with `features` for the write path.
    volatile_write_cache: AtomicBool,
    /// Error Recovery (FID 05h, namespace scope): the value for every namespace, and the
    /// namespaces the host set one for.
    error_recovery: Mutex<(u32, BTreeMap<u32, u32>)>,
    io_queues: Mutex<BTreeMap<u16, (u64, CancellationToken)>>,
    /// Each bound queue's authentication state, by QID (for `nvmf_subsystem_get_qpairs`).
    queue_auth: Mutex<BTreeMap<u16, std::sync::Weak<crate::plane::auth::QueueAuth>>>,
    next_queue_id: std::sync::atomic::AtomicU64,
    max_io_queues: u16,
    aer: Mutex<AerState>,
    oob: mpsc::UnboundedSender<Cqe>,
    cancel: CancellationToken,
    created: Instant,
    last_activity_ms: AtomicU32,
    admin_sqsize: AtomicU16,
    stats: ControllerStats,
    errors: Mutex<errors::ErrorLog>,
    /// Its queues (admin and I/O) that have not finished yet: a queue enters when Connect binds
    /// it and leaves once its last command has completed. Closed at teardown; the supervisor
    /// releases the controller when it is idle (see `supervisor`).
    queues: Arc<Drain>,
    /// Where it is in its life (see [`lifecycle`]).
    life: StateCell<ControllerState>,
}

/// The receiving end of completions generated outside the admin queue's command flow
/// (Asynchronous Event Request completions); owned by the admin queue's connection.
pub type OobReceiver = mpsc::UnboundedReceiver<Cqe>;

/// Arguments of [`Controller::new`].
#[derive(Debug)]
pub struct NewController {
    /// The dynamic controller ID.
    pub cntlid: u16,
    /// The subsystem.
    pub subsystem: Arc<Subsystem>,
    /// Who connected.
    pub host: HostIdentity,
    /// KATO from Connect, in ms (0: no keep-alive).
    pub kato_ms: u32,
    /// Whether the admin Connect disabled SQ flow control.
    pub sq_flow_control_disabled: bool,
    /// The most I/O queues this controller may have.
    pub max_io_queues: u16,
    /// The server's root cancellation (teardown follows it).
    pub parent: CancellationToken,
}

impl Controller {
    /// Records the authentication state of the queue just bound as `qid`.
    pub fn set_queue_auth(&self, qid: u16, auth: &Arc<crate::plane::auth::QueueAuth>) {
        let mut m = self.queue_auth.lock();
        m.retain(|_, a| a.strong_count() > 0);
        m.insert(qid, Arc::downgrade(auth));
    }

    /// The authentication state of queue `qid`, while it is bound.
    pub fn queue_auth(&self, qid: u16) -> Option<Arc<crate::plane::auth::QueueAuth>> {
        self.queue_auth
            .lock()
            .get(&qid)
            .and_then(std::sync::Weak::upgrade)
    }

    /// Creates the controller and the receiver of its out-of-band completions.
    pub fn new(args: NewController) -> (Arc<Self>, OobReceiver) {
        let (tx, rx) = mpsc::unbounded_channel();
        let ctrl = Self {
            cntlid: args.cntlid,
            subsystem: args.subsystem,
            host: args.host,
            kato_ms: AtomicU32::new(args.kato_ms),
            kato_default_ms: args.kato_ms,
            kato_changed: tokio::sync::Notify::new(),
            sq_flow_control_disabled: args.sq_flow_control_disabled,
            regs: Mutex::new((Cc(0), Csts(0))),
            ready: AtomicBool::new(false),
            features: Mutex::new(Features::defaults(args.max_io_queues)),
            volatile_write_cache: AtomicBool::new(
                Features::defaults(args.max_io_queues).volatile_write_cache,
            ),
            error_recovery: Mutex::new((0, BTreeMap::new())),
            io_queues: Mutex::new(BTreeMap::new()),
            queue_auth: Mutex::new(BTreeMap::new()),
            next_queue_id: std::sync::atomic::AtomicU64::new(1),
            max_io_queues: args.max_io_queues,
            aer: Mutex::new(AerState::default()),
            oob: tx,
            cancel: args.parent.child_token(),
            created: Instant::now(),
            last_activity_ms: AtomicU32::new(0),
            admin_sqsize: AtomicU16::new(0),
            stats: ControllerStats::default(),
            errors: Mutex::new(errors::ErrorLog::default()),
            queues: Arc::new(Drain::new()),
            life: StateCell::new(),
        };
        (Arc::new(ctrl), rx)
    }

    /// The controller ID.
    pub fn cntlid(&self) -> u16 {
        self.cntlid
    }

    /// The subsystem.
    pub fn subsystem(&self) -> &Arc<Subsystem> {
        &self.subsystem
    }

    /// Who connected.
    pub fn host(&self) -> &HostIdentity {
        &self.host
    }

    /// Namespace `nsid` if this controller's host sees it (masked namespaces are inactive to
    /// other hosts: see `crate::plane::subsystem::visibility`).
    pub fn namespace(&self, nsid: u32) -> Option<Arc<Namespace>> {
        self.subsystem
            .namespace(nsid)
            .filter(|ns| ns.visibility().visible_to(&self.host.hostnqn))
    }

    /// Every namespace this controller's host sees, by NSID.
    pub fn namespaces(&self) -> Vec<Arc<Namespace>> {
        let mut all = self.subsystem.namespaces();
        all.retain(|ns| ns.visibility().visible_to(&self.host.hostnqn));
        all
    }

    /// The NSIDs active for this controller's host, ascending.
    pub fn nsids(&self) -> Vec<u32> {
        self.namespaces().iter().map(|ns| ns.nsid()).collect()
    }

    /// Keep Alive Timeout in ms (0: none).
    pub fn kato_ms(&self) -> u32 {
        self.kato_ms.load(Ordering::Acquire)
    }

    /// KATO from Connect, the Keep Alive Timer's default.
    pub fn kato_default_ms(&self) -> u32 {
        self.kato_default_ms
    }

    /// Sets KATO (Set Features Keep Alive Timer); the new timeout runs from now.
    pub fn set_kato_ms(&self, ms: u32) {
        self.touch();
        self.kato_ms.store(ms, Ordering::Release);
        self.kato_changed.notify_one();
    }

    /// Resolves when KATO was changed (a permit is kept if nobody waits).
    pub async fn kato_changed(&self) {
        self.kato_changed.notified().await;
    }

    /// Whether the host disabled SQ flow control (so C2HData may carry SUCCESS).
    pub fn sq_flow_control_disabled(&self) -> bool {
        self.sq_flow_control_disabled
    }

    /// The teardown token; every queue of the controller holds a child of it.
    pub fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Tears the controller down: every queue closes. Idempotent.
    pub fn tear_down(&self) {
        if let Err(e) = self.life.apply(ControllerEvent::TearDown)
            && !matches!(e.from, ControllerState::TearingDown | ControllerState::Gone)
        {
            tracing::error!(cntlid = self.cntlid, error = %e, "illegal controller transition");
        }
        self.cancel.cancel();
        self.queues.close();
    }

    /// Marks a torn-down controller released: none of its queues runs any more.
    pub fn release(&self) {
        if let Err(e) = self.life.apply(ControllerEvent::Release) {
            tracing::error!(cntlid = self.cntlid, error = %e, "illegal controller transition");
        }
    }

    /// Where the controller is in its life.
    pub fn state(&self) -> ControllerState {
        self.life.get()
    }

    /// Moves the lifecycle for a register change (see [`properties`]).
    fn transition(
        &self,
        event: ControllerEvent,
    ) -> Result<ControllerState, Illegal<ControllerState>> {
        self.life.apply(event)
    }

    /// Counts a queue bound to the controller until the guard drops; `None` once the
    /// controller is torn down (no queue may join it then).
    pub fn enter_queue(&self) -> Option<DrainGuard> {
        if self.is_torn_down() {
            self.queues.close();
        }
        Drain::enter_owned(&self.queues)
    }

    /// Queues bound and not finished.
    pub fn queues_running(&self) -> u64 {
        self.queues.in_flight()
    }

    /// Waits until every queue the controller had has finished its commands (it must be torn
    /// down: otherwise new queues may still join).
    pub async fn queues_finished(&self) {
        self.queues.close();
        self.queues.wait_idle().await;
    }

    /// Whether the controller was torn down.
    pub fn is_torn_down(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Records host activity (any command), which restarts the keep-alive timer.
    pub fn touch(&self) {
        let ms = u32::try_from(self.created.elapsed().as_millis()).unwrap_or(u32::MAX);
        self.last_activity_ms.store(ms, Ordering::Release);
    }

    /// When the keep-alive timer expires, if KATO is set.
    pub fn keep_alive_deadline(&self) -> Option<Instant> {
        let kato = self.kato_ms();
        (kato != 0).then(|| {
            let last = u64::from(self.last_activity_ms.load(Ordering::Acquire));
            self.created + Duration::from_millis(last + u64::from(kato))
        })
    }

    /// CC and CSTS now.
    pub fn registers(&self) -> (Cc, Csts) {
        *self.regs.lock()
    }

    /// Whether the host enabled the controller and it is ready (commands other than Fabrics
    /// ones are refused before).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Stores CC and CSTS (the caller holds the register lock) and the ready flag with them.
    fn store_registers(&self, regs: &mut (Cc, Csts), cc: Cc, csts: Csts) {
        *regs = (cc, csts);
        self.ready
            .store(cc.enabled() && csts.ready(), Ordering::Release);
    }

    /// The features now.
    pub fn features(&self) -> Features {
        *self.features.lock()
    }

    /// Changes the features.
    pub fn update_features<R>(&self, f: impl FnOnce(&mut Features) -> R) -> R {
        let mut features = self.features.lock();
        let r = f(&mut features);
        self.volatile_write_cache
            .store(features.volatile_write_cache, Ordering::Release);
        r
    }

    /// Whether the volatile write cache is enabled (without it every write is written
    /// through); one atomic load, for the write path.
    pub fn volatile_write_cache(&self) -> bool {
        self.volatile_write_cache.load(Ordering::Acquire)
    }

    /// Error Recovery of namespace `nsid` (`None`: the value for every namespace).
    pub fn error_recovery(&self, nsid: Option<u32>) -> u32 {
        let er = self.error_recovery.lock();
        nsid.and_then(|n| er.1.get(&n).copied()).unwrap_or(er.0)
    }

    /// Sets Error Recovery for namespace `nsid`, or for every namespace (`None`).
    pub fn set_error_recovery(&self, nsid: Option<u32>, value: u32) {
        let mut er = self.error_recovery.lock();
        match nsid {
            Some(n) => {
                er.1.insert(n, value);
            }
            None => *er = (value, BTreeMap::new()),
        }
    }

    /// The most I/O queues this controller may have.
    pub fn max_io_queues(&self) -> u16 {
        self.max_io_queues
    }

    /// Registers I/O queue `qid` and returns its registration (to unregister it with) and the
    /// token that closes it (a child of the controller's), or why it cannot join.
    pub fn add_io_queue(&self, qid: u16) -> Result<(u64, CancellationToken), IoQueueRefusal> {
        let granted = self.features().io_queues_granted;
        if qid == 0 || qid > granted {
            return Err(IoQueueRefusal::OutOfRange { granted });
        }
        if !self.is_ready() {
            return Err(IoQueueRefusal::NotReady);
        }
        let mut queues = self.io_queues.lock();
        if queues.contains_key(&qid) {
            return Err(IoQueueRefusal::Exists);
        }
        let token = self.cancel.child_token();
        let id = self.next_queue_id.fetch_add(1, Ordering::Relaxed);
        queues.insert(qid, (id, token.clone()));
        Ok((id, token))
    }

    /// Closes every I/O queue (controller reset or shutdown).
    pub fn close_io_queues(&self) {
        for (_, (_, token)) in std::mem::take(&mut *self.io_queues.lock()) {
            token.cancel();
        }
    }

    /// Unregisters I/O queue `qid` if it is still the registration `id` (a reset may have
    /// closed it and a new connection taken the QID since).
    pub fn remove_io_queue(&self, qid: u16, id: u64) {
        let mut queues = self.io_queues.lock();
        if queues.get(&qid).is_some_and(|(cur, _)| *cur == id) {
            queues.remove(&qid);
        }
    }

    /// I/O queues connected now.
    pub fn io_queue_count(&self) -> usize {
        self.io_queues.lock().len()
    }

    /// The admin queue size (0's based SQSIZE + 1).
    pub fn admin_queue_size(&self) -> u16 {
        self.admin_sqsize.load(Ordering::Acquire)
    }

    /// Records the admin queue size.
    pub fn set_admin_queue_size(&self, size: u16) {
        self.admin_sqsize.store(size, Ordering::Release);
    }

    /// Per-controller counters (SMART / Health).
    pub fn stats(&self) -> &ControllerStats {
        &self.stats
    }

    /// Sends a completion on the admin queue outside the normal command flow.
    fn send_oob(&self, cqe: Cqe) {
        // The admin queue is gone only when the controller is being torn down.
        let _ = self.oob.send(cqe);
    }
}

/// Why an I/O queue cannot join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoQueueRefusal {
    /// QID 0 or above the granted number of queues.
    OutOfRange {
        /// Queues granted.
        granted: u16,
    },
    /// The QID is connected already.
    Exists,
    /// The controller is not enabled and ready (CC.EN, CSTS.RDY).
    NotReady,
}

impl Controller {
    /// The I/O queue IDs connected now.
    pub fn io_queue_ids(&self) -> Vec<u16> {
        self.io_queues.lock().keys().copied().collect()
    }
}
