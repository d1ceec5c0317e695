//! NVM subsystems: identity (NQN, serial, model), the host allow-list, the listeners a
//! subsystem is reachable on, and its namespaces.
//!
//! Namespaces live in an immutable map swapped whole on every change (`arc_swap`): the I/O
//! path loads it without a lock, clones the `Arc<Namespace>` and enters the namespace's gate,
//! so removal (unpublish, then drain the gate) never frees anything a command still uses.
//! Changes copy the map under a mutex that only changes take. Changes are
//! broadcast as [`SubsystemEvent`]s to the controllers of the subsystem, which turn them into
//! Asynchronous Event notices and Changed Namespace List entries.

pub mod namespace;
pub mod registry;
pub mod settings;
pub mod visibility;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use lamina_lvol::lifecycle::Illegal;
use parking_lot::RwLock;
use tokio::sync::broadcast;

use crate::plane::keyring::Key;

pub use namespace::{Backend, Namespace, NamespaceEvent, NamespaceState};
pub use registry::Subsystems;

/// The highest dynamic CNTLID a subsystem hands out (FFF0h..FFFFh are reserved).
pub const MAX_CNTLID: u16 = 0xFFEF;

/// The well-known discovery subsystem NQN.
pub const DISCOVERY_NQN: &str = "nqn.2014-08.org.nvmexpress.discovery";

/// Which kind of subsystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubsystemKind {
    /// An NVM subsystem with namespaces.
    Nvme,
    /// The discovery subsystem.
    Discovery,
}

/// Something controllers of a subsystem must hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubsystemEvent {
    /// A namespace was added, removed or changed size.
    NamespaceChanged(u32),
    /// Namespace `nsid` became visible to, or hidden from, host `host` (only that host's
    /// controllers hear of it).
    VisibilityChanged {
        /// The namespace.
        nsid: u32,
        /// The host NQN.
        host: Arc<str>,
    },
}

/// Why a subsystem change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubsystemError {
    /// The NSID is taken.
    #[error("namespace ID {0} is already in use in this subsystem")]
    NsidInUse(u32),
    /// The NSID is out of range.
    #[error("namespace ID {nsid} is out of range (1..={max})")]
    BadNsid {
        /// The NSID asked for.
        nsid: u32,
        /// The subsystem's maximum.
        max: u32,
    },
    /// Every NSID is taken.
    #[error("the subsystem already has its maximum of {0} namespaces")]
    Full(u32),
    /// No namespace with that NSID.
    #[error("no namespace {0} in this subsystem")]
    NoNamespace(u32),
    /// The discovery subsystem has no namespaces.
    #[error("the discovery subsystem cannot have namespaces")]
    Discovery,
    /// Host visibility applies only to a namespace added with `no_auto_visible`.
    #[error(
        "namespace {0} is visible to every host (added without no_auto_visible): no host list applies"
    )]
    AutoVisible(u32),
    /// The namespace's lifecycle refused the step (published twice, removed twice).
    #[error("{0}")]
    Lifecycle(#[from] Illegal<NamespaceState>),
}

/// Identity and limits given at creation.
#[derive(Debug, Clone)]
pub struct SubsystemConfig {
    /// The NQN.
    pub nqn: String,
    /// Serial number (at most 20 ASCII characters).
    pub serial_number: String,
    /// Model number (at most 40 ASCII characters).
    pub model_number: String,
    /// Any host may connect.
    pub allow_any_host: bool,
    /// Most namespaces (and the largest NSID).
    pub max_namespaces: u32,
    /// The CNTLIDs its controllers may get (SPDK's `min_cntlid..=max_cntlid`).
    pub cntlids: RangeInclusive<u16>,
}

/// The keys of a host on a subsystem's allow-list (keyring keys, by handle).
#[derive(Debug, Clone, Default)]
pub struct HostKeys {
    /// The host's TLS PSK (a configured `NVMeTLSkey-1` key): the host may connect over a
    /// secure channel with an identity derived from it.
    pub psk: Option<Arc<Key>>,
    /// The host's secret: with it, the host must authenticate.
    pub dhchap: Option<Arc<Key>>,
    /// The controller's secret, for bidirectional authentication.
    pub dhchap_ctrlr: Option<Arc<Key>>,
}

