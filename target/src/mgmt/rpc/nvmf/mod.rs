//! NVMe-oF methods, as SPDK names and shapes them (`nvmf_*`): [`transport`] (the TCP
//! transport and its options), [`subsystem`] (subsystems and their access policy), [`listener`]
//! (listen addresses), [`namespace`], [`host`] (allow-lists), [`status`] (controllers,
//! queue pairs, statistics), [`config`] (target-wide settings) and [`referral`] (discovery
//! referrals).
//!
//! # The embedded default and a provisioning script
//!
//! On a fresh data directory `lamina serve` creates its embedded default, which includes the
//! TCP transport (with Lamina's default options) and a subsystem listening on `--listen`. An
//! SPDK provisioning script begins with `nvmf_create_transport -t TCP`, which SPDK answers
//! `-EEXIST` when the transport exists. Lamina has one TCP transport, always there once started,
//! so the call is read as "the TCP transport, with these options":
//!
//! - when every option it gives equals the transport's current value (options it leaves out
//!   keep theirs; `spdk-rpc` fills some in with SPDK's defaults), it succeeds and changes
//!   nothing;
//! - when an option differs and no controller is connected, the new options are applied (and
//!   persisted) and it succeeds;
//! - when an option differs and controllers are connected, it is refused with `-EBUSY` naming
//!   each option, its current and its asked value: changing the limits under connected hosts
//!   would leave them with the old ones, so the hosts must disconnect first (or the options go in
//!   the `--config` file, applied before the listeners open).
//!
//! Everything else a script creates (its own subsystems, listeners, namespaces) sits beside the
//! default subsystem; a script that wants a target without the default starts `lamina serve`
//! with `--config` (an empty file is enough), which skips it.
//!
//! Every method takes SPDK's `tgt_name`, accepted only as `nvmf_tgt` (the name of SPDK's one
//! default target) or left out: Lamina runs one target.

pub mod config;
pub mod host;
pub mod listener;
pub mod namespace;
pub mod ns_host;
pub mod referral;
pub mod status;
pub mod subsystem;
pub mod transport;

use std::sync::Arc;

use serde::Deserialize;

use super::dispatch::Methods;
use super::error::RpcError;
use super::fields::{Described, Field, TGT_NAME, applied};
use crate::mgmt::context::Target;
use crate::plane::subsystem::{DISCOVERY_NQN, Subsystem, SubsystemKind};

pub use listener::ListenAddress;
pub use subsystem::subsystem_json;

/// Registers the methods.
pub fn register(m: &mut Methods, t: &Arc<Target>) {
    super::reg(m, t, "nvmf_create_transport", transport::create_transport);
    super::reg(m, t, "nvmf_get_transports", transport::get_transports);
    super::reg(m, t, "nvmf_create_subsystem", subsystem::create_subsystem);
    super::reg(m, t, "nvmf_delete_subsystem", subsystem::delete_subsystem);
    super::reg(m, t, "nvmf_get_subsystems", subsystem::get_subsystems);
    super::reg(
        m,
        t,
        "nvmf_subsystem_allow_any_host",
        subsystem::allow_any_host,
    );
    super::reg(m, t, "nvmf_subsystem_add_listener", listener::add_listener);
    super::reg(
        m,
        t,
        "nvmf_subsystem_remove_listener",
        listener::remove_listener,
    );
    super::reg(
        m,
        t,
        "nvmf_subsystem_get_listeners",
        listener::get_listeners,
    );
    super::reg(m, t, "nvmf_subsystem_add_ns", namespace::add_ns);
    super::reg(m, t, "nvmf_subsystem_remove_ns", namespace::remove_ns);
    super::reg(m, t, "nvmf_ns_add_host", ns_host::add_host);
    super::reg(m, t, "nvmf_ns_remove_host", ns_host::remove_host);
    super::reg(m, t, "nvmf_subsystem_add_host", host::add_host);
    super::reg(m, t, "nvmf_subsystem_remove_host", host::remove_host);
    super::reg(m, t, "nvmf_subsystem_set_keys", host::set_keys);
    super::reg(
        m,
        t,
        "nvmf_subsystem_get_controllers",
        status::get_controllers,
    );
    super::reg(m, t, "nvmf_subsystem_get_qpairs", status::get_qpairs);
    super::reg(m, t, "nvmf_get_stats", status::get_stats);
    super::reg(m, t, "nvmf_set_config", config::set_config);
    super::reg(m, t, "nvmf_set_max_subsystems", config::set_max_subsystems);
    super::reg(m, t, "nvmf_set_crdt", config::set_crdt);
    super::reg(m, t, "nvmf_discovery_add_referral", referral::add_referral);
    super::reg(
        m,
        t,
        "nvmf_discovery_remove_referral",
        referral::remove_referral,
    );
    super::reg(
        m,
        t,
        "nvmf_discovery_get_referrals",
        referral::get_referrals,
    );
}

/// The params of the methods that name one subsystem and nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NqnOnly {
    nqn: String,
}

impl Described for NqnOnly {
    const FIELDS: &'static [Field] = &[applied("nqn"), TGT_NAME];
}

/// The params of the methods that take only `tgt_name`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TgtOnly {}

impl Described for TgtOnly {
    const FIELDS: &'static [Field] = &[TGT_NAME];
}

/// The subsystem `nqn` (discovery included; SPDK's shortcut `discovery` names it), or
/// `-ENODEV`.
fn subsystem(t: &Target, nqn: &str) -> Result<Arc<Subsystem>, RpcError> {
    let nqn = if nqn == "discovery" {
        DISCOVERY_NQN
    } else {
        nqn
    };
    t.subsystems
        .get(nqn)
        .ok_or_else(|| RpcError::not_found(format!("subsystem {nqn} not found")))
}

/// The NVM subsystem `nqn`: the discovery subsystem is refused.
fn nvm_subsystem(t: &Target, nqn: &str) -> Result<Arc<Subsystem>, RpcError> {
    let s = subsystem(t, nqn)?;
    if s.kind() == SubsystemKind::Discovery {
        return Err(RpcError::invalid("not allowed on the discovery subsystem"));
    }
    Ok(s)
}

/// Upper-case hexadecimal, as SPDK prints NGUIDs.
pub fn hex_upper(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02X}");
            s
        })
}

/// The discovery NQN, for callers that list subsystems.
pub const DISCOVERY: &str = DISCOVERY_NQN;
