//! The management plane's view of the target: the data plane (through the network shell, by
//! `Deref`) plus what only management uses: bdev and lvol registries, the persisted
//! configuration, long operations, pending configuration, the path policy and the bdev event
//! log, behind one `Arc<Target>`. Host-facing code never sees this type: it works on
//! [`crate::plane::DataPlane`].

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use parking_lot::RwLock;

use crate::bdev::Bdevs;
use crate::options::TransportOptions;
use crate::plane::DataPlane;
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
    pub operations: crate::rpc::operations::Operations,
    /// The files and devices RPCs may open (nothing until the server sets it).
    pub paths: RwLock<crate::path_policy::PathPolicy>,
    /// Configuration entries not applied yet (see `crate::config::pending`).
    pub pending: crate::config::pending::PendingConfig,
    /// Bdevs registered and unregistered, for `notify_get_notifications`.
    pub notifier: crate::notify::Notifier,
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
            operations: crate::rpc::operations::Operations::new(),
            paths: RwLock::new(crate::path_policy::PathPolicy::default()),
            pending: crate::config::pending::PendingConfig::new(),
            notifier: crate::notify::Notifier::default(),
        })
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
