//! The Discovery Log Page (70h): what a host may connect to, as the discovery controller it is
//! talking to reports it.
//!
//! One entry for the current discovery subsystem (the port the host used), then one entry per
//! NVM subsystem the host is allowed into and per address that subsystem listens on. A wildcard
//! listen address (0.0.0.0, ::) is reported as the address the host connected to, which is one
//! it can reach. The target's discovery filter (SPDK's `nvmf_set_config discovery_filter`) can
//! narrow the listeners to those on the address and port the host reached. Referrals to other
//! discovery services or subsystems (`nvmf_discovery_add_referral`) follow. GENCTR is the
//! target's discovery generation, bumped by every change.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use lamina_protocol::fabrics::discovery::{
    AdrFam, DiscoveryLogEntry, DiscoveryLogPage, EFlags, SecType, SubType, TrType, Treq,
};
use lamina_protocol::nvme::strings::Nqn;

use crate::plane::DataPlane;
use crate::plane::controller::Controller;
use crate::plane::subsystem::SubsystemKind;
use crate::plane::subsystem::settings::Referral;

/// Builds the whole log page for the host of `ctrl`.
pub fn log_page(target: &DataPlane, ctrl: &Controller) -> Bytes {
    let host = ctrl.host();
    let local = host.local;
    let asqsz = target.options().max_aq_depth;
    let portid_of = |addr: SocketAddr| target.ports.arrived_on(addr).map_or(0, |p| p.id);
    let mut entries = vec![entry(
        SubType::CURRENT_DISCOVERY,
        Nqn::discovery(),
        local,
        portid_of(local),
        asqsz,
    )];
    let filter = target.subsystems.settings.discovery_filter();
    for sub in target.subsystems.list() {
        if sub.kind() == SubsystemKind::Discovery || !sub.host_allowed(&host.hostnqn) {
            continue;
        }
        let Ok(nqn) = Nqn::new(sub.nqn()) else {
            continue;
        };
        for addr in sub
            .listeners()
            .into_iter()
            .filter(|a| filter.shows(*a, local))
        {
            let reported = if addr.ip().is_unspecified() {
                SocketAddr::new(local.ip(), addr.port())
            } else {
                addr
            };
            let mut e = entry(SubType::NVME, nqn.clone(), reported, portid_of(addr), asqsz);
            // A secure-channel port: TLS 1.3 required (Linux's `nvme connect-all` turns TLS on
            // from these fields).
            if target.ports.arrived_on(addr).is_some_and(|p| p.secure) {
                e.treq = Treq(Treq::REQUIRED.0 | Treq::DISABLE_SQFLOW);
                e.sectype = SecType::TLS13;
            }
            entries.push(e);
        }
    }
    entries.extend(
        target
            .subsystems
            .settings
            .referrals()
            .iter()
            .filter_map(referral),
    );
    let page = DiscoveryLogPage::new(target.subsystems.generation(), entries);
    let mut b = BytesMut::with_capacity(page.encoded_len());
    page.encode(&mut b);
    b.freeze()
}

/// A referral's entry, as SPDK builds it: subtype discovery when it names the discovery NQN,
/// NVM subsystem otherwise; the secure-channel requirement; no port ID or queue size (they are
/// the other service's to report).
fn referral(r: &Referral) -> Option<DiscoveryLogEntry> {
    let subnqn = Nqn::new(&r.subnqn).ok()?;
    let subtype = if r.subnqn == crate::plane::subsystem::DISCOVERY_NQN {
        SubType::REFERRAL
    } else {
        SubType::NVME
    };
    let mut e = entry(subtype, subnqn, r.addr, 0, 0);
    e.treq = if r.secure_channel {
        Treq::REQUIRED
    } else {
        Treq::NOT_REQUIRED
    };
    Some(e)
}

fn entry(
    subtype: SubType,
    subnqn: Nqn,
    addr: SocketAddr,
    portid: u16,
    asqsz: u16,
) -> DiscoveryLogEntry {
    DiscoveryLogEntry {
        trtype: TrType::TCP,
        adrfam: if addr.is_ipv4() {
            AdrFam::IPV4
        } else {
            AdrFam::IPV6
        },
        subtype,
        treq: Treq(Treq::NOT_SPECIFIED.0 | Treq::DISABLE_SQFLOW),
        portid,
        cntlid: 0xFFFF,
        asqsz,
        eflags: EFlags(0),
        trsvcid: addr.port().to_string(),
        subnqn,
        traddr: addr.ip().to_string(),
        sectype: SecType::NONE,
    }
}
