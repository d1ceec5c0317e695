//! Which hosts see a namespace (namespace masking, as SPDK's `no_auto_visible` and
//! `nvmf_ns_add_host`/`nvmf_ns_remove_host`). A namespace is either visible to every host of
//! its subsystem (the default) or only to the hosts listed for it. To a host that does not see
//! it, a namespace is inactive: it is absent from the active namespace list, Identify Namespace
//! returns zeros, and commands that name it fail as for an inactive NSID. The I/O path reads one
//! atomic for an automatically visible namespace and takes a shared lock only for a masked one.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::RwLock;

/// A namespace's visibility.
#[derive(Debug)]
pub struct Visibility {
    /// Visible to every host (no host list applies).
    auto: AtomicBool,
    /// The hosts that see a namespace that is not automatically visible.
    hosts: RwLock<BTreeSet<String>>,
}

impl Default for Visibility {
    fn default() -> Self {
        Self {
            auto: AtomicBool::new(true),
            hosts: RwLock::new(BTreeSet::new()),
        }
    }
}

impl Visibility {
    /// Visible only to the hosts that will be listed (set before the namespace is published).
    pub fn masked() -> Self {
        let v = Self::default();
        v.auto.store(false, Ordering::Release);
        v
    }

    /// Whether every host sees it.
    pub fn is_auto(&self) -> bool {
        self.auto.load(Ordering::Acquire)
    }

    /// Whether `hostnqn` sees it.
    pub fn visible_to(&self, hostnqn: &str) -> bool {
        self.is_auto() || self.hosts.read().contains(hostnqn)
    }

    /// Lets `hostnqn` see it; false if it already did.
    pub fn add_host(&self, hostnqn: &str) -> bool {
        self.hosts.write().insert(hostnqn.to_owned())
    }

    /// Hides it from `hostnqn`; false if it was not listed.
    pub fn remove_host(&self, hostnqn: &str) -> bool {
        self.hosts.write().remove(hostnqn)
    }

    /// The hosts listed, in order.
    pub fn hosts(&self) -> Vec<String> {
        self.hosts.read().iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_namespaces_are_seen_only_by_listed_hosts() {
        let auto = Visibility::default();
        assert!(auto.is_auto() && auto.visible_to("nqn.any"));
        let v = Visibility::masked();
        assert!(!v.visible_to("nqn.a"));
        assert!(v.add_host("nqn.a"));
        assert!(!v.add_host("nqn.a"));
        assert!(v.visible_to("nqn.a") && !v.visible_to("nqn.b"));
        assert_eq!(v.hosts(), ["nqn.a"]);
        assert!(v.remove_host("nqn.a"));
        assert!(!v.remove_host("nqn.a"));
        assert!(!v.visible_to("nqn.a"));
    }
}
