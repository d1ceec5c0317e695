//! The target's shared state: every registry a connection, an RPC or a metrics scrape reaches,
//! behind one `Arc<Target>`.
//!
//! Each registry hands out refcounted handles and owns its own locking; nothing here is a
//! global lock. The root cancellation token and task tracker implement shutdown: every listener,
//! connection and controller holds a child token and runs in the tracker.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use parking_lot::RwLock;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::bdev::Bdevs;
use crate::controller::Controllers;
use crate::options::TransportOptions;
use crate::ports::Ports;
use crate::stats::TransportStats;
use crate::subsystem::Subsystems;

/// The whole target.
#[derive(Debug)]
pub struct Target {
    options: RwLock<TransportOptions>,
    /// Base devices by name.
    pub bdevs: Bdevs,
    /// Lvstores and lvols.
    pub lvols: lamina_lvol::Registry,
    /// Subsystems by NQN.
    pub subsystems: Arc<Subsystems>,
    /// Controllers by CNTLID.
    pub controllers: Arc<Controllers>,
    /// NVMe/TCP listening ports.
    pub ports: Ports,
    /// Transport counters.
    pub transport_stats: Arc<TransportStats>,
    /// Cancelled at shutdown.
    pub cancel: CancellationToken,
    /// Every task of the target, waited on at shutdown.
    pub tracker: TaskTracker,
    /// Whether `nvmf_create_transport` (or the embedded default) set the transport up.
    pub transport_created: AtomicBool,
    /// Where the configuration is persisted after every change (`None`: not persisted).
    pub state_path: RwLock<Option<PathBuf>>,
    /// Serialises configuration writes so the file always holds the newest state.
    pub persist_lock: parking_lot::Mutex<()>,
    /// Long lvol operations in progress (inflate, decouple, clearing deletes, thick creates).
    pub operations: crate::rpc::operations::Operations,
    /// NVMe/TCP connection limits and who holds a place.
    pub admission: Arc<crate::transport::admission::Admission>,
    /// The files and devices RPCs may open (nothing until the server sets it).
    pub paths: RwLock<crate::path_policy::PathPolicy>,
    /// Socket options of accepted connections (`sock_impl_set_options`).
    pub sock_options: RwLock<crate::options::SockImpls>,
    /// Configuration entries not applied yet (see `crate::config::pending`).
    pub pending: crate::config::pending::PendingConfig,
    /// Bdevs registered and unregistered, for `notify_get_notifications`.
    pub notifier: crate::notify::Notifier,
}

impl Target {
    /// A target with nothing configured but the discovery subsystem.
    pub fn new(options: TransportOptions) -> Arc<Self> {
        Arc::new(Self {
            options: RwLock::new(options),
            bdevs: Bdevs::new(),
            lvols: lamina_lvol::Registry::new(),
            subsystems: Arc::new(Subsystems::new()),
            controllers: Arc::new(Controllers::new()),
            ports: Ports::new(),
            transport_stats: Arc::new(TransportStats::default()),
            cancel: CancellationToken::new(),
            tracker: TaskTracker::new(),
            transport_created: AtomicBool::new(false),
            state_path: RwLock::new(None),
            persist_lock: parking_lot::Mutex::new(()),
            operations: crate::rpc::operations::Operations::new(),
            paths: RwLock::new(crate::path_policy::PathPolicy::default()),
            sock_options: RwLock::new(crate::options::SockImpls::default()),
            pending: crate::config::pending::PendingConfig::new(),
            notifier: crate::notify::Notifier::default(),
            admission: crate::transport::admission::Admission::new(
                crate::transport::admission::ConnectionLimits::default(),
            ),
        })
    }

    /// The transport options now.
    pub fn options(&self) -> TransportOptions {
        self.options.read().clone()
    }

    /// The name of every bdev as `bdev_get_bdevs` lists it, in its order: base bdevs, then
    /// lvols (by UUID).
    pub fn bdev_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .bdevs
            .list()
            .iter()
            .map(|b| b.name().to_owned())
            .collect();
        names.extend(
            self.lvols
                .list_lvols(None)
                .iter()
                .map(|i| i.uuid.to_string()),
        );
        names
    }

    /// Replaces the transport options (new connections use them).
    pub fn set_options(&self, options: TransportOptions) {
        *self.options.write() = options;
    }
}
