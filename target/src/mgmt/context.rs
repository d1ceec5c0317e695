//! The management plane's view of the target: the data plane (through the network shell, by
//! `Deref`) plus what only management uses: bdev and lvol registries, the persisted
//! configuration, long operations, pending configuration, the path policy and the bdev event
//! log, behind one `Arc<Target>`. Host-facing code never sees this type: it works on
//! [`crate::plane::DataPlane`].
//!
//! [`ChangeHook`] is how the RPC layer reaches the configuration above it without naming it:
//! the configuration installs the hook, the RPC layer calls it around every change.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;
use serde_json::Value;

use crate::mgmt::rpc::error::RpcError;
use crate::options::TransportOptions;
use crate::plane::DataPlane;
use crate::plane::bdev::Bdevs;
use crate::transport::Network;

/// The whole target.
#[derive(Debug)]
pub struct Target {
    /// The network shell, and through it the data plane.
    pub net: Arc<Network>,
    /// Base devices by name.
    pub bdevs: Bdevs,
    /// Lvstores and lvols.
    pub lvols: lamina_lvol::Registry,
    /// Whether `nvmf_create_transport` (or the embedded default) set the transport up.
    pub transport_created: AtomicBool,
    /// Where the configuration is persisted after every change (`None`: not persisted).
    pub state_path: RwLock<Option<PathBuf>>,
    /// Serialises configuration writes so the file always holds the newest state.
    pub persist_lock: parking_lot::Mutex<()>,
    /// Long lvol operations in progress (inflate, decouple, clearing deletes, thick creates).
    pub operations: crate::mgmt::operations::Operations,
    /// The files and devices RPCs may open (nothing until the server sets it).
    pub paths: RwLock<crate::mgmt::path_policy::PathPolicy>,
    /// Configuration entries not applied yet (see `crate::mgmt::config::pending`).
    pub pending: crate::mgmt::config::pending::PendingConfig,
    /// Bdevs registered and unregistered, for `notify_get_notifications`.
    pub notifier: crate::mgmt::notify::Notifier,
    /// Named keys (`keyring_file_add_key`).
    pub keyring: crate::plane::keyring::Keyring,
    /// What runs around every RPC that changes state (installed once, by
    /// `crate::mgmt::methods`: the configuration's guard and persistence).
    changes: OnceLock<Arc<dyn ChangeHook>>,
}

/// What the RPC layer calls around a method that changes state, so that it needs to know
/// nothing of the configuration above it: `admit` before the method runs (pending
/// configuration may hold the names it would take), `applied` after it succeeded (persist,
/// wake pending entries).
pub trait ChangeHook: Send + Sync + std::fmt::Debug {
    /// Refuses a call that would take what pending configuration holds.
    fn admit(&self, t: &Target, method: &str, params: &Value) -> Result<(), RpcError>;

    /// Runs after the call succeeded.
    fn applied<'a>(
        &'a self,
        t: &'a Arc<Target>,
        method: &'a str,
        params: &'a Value,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
}

impl std::ops::Deref for Target {
    type Target = Network;

    fn deref(&self) -> &Network {
        &self.net
    }
}

impl Target {
    /// A target with nothing configured but the discovery subsystem.
    pub fn new(options: TransportOptions) -> Arc<Self> {
        Self::with_settings(options, crate::settings::Settings::default())
    }

    /// [`Target::new`] with process settings other than the defaults.
    pub fn with_settings(
        options: TransportOptions,
        settings: crate::settings::Settings,
    ) -> Arc<Self> {
        let plane = Arc::new(DataPlane::new(options, settings));
        Arc::new(Self {
            net: Arc::new(Network::new(plane)),
            bdevs: Bdevs::new(),
            lvols: lamina_lvol::Registry::new(),
            transport_created: AtomicBool::new(false),
            state_path: RwLock::new(None),
            persist_lock: parking_lot::Mutex::new(()),
            operations: crate::mgmt::operations::Operations::new(),
            paths: RwLock::new(crate::mgmt::path_policy::PathPolicy::default()),
            pending: crate::mgmt::config::pending::PendingConfig::new(),
            notifier: crate::mgmt::notify::Notifier::default(),
            keyring: crate::plane::keyring::Keyring::default(),
            changes: OnceLock::new(),
        })
    }

    /// Installs the hook run around state-changing RPCs; the first one installed stays.
    pub fn set_change_hook(&self, hook: Arc<dyn ChangeHook>) {
        let _ = self.changes.set(hook);
    }

    /// The hook run around state-changing RPCs, once installed.
    pub fn change_hook(&self) -> Option<&Arc<dyn ChangeHook>> {
        self.changes.get()
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
}
