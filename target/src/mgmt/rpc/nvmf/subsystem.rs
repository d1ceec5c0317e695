//! Subsystems: `nvmf_create_subsystem`, `nvmf_delete_subsystem`, `nvmf_get_subsystems` and
//! `nvmf_subsystem_allow_any_host`.
//!
//! `min_cntlid` and `max_cntlid` bound the CNTLIDs given to the subsystem's controllers (two
//! targets serving one subsystem over multipath keep their ranges apart). ANA reporting,
//! passthrough, subsystem reset, extended discovery labels and size limits are not implemented
//! and are accepted only at the values that say so.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::super::dispatch::RpcResult;
use super::super::error::{ENOSPC, RpcError};
use super::super::fields::{Described, Field, Lit, TGT_NAME, applied, only};
use super::{ListenAddress, NqnOnly, nvm_subsystem, subsystem};
use crate::mgmt::context::Target;
use crate::plane::controller::registry::MAX_CNTLID;
use crate::plane::subsystem::registry::CreateError;
use crate::plane::subsystem::{Namespace, Subsystem, SubsystemConfig, SubsystemKind};

/// `nvmf_create_subsystem`'s parameters Lamina applies.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateSubsystem {
    nqn: String,
    serial_number: Option<String>,
    model_number: Option<String>,
    #[serde(default)]
    allow_any_host: bool,
    max_namespaces: Option<u32>,
    min_cntlid: Option<u16>,
    max_cntlid: Option<u16>,
}

impl Described for CreateSubsystem {
    const FIELDS: &'static [Field] = &[
        applied("nqn"),
        TGT_NAME,
        applied("serial_number"),
        applied("model_number"),
        only(
            "admin_label",
            &[],
            "extended discovery log page entries (and their admin labels) are not implemented",
        ),
        applied("max_namespaces"),
        applied("allow_any_host"),
        only(
            "ana_reporting",
            &[Lit::Bool(false)],
            "ANA reporting is not implemented: every path is optimized",
        ),
        applied("min_cntlid"),
        applied("max_cntlid"),
        only(
            "dmrsl",
            &[Lit::Int(0)],
            "Lamina reports no Dataset Management range size limit",
        ),
        only(
            "wzsl",
            &[Lit::Int(0)],
            "Lamina reports no Write Zeroes size limit",
        ),
        only(
            "passthrough",
            &[Lit::Bool(false)],
            "Lamina has no NVMe passthrough bdevs",
        ),
        only(
            "enable_nssr",
            &[Lit::Bool(false)],
            "NVM subsystem reset is not implemented (CAP.NSSRS is 0)",
        ),
    ];
}

/// Default serial number: SPDK's default, "00000000000000000000".
const DEFAULT_SN: &str = "00000000000000000000";
/// Default model number.
const DEFAULT_MN: &str = "Lamina NVMe/TCP";
/// Default namespace limit.
const DEFAULT_MAX_NAMESPACES: u32 = 32;

pub(super) async fn create_subsystem(t: Arc<Target>, p: CreateSubsystem) -> RpcResult {
    lamina_protocol::nvme::Nqn::new(&p.nqn)
        .map_err(|e| RpcError::invalid_params(format!("nqn: {e}")))?;
    let sn = p.serial_number.unwrap_or_else(|| DEFAULT_SN.to_owned());
    let mn = p.model_number.unwrap_or_else(|| DEFAULT_MN.to_owned());
    if sn.len() > 20 || !sn.is_ascii() {
        return Err(RpcError::invalid_params(
            "serial_number: at most 20 ASCII characters",
        ));
    }
    if mn.len() > 40 || !mn.is_ascii() {
        return Err(RpcError::invalid_params(
            "model_number: at most 40 ASCII characters",
        ));
    }
    let min = p.min_cntlid.unwrap_or(1);
    let max = p.max_cntlid.unwrap_or(MAX_CNTLID);
    if min == 0 || max > MAX_CNTLID || min > max {
        return Err(RpcError::invalid_params(format!(
            "min_cntlid {min} and max_cntlid {max}: need 1 <= min_cntlid <= max_cntlid <= \
             {MAX_CNTLID}"
        )));
    }
    let max_namespaces = match p.max_namespaces {
        None | Some(0) => DEFAULT_MAX_NAMESPACES,
        Some(n) => n,
    };
    t.subsystems
        .create(SubsystemConfig {
            nqn: p.nqn.clone(),
            serial_number: sn,
            model_number: mn,
            allow_any_host: p.allow_any_host,
            max_namespaces,
            cntlids: min..=max,
        })
        .map_err(|e| match e {
            CreateError::Exists(_) => RpcError::exists(e.to_string()),
            CreateError::Full(_) => RpcError::new(ENOSPC, e.to_string()),
        })?;
    tracing::info!(nqn = %p.nqn, "subsystem created");
    Ok(json!(true))
}

