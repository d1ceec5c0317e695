//! Target-wide NVMe-oF settings that SPDK sets with `nvmf_set_config`,
//! `nvmf_set_max_subsystems`, `nvmf_set_crdt` and the discovery referral methods: the
//! discovery filter, the subsystem limit, the Command Retry Delay Times reported in Identify
//! Controller, the referrals to other discovery services the discovery log page lists, and
//! the duplicate host policy (the reconnect fence, see [`DupHostPolicy`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, Ordering};

use parking_lot::RwLock;

/// Which listen addresses of the NVM subsystems a host's discovery log page lists, relative
/// to the address it reached the discovery controller on (SPDK's `discovery_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiscoveryFilter(u8);

impl DiscoveryFilter {
    /// Every listener (`match_any`).
    pub const MATCH_ANY: Self = Self(0);
    /// Only listeners of the host's transport (`transport`; Lamina has only TCP).
    pub const TRANSPORT: u8 = 1 << 0;
    /// Only listeners on the host's address (`address`).
    pub const ADDRESS: u8 = 1 << 1;
    /// Only listeners on the host's port (`svcid`).
    pub const SVCID: u8 = 1 << 2;

    /// Parses SPDK's spelling: `match_any`, or a comma-separated list of `transport`,
    /// `address` and `svcid`.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s == "match_any" {
            return Ok(Self::MATCH_ANY);
        }
        let mut bits = 0;
        for part in s.split(',') {
            bits |= match part.trim() {
                "transport" => Self::TRANSPORT,
                "address" => Self::ADDRESS,
                "svcid" => Self::SVCID,
                other => {
                    return Err(format!(
                        "'{other}': use match_any, or a comma-separated list of transport, \
                         address and svcid"
                    ));
                }
            };
        }
        Ok(Self(bits))
    }

    /// SPDK's spelling of the filter.
    pub fn name(self) -> String {
        if self.0 == 0 {
            return "match_any".into();
        }
        let parts: Vec<&str> = [
            (Self::TRANSPORT, "transport"),
            (Self::ADDRESS, "address"),
            (Self::SVCID, "svcid"),
        ]
        .into_iter()
        .filter(|(b, _)| self.0 & b != 0)
        .map(|(_, n)| n)
        .collect();
        parts.join(",")
    }

    /// Whether a listener on `listener` is shown to a host that reached discovery on `local`.
    /// A wildcard listener matches any address. The transport is always TCP, so `transport`
    /// never hides anything.
    pub fn shows(self, listener: SocketAddr, local: SocketAddr) -> bool {
        let address_ok = self.0 & Self::ADDRESS == 0
            || listener.ip().is_unspecified()
            || listener.ip() == local.ip();
        let svcid_ok = self.0 & Self::SVCID == 0 || listener.port() == local.port();
        address_ok && svcid_ok
    }
}

/// A referral to another discovery service or NVM subsystem, listed in the discovery log page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referral {
    /// Where it is.
    pub addr: SocketAddr,
    /// The NQN it names: the discovery NQN for a discovery service.
    pub subnqn: String,
    /// Whether connections to it must use a secure channel.
    pub secure_channel: bool,
}

/// The SPDK default for the number of subsystems.
pub const DEFAULT_MAX_SUBSYSTEMS: u32 = 1024;

/// The settings.
#[derive(Debug)]
pub struct NvmfSettings {
    discovery_filter: AtomicU8,
    max_subsystems: AtomicU32,
    crdt: [AtomicU16; 3],
    referrals: RwLock<Vec<Referral>>,
    dup_host_policy: AtomicU8,
    auth_policy: RwLock<crate::plane::auth::Policy>,
}

/// SPDK's `dup_host_policy` (`nvmf_set_config`): a fence against a reconnecting host racing
/// its own stale writes.
///
/// Under `restrict_per_listener` (Lamina's default: the safe one) a Connect creating a
/// controller is refused with Controller Busy, without Do Not Retry, while a controller of the
/// same subsystem with the same Host ID on the same listener still exists; and a torn-down
/// controller exists until every command it started has completed (see the controller
/// supervisor). So a host that reconnects after a lost connection or a keep-alive expiry runs
/// no I/O while its old controller may still be writing: its retry succeeds once that is over.
/// Multipath (one controller per listener) is unaffected. A Host ID of all zeros identifies no
/// host and is not restricted. Under `allow` (SPDK's default) a host may hold any number of
/// controllers and nothing is fenced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum DupHostPolicy {
    /// Any number of controllers per host.
    Allow = 0,
    /// One controller per host, subsystem and listener, counting torn-down ones still running.
    RestrictPerListener = 1,
}

impl DupHostPolicy {
    /// Parses SPDK's spelling.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "allow" => Ok(Self::Allow),
            "restrict_per_listener" => Ok(Self::RestrictPerListener),
            other => Err(format!("'{other}': use allow or restrict_per_listener")),
        }
    }

    /// SPDK's spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::RestrictPerListener => "restrict_per_listener",
        }
    }
}