/// One subsystem.
#[derive(Debug)]
pub struct Subsystem {
    nqn: String,
    kind: SubsystemKind,
    serial_number: String,
    model_number: String,
    max_namespaces: u32,
    cntlids: RangeInclusive<u16>,
    allow_any_host: AtomicBool,
    hosts: RwLock<BTreeMap<String, HostKeys>>,
    listeners: RwLock<BTreeSet<SocketAddr>>,
    /// Read lock-free by every command; replaced whole, under `ns_edit`, by a change.
    namespaces: ArcSwap<BTreeMap<u32, Arc<Namespace>>>,
    ns_edit: parking_lot::Mutex<()>,
    /// Held from choosing a free NSID to publishing the namespace (see
    /// [`Subsystem::adding_namespace`]).
    adding: parking_lot::Mutex<()>,
    events: broadcast::Sender<SubsystemEvent>,
    stats: crate::plane::stats::SubsystemStats,
}

impl Subsystem {
    /// A new subsystem with no hosts, listeners or namespaces.
    pub fn new(config: SubsystemConfig) -> Self {
        let kind = if config.nqn == DISCOVERY_NQN {
            SubsystemKind::Discovery
        } else {
            SubsystemKind::Nvme
        };
        Self {
            nqn: config.nqn,
            kind,
            serial_number: config.serial_number,
            model_number: config.model_number,
            max_namespaces: config.max_namespaces,
            cntlids: config.cntlids,
            allow_any_host: AtomicBool::new(config.allow_any_host),
            hosts: RwLock::new(BTreeMap::new()),
            listeners: RwLock::new(BTreeSet::new()),
            namespaces: ArcSwap::from_pointee(BTreeMap::new()),
            ns_edit: parking_lot::Mutex::new(()),
            adding: parking_lot::Mutex::new(()),
            events: broadcast::channel(64).0,
            stats: crate::plane::stats::SubsystemStats::default(),
        }
    }

    /// The CNTLIDs its controllers may get.
    pub fn cntlids(&self) -> RangeInclusive<u16> {
        self.cntlids.clone()
    }

    /// The NQN.
    pub fn nqn(&self) -> &str {
        &self.nqn
    }

    /// NVM or discovery.
    pub fn kind(&self) -> SubsystemKind {
        self.kind
    }

    /// Serial number.
    pub fn serial_number(&self) -> &str {
        &self.serial_number
    }

    /// Model number.
    pub fn model_number(&self) -> &str {
        &self.model_number
    }

    /// Most namespaces, and the largest NSID.
    pub fn max_namespaces(&self) -> u32 {
        self.max_namespaces
    }

    /// Whether any host may connect.
    pub fn allow_any_host(&self) -> bool {
        self.allow_any_host.load(Ordering::Acquire)
    }

    /// Lets any host connect, or only the allow-list.
    pub fn set_allow_any_host(&self, allow: bool) {
        self.allow_any_host.store(allow, Ordering::Release);
    }

    /// Whether `hostnqn` may connect.
    pub fn host_allowed(&self, hostnqn: &str) -> bool {
        self.allow_any_host() || self.hosts.read().contains_key(hostnqn)
    }

    /// The allow-list.
    pub fn hosts(&self) -> Vec<String> {
        self.hosts.read().keys().cloned().collect()
    }