pub(super) async fn delete_subsystem(t: Arc<Target>, p: NqnOnly) -> RpcResult {
    let sub = nvm_subsystem(&t, &p.nqn)?;
    t.subsystems.remove(&p.nqn);
    for ctrl in t.controllers.of_subsystem(&p.nqn) {
        ctrl.tear_down();
    }
    for nsid in sub.nsids() {
        // Removing releases the backend; a namespace already being removed is skipped.
        let _ = sub.remove_namespace(nsid).await;
    }
    tracing::info!(nqn = %p.nqn, "subsystem deleted");
    Ok(json!(true))
}

/// `nvmf_subsystem_allow_any_host`'s parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(clippy::struct_field_names)] // SPDK's parameter name
pub(super) struct AllowAny {
    nqn: String,
    allow_any_host: bool,
}

impl Described for AllowAny {
    const FIELDS: &'static [Field] = &[applied("nqn"), applied("allow_any_host"), TGT_NAME];
}

pub(super) async fn allow_any_host(t: Arc<Target>, p: AllowAny) -> RpcResult {
    let sub = nvm_subsystem(&t, &p.nqn)?;
    sub.set_allow_any_host(p.allow_any_host);
    super::host::drop_unauthorized(&t, &sub);
    t.subsystems.bump_generation();
    Ok(json!(true))
}

/// `nvmf_get_subsystems`' parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GetSubsystems {
    nqn: Option<String>,
}

impl Described for GetSubsystems {
    const FIELDS: &'static [Field] = &[applied("nqn"), TGT_NAME];
}

pub(super) async fn get_subsystems(t: Arc<Target>, p: GetSubsystems) -> RpcResult {
    let subs = match &p.nqn {
        Some(n) => vec![subsystem(&t, n)?],
        None => t.subsystems.list(),
    };
    Ok(Value::Array(
        subs.iter().map(|s| subsystem_json(&t, s)).collect(),
    ))
}

/// One element of `nvmf_get_subsystems`.
pub fn subsystem_json(t: &Target, s: &Subsystem) -> Value {
    let discovery = s.kind() == SubsystemKind::Discovery;
    let listeners: Vec<ListenAddress> = if discovery {
        t.ports
            .list()
            .into_iter()
            .map(|p| ListenAddress::from_socket_addr(p.addr))
            .collect()
    } else {
        s.listeners()
            .into_iter()
            .map(ListenAddress::from_socket_addr)
            .collect()
    };
    let mut v = json!({
        "nqn": s.nqn(),
        "subtype": if discovery { "Discovery" } else { "NVMe" },
        "listen_addresses": listeners,
        "allow_any_host": s.allow_any_host(),
        "hosts": s.host_entries().into_iter().map(|(h, k)| host_json(&h, &k)).collect::<Vec<_>>(),
    });
    if !discovery {
        v["serial_number"] = json!(s.serial_number());
        v["model_number"] = json!(s.model_number());
        v["max_namespaces"] = json!(s.max_namespaces());
        v["min_cntlid"] = json!(s.cntlids().start());
        v["max_cntlid"] = json!(s.cntlids().end());
        v["namespaces"] =
            Value::Array(s.namespaces().iter().map(|ns| namespace_json(ns)).collect());
    }
    v
}

/// A host entry as SPDK lists it: the NQN, and the names of its keys when it has them.
fn host_json(nqn: &str, keys: &crate::plane::subsystem::HostKeys) -> Value {
    let mut j = json!({"nqn": nqn});
    if let Some(k) = &keys.psk {
        j["psk"] = json!(k.name());
    }
    if let Some(k) = &keys.dhchap {
        j["dhchap_key"] = json!(k.name());
    }
    if let Some(k) = &keys.dhchap_ctrlr {
        j["dhchap_ctrlr_key"] = json!(k.name());
    }
    j
}

fn namespace_json(ns: &Namespace) -> Value {
    let nguid = super::hex_upper(&ns.nguid());
    let v = ns.visibility();
    let mut j = json!({
        "nsid": ns.nsid(),
        "bdev_name": ns.bdev_name(),
        "name": ns.bdev_name(),
        "nguid": nguid,
        "uuid": ns.uuid().to_string(),
        "anagrpid": ns.nsid(),
        "no_auto_visible": !v.is_auto(),
    });
    // Lamina's own: which hosts see a masked namespace.
    if !v.is_auto() {
        j["hosts"] = json!(v.hosts());
    }
    j
}