impl Default for NvmfSettings {
    fn default() -> Self {
        Self {
            discovery_filter: AtomicU8::new(0),
            max_subsystems: AtomicU32::new(DEFAULT_MAX_SUBSYSTEMS),
            crdt: Default::default(),
            referrals: RwLock::new(Vec::new()),
            dup_host_policy: AtomicU8::new(DupHostPolicy::RestrictPerListener as u8),
            auth_policy: RwLock::new(crate::plane::auth::Policy::default()),
        }
    }
}

impl NvmfSettings {
    /// Whether a host may hold several controllers of a subsystem on one listener.
    pub fn dup_host_policy(&self) -> DupHostPolicy {
        if self.dup_host_policy.load(Ordering::Acquire) == DupHostPolicy::Allow as u8 {
            DupHostPolicy::Allow
        } else {
            DupHostPolicy::RestrictPerListener
        }
    }

    /// The hash functions and DH groups DH-HMAC-CHAP may negotiate (`dhchap_digests`,
    /// `dhchap_dhgroups`).
    pub fn auth_policy(&self) -> crate::plane::auth::Policy {
        self.auth_policy.read().clone()
    }

    /// Sets what DH-HMAC-CHAP may negotiate.
    pub fn set_auth_policy(&self, p: crate::plane::auth::Policy) {
        *self.auth_policy.write() = p;
    }

    /// Sets the duplicate host policy.
    pub fn set_dup_host_policy(&self, p: DupHostPolicy) {
        self.dup_host_policy.store(p as u8, Ordering::Release);
    }

    /// The discovery filter.
    pub fn discovery_filter(&self) -> DiscoveryFilter {
        DiscoveryFilter(self.discovery_filter.load(Ordering::Acquire))
    }

    /// Sets the discovery filter.
    pub fn set_discovery_filter(&self, f: DiscoveryFilter) {
        self.discovery_filter.store(f.0, Ordering::Release);
    }

    /// The most NVM subsystems the target holds.
    pub fn max_subsystems(&self) -> u32 {
        self.max_subsystems.load(Ordering::Acquire)
    }

    /// Sets the subsystem limit.
    pub fn set_max_subsystems(&self, n: u32) {
        self.max_subsystems.store(n, Ordering::Release);
    }

    /// CRDT1..3 in 100 ms units, as Identify Controller reports them.
    pub fn crdt(&self) -> [u16; 3] {
        [0, 1, 2].map(|i| self.crdt[i].load(Ordering::Acquire))
    }

    /// Sets CRDT1..3.
    pub fn set_crdt(&self, crdt: [u16; 3]) {
        for (slot, v) in self.crdt.iter().zip(crdt) {
            slot.store(v, Ordering::Release);
        }
    }

    /// The referrals, in the order they were added.
    pub fn referrals(&self) -> Vec<Referral> {
        self.referrals.read().clone()
    }

    /// Adds a referral; false when the same address and NQN are already referred to (SPDK then
    /// answers success and changes nothing).
    pub fn add_referral(&self, r: Referral) -> bool {
        let mut list = self.referrals.write();
        if list
            .iter()
            .any(|x| x.addr == r.addr && x.subnqn == r.subnqn)
        {
            return false;
        }
        list.push(r);
        true
    }

    /// Removes the referral to `addr` and `subnqn`; false when there is none.
    pub fn remove_referral(&self, addr: SocketAddr, subnqn: &str) -> bool {
        let mut list = self.referrals.write();
        let before = list.len();
        list.retain(|x| !(x.addr == addr && x.subnqn == subnqn));
        list.len() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_print_and_match() {
        assert_eq!(
            DiscoveryFilter::parse("match_any"),
            Ok(DiscoveryFilter::MATCH_ANY)
        );
        let f = DiscoveryFilter::parse("address,svcid").unwrap();
        assert_eq!(f.name(), "address,svcid");
        assert!(DiscoveryFilter::parse("colour").is_err());
        let local: SocketAddr = "10.0.0.1:4420".parse().unwrap();
        assert!(f.shows("10.0.0.1:4420".parse().unwrap(), local));
        assert!(f.shows("0.0.0.0:4420".parse().unwrap(), local));
        assert!(!f.shows("10.0.0.2:4420".parse().unwrap(), local));
        assert!(!f.shows("10.0.0.1:4421".parse().unwrap(), local));
        let t = DiscoveryFilter::parse("transport").unwrap();
        assert!(t.shows("10.0.0.2:4421".parse().unwrap(), local));
    }

    #[test]
    fn referrals_are_unique_by_address_and_nqn() {
        let s = NvmfSettings::default();
        let r = Referral {
            addr: "10.0.0.9:8009".parse().unwrap(),
            subnqn: "nqn.2014-08.org.nvmexpress.discovery".into(),
            secure_channel: false,
        };
        assert!(s.add_referral(r.clone()));
        assert!(!s.add_referral(r.clone()));
        assert_eq!(s.referrals().len(), 1);
        assert!(!s.remove_referral(r.addr, "nqn.x"));
        assert!(s.remove_referral(r.addr, &r.subnqn));
        assert!(s.referrals().is_empty());
    }
}
