//! [`DataPlane`]: the state every host-facing part of the target shares (what a connection,
//! a controller, an admin or I/O command and the discovery log page reach), behind one
//! `Arc<DataPlane>`. It knows nothing of JSON-RPC, configuration files, bdev registries or
//! long operations: those belong to the management plane's [`crate::mgmt::context::Target`], which
//! holds the data plane and reaches it by `Deref`.
//!
//! Each registry hands out refcounted handles and owns its own locking; nothing here is a
//! global lock. The root cancellation token and task tracker implement shutdown: every
//! listener, connection and controller holds a child token and runs in the tracker.

pub mod admin;
pub mod auth;
pub mod bdev;
pub mod command;
pub mod connect;
pub mod controller;
pub mod discovery;
pub mod dispatch;
pub mod io;
pub mod keyring;
pub mod ports;
pub mod stats;
pub mod subsystem;
pub mod tls;

use std::sync::Arc;

use parking_lot::RwLock;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::options::TransportOptions;
use crate::plane::controller::Controllers;
use crate::plane::ports::Ports;
use crate::plane::stats::TransportStats;
use crate::plane::subsystem::Subsystems;
use crate::settings::Settings;

/// What hosts see of the target.
#[derive(Debug)]
pub struct DataPlane {
    options: RwLock<TransportOptions>,
    /// Subsystems by NQN.
    pub subsystems: Arc<Subsystems>,
    /// Controllers by CNTLID.
    pub controllers: Arc<Controllers>,
    /// NVMe/TCP listening ports (their IDs for the discovery log page).
    pub ports: Ports,
    /// Transport counters.
    pub transport_stats: Arc<TransportStats>,
    /// Process settings, fixed at start-up.
    pub settings: Settings,
    /// Cancelled at shutdown.
    pub cancel: CancellationToken,
    /// Every task of the target, waited on at shutdown.
    pub tracker: TaskTracker,
}

impl DataPlane {
    /// A data plane with nothing but the discovery subsystem.
    pub fn new(options: TransportOptions, settings: Settings) -> Self {
        Self {
            options: RwLock::new(options),
            subsystems: Arc::new(Subsystems::new()),
            controllers: Arc::new(Controllers::new()),
            ports: Ports::new(),
            transport_stats: Arc::new(TransportStats::default()),
            settings,
            cancel: CancellationToken::new(),
            tracker: TaskTracker::new(),
        }
    }

    /// The transport options now.
    pub fn options(&self) -> TransportOptions {
        self.options.read().clone()
    }

    /// Replaces the transport options (new connections and controllers see them).
    pub fn set_options(&self, options: TransportOptions) {
        *self.options.write() = options;
    }
}
