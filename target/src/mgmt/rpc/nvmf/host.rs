//! Allow-lists: `nvmf_subsystem_add_host` and `nvmf_subsystem_remove_host`.
//!
//! Taking a host off the list (or turning `allow_any_host` off) tears down the controllers it
//! no longer may hold, as SPDK does, and `nvmf_subsystem_remove_host` answers once they are gone
//! (their commands finished), or with `-ETIMEDOUT` after `timeout_ms`.
//!
//! A host's DH-HMAC-CHAP keys (`dhchap_key`, `dhchap_ctrlr_key`: names of `DHHC-1` keys in the
//! keyring) are given when it is added and replaced by `nvmf_subsystem_set_keys`; a host with a
//! key must authenticate on every queue it connects. A host's TLS PSK (`psk`: the name of an
//! `NVMeTLSkey-1` key in the keyring) lets it connect over a secure channel (a listener added
//! with `secure_channel`); `nvmf_subsystem_set_keys` leaves it as it is.

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::super::dispatch::RpcResult;
use super::super::error::{ETIMEDOUT, RpcError};
use super::super::fields::{Described, Field, TGT_NAME, applied};
use super::nvm_subsystem;
use crate::mgmt::context::Target;
use crate::plane::controller::Controller;
use crate::plane::keyring::Key;
use crate::plane::keyring::interchange::KeyKind;
use crate::plane::subsystem::{HostKeys, Subsystem};

/// `nvmf_subsystem_add_host`'s parameters Lamina applies.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AddHost {
    nqn: String,
    host: String,
    psk: Option<String>,
    dhchap_key: Option<String>,
    dhchap_ctrlr_key: Option<String>,
}

impl Described for AddHost {
    const FIELDS: &'static [Field] = &[
        applied("nqn"),
        applied("host"),
        TGT_NAME,
        applied("psk"),
        applied("dhchap_key"),
        applied("dhchap_ctrlr_key"),
    ];
}

/// The keyring key `name` for `field`.
fn keyring_key(t: &Target, field: &str, name: &str) -> Result<Arc<Key>, RpcError> {
    t.keyring.get(name).map_err(|e| {
        RpcError::new(
            -e.errno(),
            format!("{field}: {e} (add it with keyring_file_add_key first)"),
        )
    })
}

/// The keyring key `name` for `psk`, which must be a TLS PSK.
fn psk_key(t: &Target, name: &str) -> Result<Arc<Key>, RpcError> {
    let key = keyring_key(t, "psk", name)?;
    match key.kind() {
        KeyKind::TlsPsk { .. } => Ok(key),
        other @ KeyKind::Dhchap { .. } => Err(RpcError::invalid_params(format!(
            "psk: key {name} is a {other}, not a TLS PSK (NVMeTLSkey-1)"
        ))),
    }
}

/// The keyring key `name` for `field`, which must be a DH-HMAC-CHAP secret.
fn chap_key(t: &Target, field: &str, name: &str) -> Result<Arc<Key>, RpcError> {
    let key = keyring_key(t, field, name)?;
    match key.kind() {
        KeyKind::Dhchap { .. } => Ok(key),
        other @ KeyKind::TlsPsk { .. } => Err(RpcError::invalid_params(format!(
            "{field}: key {name} is a {other}, not a DH-HMAC-CHAP secret (DHHC-1)"
        ))),
    }
}

/// The keys named by `dhchap_key` and `dhchap_ctrlr_key` (SPDK: the second needs the first).
fn host_keys(
    t: &Target,
    dhchap_key: Option<&str>,
    dhchap_ctrlr_key: Option<&str>,
) -> Result<HostKeys, RpcError> {
    if dhchap_ctrlr_key.is_some() && dhchap_key.is_none() {
        return Err(RpcError::invalid_params(
            "dhchap_ctrlr_key needs dhchap_key: the controller authenticates to a host only \
             after the host has authenticated",
        ));
    }
    Ok(HostKeys {
        psk: None,
        dhchap: dhchap_key
            .map(|k| chap_key(t, "dhchap_key", k))
            .transpose()?,
        dhchap_ctrlr: dhchap_ctrlr_key
            .map(|k| chap_key(t, "dhchap_ctrlr_key", k))
            .transpose()?,
    })
}

