//! Target-wide NVMe-oF settings: `nvmf_set_config`, `nvmf_set_max_subsystems` and
//! `nvmf_set_crdt` (see [`crate::plane::subsystem::settings`]).
//!
//! SPDK accepts these only before its framework starts; Lamina has no such phase, so they apply
//! at once: a new discovery filter to the next Discovery Log Page read, CRDT to the next
//! Identify Controller, a subsystem limit to the next `nvmf_create_subsystem` (a limit below the
//! subsystems that exist is refused), a duplicate host policy to the next Connect. Admin
//! command passthrough, poll-group placement and
//! DH-HMAC-CHAP are not implemented: the first two are accepted only off or absent; the
//! DH-HMAC-CHAP digest and group lists constrain an authentication no host can start yet, so
//! any list means the same.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use super::super::dispatch::RpcResult;
use super::super::error::{ENOSPC, RpcError};
use super::super::fields::{Described, Field, Lit, applied, object, only};
use crate::mgmt::context::Target;
use crate::plane::subsystem::settings::{DiscoveryFilter, DupHostPolicy};

/// SPDK's `admin_cmd_passthru` object: every switch must be off (Lamina has no NVMe device
/// to pass admin commands to); the catalogue checks them and strips the object.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AdminCmdPassthru {}

/// Why every passthrough switch must be off.
const NO_PASSTHRU: &str = "Lamina has no NVMe devices behind its namespaces to pass admin \
     commands to";

impl Described for AdminCmdPassthru {
    const FIELDS: &'static [Field] = &[
        only("identify_ctrlr", &[Lit::Bool(false)], NO_PASSTHRU),
        only("identify_uuid_list", &[Lit::Bool(false)], NO_PASSTHRU),
        only("get_log_page", &[Lit::Bool(false)], NO_PASSTHRU),
        only("get_set_features", &[Lit::Bool(false)], NO_PASSTHRU),
        only("sanitize", &[Lit::Bool(false)], NO_PASSTHRU),
        only("security_send_recv", &[Lit::Bool(false)], NO_PASSTHRU),
        only("fw_update", &[Lit::Bool(false)], NO_PASSTHRU),
        only("nvme_mi", &[Lit::Bool(false)], NO_PASSTHRU),
        only("vendor_specific", &[Lit::Bool(false)], NO_PASSTHRU),
    ];
}

/// `nvmf_set_config`'s parameters Lamina applies.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SetConfig {
    discovery_filter: Option<String>,
    discovery_filters: Option<Vec<String>>,
    dup_host_policy: Option<String>,
    dhchap_digests: Option<Vec<String>>,
    dhchap_dhgroups: Option<Vec<String>>,
}

impl Described for SetConfig {
    const FIELDS: &'static [Field] = &[
        object::<AdminCmdPassthru>("admin_cmd_passthru"),
        only(
            "poll_groups_mask",
            &[],
            "Lamina has no SPDK poll groups to place on CPUs",
        ),
        applied("discovery_filter"),
        applied("discovery_filters"),
        applied("dhchap_digests"),
        applied("dhchap_dhgroups"),
        applied("dup_host_policy"),
    ];
}

pub(super) async fn set_config(t: Arc<Target>, p: SetConfig) -> RpcResult {
    let policy = p
        .dup_host_policy
        .as_deref()
        .map(DupHostPolicy::parse)
        .transpose()
        .map_err(|e| RpcError::invalid_params(format!("dup_host_policy {e}")))?;
    let filter = match (&p.discovery_filter, &p.discovery_filters) {
        (Some(_), Some(_)) => {
            return Err(RpcError::invalid_params(
                "give discovery_filter or discovery_filters, not both",
            ));
        }
        (Some(f), None) => Some(f.clone()),
        (None, Some(list)) => Some(list.join(",")),
        (None, None) => None,
    };
    if let Some(f) = filter {
        let f = DiscoveryFilter::parse(&f)
            .map_err(|e| RpcError::invalid_params(format!("discovery_filter {e}")))?;
        t.subsystems.settings.set_discovery_filter(f);
        t.subsystems.bump_generation();
    }
    let auth = auth_policy(
        &t,
        p.dhchap_digests.as_deref(),
        p.dhchap_dhgroups.as_deref(),
    )?;
    if let Some(policy) = policy {
        t.subsystems.settings.set_dup_host_policy(policy);
    }
    if let Some(auth) = auth {
        t.subsystems.settings.set_auth_policy(auth);
    }
    Ok(json!(true))
}

/// The DH-HMAC-CHAP policy with the lists given replaced (each checked whole first).
fn auth_policy(
    t: &Target,
    digests: Option<&[String]>,
    groups: Option<&[String]>,
) -> Result<Option<crate::plane::auth::Policy>, RpcError> {
    use crate::plane::auth::{DhGroup, HashFn};
    if digests.is_none() && groups.is_none() {
        return Ok(None);
    }
    let mut p = t.subsystems.settings.auth_policy();
    if let Some(list) = digests {
        p.digests = names(
            list,
            "dhchap_digests",
            HashFn::from_name,
            "sha256, sha384, sha512",
        )?;
    }
    if let Some(list) = groups {
        p.groups = names(
            list,
            "dhchap_dhgroups",
            DhGroup::from_name,
            "null, ffdhe2048, ffdhe3072, ffdhe4096, ffdhe6144, ffdhe8192",
        )?;
    }
    Ok(Some(p))
}

fn names<T: Ord>(
    list: &[String],
    field: &str,
    parse: impl Fn(&str) -> Option<T>,
    known: &str,
) -> Result<Vec<T>, RpcError> {
    if list.is_empty() {
        return Err(RpcError::invalid_params(format!(
            "{field} is empty: no host could authenticate"
        )));
    }
    let mut out = list
        .iter()
        .map(|n| {
            parse(n).ok_or_else(|| {
                RpcError::invalid_params(format!("{field}: unknown {n:?} (known: {known})"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

/// `nvmf_set_max_subsystems`' parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SetMaxSubsystems {
    max_subsystems: u32,
}

impl Described for SetMaxSubsystems {
    const FIELDS: &'static [Field] = &[applied("max_subsystems")];
}

pub(super) async fn set_max_subsystems(t: Arc<Target>, p: SetMaxSubsystems) -> RpcResult {
    let existing = t.subsystems.list().len().saturating_sub(1);
    if p.max_subsystems == 0 {
        return Err(RpcError::invalid_params(
            "max_subsystems must be at least 1",
        ));
    }
    if usize::try_from(p.max_subsystems).unwrap_or(usize::MAX) < existing {
        return Err(RpcError::new(
            ENOSPC,
            format!(
                "max_subsystems {} is below the {existing} subsystems that exist",
                p.max_subsystems
            ),
        ));
    }
    t.subsystems.settings.set_max_subsystems(p.max_subsystems);
    Ok(json!(true))
}

/// `nvmf_set_crdt`'s parameters: Command Retry Delay Times in 100 ms units.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SetCrdt {
    crdt1: Option<u16>,
    crdt2: Option<u16>,
    crdt3: Option<u16>,
}

impl Described for SetCrdt {
    const FIELDS: &'static [Field] = &[applied("crdt1"), applied("crdt2"), applied("crdt3")];
}

/// Sets all three times; one left out is 0, as in SPDK.
pub(super) async fn set_crdt(t: Arc<Target>, p: SetCrdt) -> RpcResult {
    t.subsystems.settings.set_crdt([
        p.crdt1.unwrap_or(0),
        p.crdt2.unwrap_or(0),
        p.crdt3.unwrap_or(0),
    ]);
    Ok(json!(true))
}
