//! Every subsystem by NQN, and the discovery generation counter.
//!
//! The discovery log page carries a generation counter (GENCTR) that must change whenever what a
//! host could discover changes; [`Subsystems::bump_generation`] is called by every such change
//! (subsystem, listener, host or allow-any-host change) and wakes discovery controllers so they
//! can send their Discovery Log Page Change notice.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use tokio::sync::broadcast;

use super::{DISCOVERY_NQN, Namespace, Subsystem, SubsystemConfig};

/// The registry of subsystems.
#[derive(Debug)]
pub struct Subsystems {
    map: DashMap<String, Arc<Subsystem>>,
    /// Target-wide settings: discovery filter, referrals, subsystem limit, CRDT.
    pub settings: super::settings::NvmfSettings,
    generation: AtomicU64,
    discovery_changes: broadcast::Sender<u64>,
}

impl Default for Subsystems {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a subsystem was not created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    /// The NQN is taken.
    #[error("subsystem {0} already exists")]
    Exists(String),
    /// The target holds its maximum number of NVM subsystems.
    #[error("the target already holds its maximum of {0} subsystems (nvmf_set_max_subsystems)")]
    Full(u32),
}

impl Subsystems {
    /// A registry holding only the discovery subsystem.
    pub fn new() -> Self {
        let map = DashMap::new();
        let discovery = Subsystem::new(SubsystemConfig {
            nqn: DISCOVERY_NQN.to_owned(),
            serial_number: String::new(),
            model_number: String::new(),
            allow_any_host: true,
            max_namespaces: 0,
            cntlids: 1..=crate::plane::subsystem::MAX_CNTLID,
        });
        map.insert(DISCOVERY_NQN.to_owned(), Arc::new(discovery));
        Self {
            map,
            settings: super::settings::NvmfSettings::default(),
            generation: AtomicU64::new(1),
            discovery_changes: broadcast::channel(16).0,
        }
    }

    /// Creates a subsystem, unless the target already holds `settings.max_subsystems()` NVM
    /// subsystems (the discovery subsystem does not count).
    pub fn create(&self, config: SubsystemConfig) -> Result<Arc<Subsystem>, CreateError> {
        let max = self.settings.max_subsystems();
        if self.map.len().saturating_sub(1) >= usize::try_from(max).unwrap_or(usize::MAX) {
            return Err(CreateError::Full(max));
        }
        let created = match self.map.entry(config.nqn.clone()) {
            Entry::Occupied(_) => return Err(CreateError::Exists(config.nqn)),
            Entry::Vacant(v) => v.insert(Arc::new(Subsystem::new(config))).value().clone(),
        };
        self.bump_generation();
        Ok(created)
    }

    /// The subsystem `nqn`.
    pub fn get(&self, nqn: &str) -> Option<Arc<Subsystem>> {
        self.map.get(nqn).map(|r| r.value().clone())
    }

    /// The discovery subsystem.
    pub fn discovery(&self) -> Arc<Subsystem> {
        self.get(DISCOVERY_NQN)
            .unwrap_or_else(|| unreachable!("the discovery subsystem is never removed"))
    }

    /// Unpublishes subsystem `nqn` (the discovery subsystem cannot be removed).
    pub fn remove(&self, nqn: &str) -> Option<Arc<Subsystem>> {
        if nqn == DISCOVERY_NQN {
            return None;
        }
        let removed = self.map.remove(nqn).map(|(_, s)| s);
        if removed.is_some() {
            self.bump_generation();
        }
        removed
    }

    /// A snapshot of every subsystem: discovery first, then by NQN.
    pub fn list(&self) -> Vec<Arc<Subsystem>> {
        let mut v: Vec<Arc<Subsystem>> = self.map.iter().map(|r| r.value().clone()).collect();
        v.sort_by(|a, b| {
            (a.nqn() != DISCOVERY_NQN, a.nqn()).cmp(&(b.nqn() != DISCOVERY_NQN, b.nqn()))
        });
        v
    }

    /// Every published namespace for which `pred` holds, with its subsystem: the one walk
    /// for "which namespaces carry this backend".
    pub fn namespaces_where(
        &self,
        mut pred: impl FnMut(&Namespace) -> bool,
    ) -> Vec<(Arc<Subsystem>, Arc<Namespace>)> {
        let mut out = Vec::new();
        for s in self.list() {
            for ns in s.namespaces() {
                if pred(&ns) {
                    out.push((Arc::clone(&s), ns));
                }
            }
        }
        out
    }

    /// The discovery generation counter.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Records a change visible to discovery and wakes discovery controllers.
    pub fn bump_generation(&self) {
        let g = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        let _ = self.discovery_changes.send(g);
    }

    /// A receiver of discovery changes, for one discovery controller.
    pub fn subscribe_discovery(&self) -> broadcast::Receiver<u64> {
        self.discovery_changes.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(nqn: &str) -> SubsystemConfig {
        SubsystemConfig {
            nqn: nqn.into(),
            serial_number: "S".into(),
            model_number: "M".into(),
            allow_any_host: true,
            max_namespaces: 32,
            cntlids: 1..=crate::plane::subsystem::MAX_CNTLID,
        }
    }

    #[test]
    fn create_list_remove_bump_generation() {
        let r = Subsystems::new();
        let mut changes = r.subscribe_discovery();
        let g0 = r.generation();
        r.create(cfg("nqn.b")).unwrap();
        r.create(cfg("nqn.a")).unwrap();
        assert_eq!(
            r.create(cfg("nqn.a")).unwrap_err(),
            CreateError::Exists("nqn.a".into())
        );
        let names: Vec<String> = r.list().iter().map(|s| s.nqn().to_owned()).collect();
        assert_eq!(names, vec![DISCOVERY_NQN, "nqn.a", "nqn.b"]);
        assert!(r.generation() > g0);
        assert!(changes.try_recv().is_ok());
        assert!(r.remove(DISCOVERY_NQN).is_none());
        assert!(r.remove("nqn.a").is_some());
        assert!(r.get("nqn.a").is_none());
        assert_eq!(r.discovery().nqn(), DISCOVERY_NQN);
    }

    #[test]
    fn the_subsystem_limit_counts_nvm_subsystems_only() {
        let r = Subsystems::new();
        r.settings.set_max_subsystems(2);
        r.create(cfg("nqn.a")).unwrap();
        r.create(cfg("nqn.b")).unwrap();
        assert_eq!(r.create(cfg("nqn.c")).unwrap_err(), CreateError::Full(2));
        r.remove("nqn.a");
        r.create(cfg("nqn.c")).unwrap();
    }
}
