//! Discovery referrals: `nvmf_discovery_add_referral`, `nvmf_discovery_remove_referral` and
//! `nvmf_discovery_get_referrals`.
//!
//! A referral is an entry of the Discovery Log Page naming another discovery service (the
//! discovery NQN, the default) or an NVM subsystem elsewhere. Adding or removing one changes
//! the log page, so it bumps the discovery generation and discovery controllers that asked for
//! it get the Discovery Log Page Change notice. As in SPDK, adding a referral that exists
//! succeeds and changes nothing; every host sees every referral.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::super::dispatch::RpcResult;
use super::super::error::RpcError;
use super::super::fields::{Described, Field, TGT_NAME, applied, object};
use super::{ListenAddress, TgtOnly};
use crate::mgmt::context::Target;
use crate::plane::subsystem::DISCOVERY_NQN;
use crate::plane::subsystem::settings::Referral;

/// `nvmf_discovery_add_referral`'s parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AddReferral {
    address: ListenAddress,
    #[serde(default)]
    secure_channel: bool,
    subnqn: Option<String>,
}

impl Described for AddReferral {
    const FIELDS: &'static [Field] = &[
        TGT_NAME,
        object::<ListenAddress>("address"),
        applied("secure_channel"),
        applied("subnqn"),
    ];
}

/// The NQN a referral names: the discovery NQN when none is given.
fn referred_nqn(subnqn: Option<String>) -> Result<String, RpcError> {
    let nqn = subnqn.unwrap_or_else(|| DISCOVERY_NQN.to_owned());
    lamina_protocol::nvme::Nqn::new(&nqn)
        .map_err(|e| RpcError::invalid_params(format!("subnqn: {e}")))?;
    Ok(nqn)
}

pub(super) async fn add_referral(t: Arc<Target>, p: AddReferral) -> RpcResult {
    let addr = p.address.to_socket_addr()?;
    let subnqn = referred_nqn(p.subnqn)?;
    let added = t.subsystems.settings.add_referral(Referral {
        addr,
        subnqn: subnqn.clone(),
        secure_channel: p.secure_channel,
    });
    if added {
        tracing::info!(%addr, %subnqn, "discovery referral added");
        t.subsystems.bump_generation();
    }
    Ok(json!(true))
}

/// `nvmf_discovery_remove_referral`'s parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RemoveReferral {
    address: ListenAddress,
    subnqn: Option<String>,
}

impl Described for RemoveReferral {
    const FIELDS: &'static [Field] = &[
        TGT_NAME,
        object::<ListenAddress>("address"),
        applied("subnqn"),
    ];
}

pub(super) async fn remove_referral(t: Arc<Target>, p: RemoveReferral) -> RpcResult {
    let addr = p.address.to_socket_addr()?;
    let subnqn = referred_nqn(p.subnqn)?;
    if !t.subsystems.settings.remove_referral(addr, &subnqn) {
        return Err(RpcError::not_found(format!(
            "no referral to {subnqn} at {addr}"
        )));
    }
    tracing::info!(%addr, %subnqn, "discovery referral removed");
    t.subsystems.bump_generation();
    Ok(json!(true))
}

pub(super) async fn get_referrals(t: Arc<Target>, _p: TgtOnly) -> RpcResult {
    Ok(Value::Array(
        t.subsystems
            .settings
            .referrals()
            .iter()
            .map(referral_json)
            .collect(),
    ))
}

/// A referral as `nvmf_discovery_get_referrals` and `save_config` show it.
pub fn referral_json(r: &Referral) -> Value {
    json!({
        "address": ListenAddress::from_socket_addr(r.addr),
        "secure_channel": r.secure_channel,
        "subnqn": r.subnqn,
    })
}