pub(super) async fn add_host(t: Arc<Target>, p: AddHost) -> RpcResult {
    lamina_protocol::nvme::Nqn::new(&p.host)
        .map_err(|e| RpcError::invalid_params(format!("host: {e}")))?;
    let sub = nvm_subsystem(&t, &p.nqn)?;
    let mut keys = host_keys(&t, p.dhchap_key.as_deref(), p.dhchap_ctrlr_key.as_deref())?;
    keys.psk = p.psk.as_deref().map(|k| psk_key(&t, k)).transpose()?;
    if !sub.add_host(&p.host, keys) {
        return Err(RpcError::exists(format!(
            "host {} is already allowed on {}",
            p.host, p.nqn
        )));
    }
    t.subsystems.bump_generation();
    Ok(json!(true))
}

/// `nvmf_subsystem_set_keys`' parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SetKeys {
    nqn: String,
    host: String,
    dhchap_key: Option<String>,
    dhchap_ctrlr_key: Option<String>,
}

impl Described for SetKeys {
    const FIELDS: &'static [Field] = &[
        applied("nqn"),
        applied("host"),
        TGT_NAME,
        applied("dhchap_key"),
        applied("dhchap_ctrlr_key"),
    ];
}

/// Replaces a host's keys, as SPDK does: neither key clears them (the host then connects
/// without authenticating). Connected controllers stay; each queue uses the new keys when
/// the host next authenticates (Linux: writing the controller's `dhchap_secret` in sysfs).
pub(super) async fn set_keys(t: Arc<Target>, p: SetKeys) -> RpcResult {
    let sub = nvm_subsystem(&t, &p.nqn)?;
    let keys = host_keys(&t, p.dhchap_key.as_deref(), p.dhchap_ctrlr_key.as_deref())?;
    if !sub.set_host_keys(&p.host, keys) {
        return Err(RpcError::not_found(format!(
            "host {} is not on {}'s allow-list",
            p.host, p.nqn
        )));
    }
    tracing::info!(subnqn = %p.nqn, hostnqn = %p.host, dhchap_key = ?p.dhchap_key,
        dhchap_ctrlr_key = ?p.dhchap_ctrlr_key, "host keys replaced");
    t.subsystems.bump_generation();
    Ok(json!(true))
}

/// `nvmf_subsystem_remove_host`'s parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RemoveHost {
    nqn: String,
    host: String,
    timeout_ms: Option<u64>,
}

impl Described for RemoveHost {
    const FIELDS: &'static [Field] = &[
        applied("nqn"),
        applied("host"),
        TGT_NAME,
        applied("timeout_ms"),
    ];
}

/// How long `nvmf_subsystem_remove_host` waits for the host's controllers by default: CAP.TO
/// (the time a host allows a controller to become ready or shut down) is 30 s here.
const DEFAULT_REMOVE_WAIT: Duration = Duration::from_secs(30);

pub(super) async fn remove_host(t: Arc<Target>, p: RemoveHost) -> RpcResult {
    let sub = nvm_subsystem(&t, &p.nqn)?;
    if !sub.remove_host(&p.host) {
        return Err(RpcError::not_found(format!(
            "host {} is not on {}'s allow-list",
            p.host, p.nqn
        )));
    }
    let dropped = drop_unauthorized(&t, &sub);
    t.subsystems.bump_generation();
    let wait = p
        .timeout_ms
        .map_or(DEFAULT_REMOVE_WAIT, Duration::from_millis);
    if !wait_gone(&dropped, wait).await {
        return Err(RpcError::new(
            ETIMEDOUT,
            format!(
                "host {} is off the list, but its controllers still had commands running after \
                 {} ms",
                p.host,
                wait.as_millis()
            ),
        ));
    }
    Ok(json!(true))
}

/// Tears down the controllers of `sub` whose host may no longer connect (a removed host, or
/// every host off the allow-list once `allow_any_host` is off), as SPDK does: access control
/// that only stopped new connections would leave the host doing I/O. Returns them, weakly.
pub(super) fn drop_unauthorized(t: &Target, sub: &Subsystem) -> Vec<Weak<Controller>> {
    let mut dropped = Vec::new();
    for ctrl in t.controllers.of_subsystem(sub.nqn()) {
        if !sub.host_allowed(&ctrl.host().hostnqn) {
            tracing::info!(cntlid = ctrl.cntlid(), hostnqn = %ctrl.host().hostnqn,
                subnqn = %sub.nqn(), "host no longer allowed: tearing its controller down");
            ctrl.tear_down();
            dropped.push(Arc::downgrade(&ctrl));
        }
    }
    dropped
}

/// Waits until every controller of `ctrls` is gone: out of the registry, its supervisor ended
/// and each of its queues done with the commands it had started (every one of them holds the
/// controller until then); false after `limit`.
async fn wait_gone(ctrls: &[Weak<Controller>], limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if ctrls.iter().all(|c| c.strong_count() == 0) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