    /// Adds a host NQN with its keys; false (and nothing changed) if it was there.
    pub fn add_host(&self, hostnqn: &str, keys: HostKeys) -> bool {
        match self.hosts.write().entry(hostnqn.to_owned()) {
            std::collections::btree_map::Entry::Occupied(_) => false,
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(keys);
                true
            }
        }
    }

    /// Removes a host NQN; false if it was not there.
    pub fn remove_host(&self, hostnqn: &str) -> bool {
        self.hosts.write().remove(hostnqn).is_some()
    }

    /// The allow-list with each host's keys.
    pub fn host_entries(&self) -> Vec<(String, HostKeys)> {
        self.hosts
            .read()
            .iter()
            .map(|(h, k)| (h.clone(), k.clone()))
            .collect()
    }

    /// The keys of a listed host (`None` for a host not on the list).
    pub fn host_keys(&self, hostnqn: &str) -> Option<HostKeys> {
        self.hosts.read().get(hostnqn).cloned()
    }

    /// Replaces a listed host's DH-HMAC-CHAP keys (`nvmf_subsystem_set_keys`; its PSK stays);
    /// false if the host is not on the list. Queues already authenticated stay so; the next
    /// authentication uses these.
    pub fn set_host_keys(&self, hostnqn: &str, keys: HostKeys) -> bool {
        match self.hosts.write().get_mut(hostnqn) {
            Some(k) => {
                k.dhchap = keys.dhchap;
                k.dhchap_ctrlr = keys.dhchap_ctrlr;
                true
            }
            None => false,
        }
    }

    /// The addresses this subsystem is reachable on.
    pub fn listeners(&self) -> Vec<SocketAddr> {
        self.listeners.read().iter().copied().collect()
    }

    /// Whether a connection that arrived on `local` may reach this subsystem. A wildcard
    /// listener (0.0.0.0 or ::) matches any local address on its port.
    pub fn listens_on(&self, local: SocketAddr) -> bool {
        self.listeners
            .read()
            .iter()
            .any(|l| l.port() == local.port() && (l.ip().is_unspecified() || l.ip() == local.ip()))
    }

    /// Adds a listener address; false if it was there.
    pub fn add_listener(&self, addr: SocketAddr) -> bool {
        self.listeners.write().insert(addr)
    }

    /// Removes a listener address; false if it was not there.
    pub fn remove_listener(&self, addr: SocketAddr) -> bool {
        self.listeners.write().remove(&addr)
    }

    /// The namespace `nsid`, if present.
    pub fn namespace(&self, nsid: u32) -> Option<Arc<Namespace>> {
        self.namespaces.load().get(&nsid).cloned()
    }

    /// A snapshot of every namespace, by NSID.
    pub fn namespaces(&self) -> Vec<Arc<Namespace>> {
        self.namespaces.load().values().cloned().collect()
    }

    /// The active NSIDs, ascending.
    pub fn nsids(&self) -> Vec<u32> {
        self.namespaces.load().keys().copied().collect()
    }

    /// The lowest free NSID that is not `reserved` (NSIDs pending configuration asks for).
    pub fn free_nsid(&self, reserved: &[u32]) -> Result<u32, SubsystemError> {
        let map = self.namespaces.load();
        (1..=self.max_namespaces)
            .find(|n| !map.contains_key(n) && !reserved.contains(n))
            .ok_or(SubsystemError::Full(self.max_namespaces))
    }

    /// Serialises namespace additions: hold the guard from [`Subsystem::free_nsid`] to
    /// [`Subsystem::add_namespace`], so two additions that both let Lamina choose the NSID do
    /// not choose the same one (one would fail with "already in use").
    pub fn adding_namespace(&self) -> parking_lot::MutexGuard<'_, ()> {
        self.adding.lock()
    }

    /// Publishes `ns` and tells the controllers.
    pub fn add_namespace(&self, ns: Arc<Namespace>) -> Result<(), SubsystemError> {
        if self.kind == SubsystemKind::Discovery {
            return Err(SubsystemError::Discovery);
        }
        let nsid = ns.nsid();
        if nsid == 0 || nsid > self.max_namespaces {
            return Err(SubsystemError::BadNsid {
                nsid,
                max: self.max_namespaces,
            });
        }
        self.edit_namespaces(|map| {
            if map.contains_key(&nsid) {
                return Err(SubsystemError::NsidInUse(nsid));
            }
            ns.publish()?;
            map.insert(nsid, ns);
            Ok(())
        })?;
        self.notify(SubsystemEvent::NamespaceChanged(nsid));
        Ok(())
    }

    /// Unpublishes namespace `nsid`, waits for its in-flight commands, releases its backend
    /// (a listing or a finished command may still hold the `Arc` for a moment; the lvol must be
    /// deletable as soon as this returns), tells the controllers, and returns it.
    pub async fn remove_namespace(&self, nsid: u32) -> Result<Arc<Namespace>, SubsystemError> {
        let ns =
            self.edit_namespaces(|map| map.remove(&nsid).ok_or(SubsystemError::NoNamespace(nsid)))?;
        ns.remove_and_drain().await?;
        ns.backend().release();
        self.notify(SubsystemEvent::NamespaceChanged(nsid));
        Ok(ns)
    }

    /// Makes namespace `nsid` visible to `hostnqn` or hides it; tells that host's controllers
    /// when it changed. Returns whether it changed.
    pub fn set_visible(
        &self,
        nsid: u32,
        hostnqn: &str,
        visible: bool,
    ) -> Result<bool, SubsystemError> {
        let ns = self
            .namespace(nsid)
            .ok_or(SubsystemError::NoNamespace(nsid))?;
        let v = ns.visibility();
        if v.is_auto() {
            return Err(SubsystemError::AutoVisible(nsid));
        }
        let changed = if visible {
            v.add_host(hostnqn)
        } else {
            v.remove_host(hostnqn)
        };
        if changed {
            self.notify(SubsystemEvent::VisibilityChanged {
                nsid,
                host: Arc::from(hostnqn),
            });
        }
        Ok(changed)
    }

    /// Changes a copy of the namespace map and publishes it if `f` succeeds; changes are
    /// serialised, readers never wait.
    fn edit_namespaces<R>(
        &self,
        f: impl FnOnce(&mut BTreeMap<u32, Arc<Namespace>>) -> Result<R, SubsystemError>,
    ) -> Result<R, SubsystemError> {
        let _edit = self.ns_edit.lock();
        let mut map = BTreeMap::clone(&self.namespaces.load());
        let r = f(&mut map)?;
        self.namespaces.store(Arc::new(map));
        Ok(r)
    }

    /// Tells controllers that namespace `nsid` changed (e.g. it was resized).
    pub fn notify(&self, event: SubsystemEvent) {
        // No receiver (no controller connected) is fine: nothing to notify.
        let _ = self.events.send(event);
    }

    /// A receiver of this subsystem's events, for one controller.
    pub fn subscribe(&self) -> broadcast::Receiver<SubsystemEvent> {
        self.events.subscribe()
    }

    /// The subsystem's counters (admin commands), for metrics.
    pub fn stats(&self) -> &crate::plane::stats::SubsystemStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plane::bdev::{BdevKind, Bdevs};
    use lamina_lvol::device::RamDevice;

    fn subsystem() -> Subsystem {
        Subsystem::new(SubsystemConfig {
            nqn: "nqn.2026-11.io.lamina:test".into(),
            serial_number: "SN1".into(),
            model_number: "Lamina".into(),
            allow_any_host: false,
            max_namespaces: 4,
            cntlids: 1..=MAX_CNTLID,
        })
    }

    fn ns(nsid: u32) -> Arc<Namespace> {
        let bdevs = Bdevs::new();
        let dev = RamDevice::new(1 << 20, 4096).unwrap().into();
        let b = bdevs
            .insert(&format!("m{nsid}"), None, BdevKind::Malloc, dev)
            .unwrap();
        Arc::new(Namespace::new(
            nsid,
            b.name().into(),
            Backend::Bdev(b),
            None,
            None,
        ))
    }

    #[test]
    fn allow_list() {
        let s = subsystem();
        assert!(!s.host_allowed("nqn.h1"));
        assert!(s.add_host("nqn.h1", HostKeys::default()));
        assert!(!s.add_host("nqn.h1", HostKeys::default()));
        assert!(s.host_allowed("nqn.h1"));
        s.set_allow_any_host(true);
        assert!(s.host_allowed("nqn.other"));
    }

    #[test]
    fn wildcard_listener_matches_any_local_address() {
        let s = subsystem();
        s.add_listener("0.0.0.0:4420".parse().unwrap());
        assert!(s.listens_on("127.0.0.2:4420".parse().unwrap()));
        assert!(!s.listens_on("127.0.0.2:4421".parse().unwrap()));
        s.add_listener("127.0.0.1:4421".parse().unwrap());
        assert!(s.listens_on("127.0.0.1:4421".parse().unwrap()));
        assert!(!s.listens_on("127.0.0.3:4421".parse().unwrap()));
    }

    #[tokio::test]
    async fn namespaces_publish_notify_and_drain() {
        let s = subsystem();
        let mut events = s.subscribe();
        s.add_namespace(ns(1)).unwrap();
        assert_eq!(s.add_namespace(ns(1)), Err(SubsystemError::NsidInUse(1)));
        assert_eq!(
            s.add_namespace(ns(5)),
            Err(SubsystemError::BadNsid { nsid: 5, max: 4 })
        );
        assert_eq!(
            events.recv().await.unwrap(),
            SubsystemEvent::NamespaceChanged(1)
        );
        assert_eq!(s.free_nsid(&[]).unwrap(), 2);
        assert_eq!(s.free_nsid(&[2]).unwrap(), 3);
        let held = s.namespace(1).unwrap();
        let guard = held.enter().unwrap();
        let s = Arc::new(s);
        let s2 = s.clone();
        let remover = tokio::spawn(async move { s2.remove_namespace(1).await });
        // The remover runs on this (current-thread) runtime at each yield: it unpublishes at
        // once, then must stay parked on the guard however often it is polled.
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert!(s.namespace(1).is_none(), "unpublished before draining");
        assert_eq!(held.state(), NamespaceState::Removing);
        assert!(
            !remover.is_finished(),
            "removal waits for the in-flight command"
        );
        drop(guard);
        remover.await.unwrap().unwrap();
        assert!(held.enter().is_none());
        assert_eq!(
            events.recv().await.unwrap(),
            SubsystemEvent::NamespaceChanged(1)
        );
    }

    /// A removed namespace that something still holds (a metrics scrape, a command that just
    /// finished) no longer exports its lvol: the lvol is deletable as soon as removal returns.
    #[tokio::test]
    async fn removal_unexports_the_lvol_while_the_namespace_is_still_held() {
        use lamina_lvol::{LvolOptions, LvstoreOptions, OpenMode, Progress, Registry};
        let reg = Registry::new();
        let ram = RamDevice::new(16 << 20, 512).unwrap();
        let opts = LvstoreOptions {
            cluster_size: 1 << 20,
            ..LvstoreOptions::default()
        };
        let store = reg
            .create_lvstore(ram.into(), "ram0", "lvs", &opts)
            .await
            .unwrap();
        let lvol = store
            .create_lvol("v", 4 << 20, &LvolOptions::default())
            .await
            .unwrap();
        let desc = lvol.open(OpenMode::Export).unwrap();
        let s = subsystem();
        let n = Arc::new(Namespace::new(
            1,
            "v".into(),
            Backend::Lvol(desc),
            None,
            None,
        ));
        s.add_namespace(n.clone()).unwrap();
        assert!(lvol.is_exported());
        s.remove_namespace(1).await.unwrap();
        assert!(!lvol.is_exported(), "unexported while `n` is still held");
        lvol.delete(&Progress::new()).await.unwrap();
        let mut buf = bytes::BytesMut::new();
        if let Backend::Lvol(d) = n.backend() {
            assert!(d.read(0, 512, &mut buf).await.is_err());
        }
    }

    /// A namespace is published once: the same one cannot be added to a second subsystem or
    /// again after its removal, and a removed one admits no command.
    #[tokio::test]
    async fn a_namespace_lives_once() {
        let (a, b) = (subsystem(), subsystem());
        let n = ns(1);
        assert_eq!(n.state(), NamespaceState::Attached);
        a.add_namespace(n.clone()).unwrap();
        assert_eq!(n.state(), NamespaceState::Live);
        assert!(matches!(
            b.add_namespace(n.clone()),
            Err(SubsystemError::Lifecycle(_))
        ));
        a.remove_namespace(1).await.unwrap();
        assert_eq!(n.state(), NamespaceState::Gone);
        assert!(n.enter().is_none());
        assert!(matches!(
            a.add_namespace(n.clone()),
            Err(SubsystemError::Lifecycle(_))
        ));
        assert!(a.namespace(1).is_none());
    }
}
