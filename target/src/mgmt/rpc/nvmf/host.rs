//! Allow-lists: `nvmf_subsystem_add_host` and `nvmf_subsystem_remove_host`.
//!
//! Taking a host off the list (or turning `allow_any_host` off) tears down the controllers it
//! no longer may hold, as SPDK does, and `nvmf_subsystem_remove_host` answers once they are gone
//! (their commands finished), or with `-ETIMEDOUT` after `timeout_ms`. TLS PSKs and
//! DH-HMAC-CHAP keys are not implemented yet and are accepted only absent.

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::super::dispatch::RpcResult;
use super::super::error::{ETIMEDOUT, RpcError};
use super::super::fields::{Described, Field, TGT_NAME, applied, only};
use super::nvm_subsystem;
use crate::mgmt::context::Target;
use crate::plane::controller::Controller;
use crate::plane::subsystem::Subsystem;

/// `nvmf_subsystem_add_host`'s parameters Lamina applies.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AddHost {
    nqn: String,
    host: String,
}

/// Why keys are refused.
const NO_KEYS: &str = "TLS PSKs and DH-HMAC-CHAP keys are not implemented yet";

impl Described for AddHost {
    const FIELDS: &'static [Field] = &[
        applied("nqn"),
        applied("host"),
        TGT_NAME,
        only("psk", &[], NO_KEYS),
        only("dhchap_key", &[], NO_KEYS),
        only("dhchap_ctrlr_key", &[], NO_KEYS),
    ];
}

pub(super) async fn add_host(t: Arc<Target>, p: AddHost) -> RpcResult {
    lamina_protocol::nvme::Nqn::new(&p.host)
        .map_err(|e| RpcError::invalid_params(format!("host: {e}")))?;
    let sub = nvm_subsystem(&t, &p.nqn)?;
    if !sub.add_host(&p.host) {
        return Err(RpcError::exists(format!(
            "host {} is already allowed on {}",
            p.host, p.nqn
        )));
    }
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
