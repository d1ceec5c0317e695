//! Namespaces: `nvmf_subsystem_add_ns` and `nvmf_subsystem_remove_ns`, with SPDK's namespace
//! object.
//!
//! A namespace exports an lvol (named by UUID or `lvs/name` alias) or a bdev. Its NSID, NGUID
//! and UUID are applied. Each namespace is its own ANA group, numbered as its NSID (SPDK's
//! default), so `anagrpid` is accepted at that number only. `no_auto_visible` makes a namespace
//! visible only to the hosts `nvmf_ns_add_host` lists ([`super::ns_host`]). Reservations
//! persisted to a file, EUI-64 identifiers and metadata hiding are not implemented and are
//! accepted only off.

use std::sync::Arc;

use lamina_lvol::OpenMode;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::super::dispatch::RpcResult;
use super::super::error::RpcError;
use super::super::fields::{Described, Field, Lit, TGT_NAME, applied, object, only};
use super::nvm_subsystem;
use crate::mgmt::context::Target;
use crate::plane::bdev::Claim;
use crate::plane::subsystem::{Backend, Namespace};

/// SPDK's namespace object: what Lamina applies.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NsParams {
    bdev_name: String,
    nsid: Option<u32>,
    nguid: Option<String>,
    uuid: Option<Uuid>,
    anagrpid: Option<u32>,
    #[serde(default)]
    no_auto_visible: bool,
}

impl Described for NsParams {
    const FIELDS: &'static [Field] = &[
        applied("nsid"),
        applied("bdev_name"),
        applied("nguid"),
        only(
            "eui64",
            &[],
            "Lamina identifies namespaces by NGUID and UUID; EUI-64 identifiers are not \
             implemented",
        ),
        applied("uuid"),
        only(
            "ptpl_file",
            &[],
            "reservations (and their persistence) are not implemented yet",
        ),
        applied("anagrpid"),
        applied("no_auto_visible"),
        only(
            "hide_metadata",
            &[Lit::Bool(false)],
            "Lamina bdevs carry no metadata to hide",
        ),
    ];
}

/// `nvmf_subsystem_add_ns`' parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AddNs {
    nqn: String,
    namespace: NsParams,
}

impl Described for AddNs {
    const FIELDS: &'static [Field] = &[applied("nqn"), object::<NsParams>("namespace"), TGT_NAME];
}

fn parse_nguid(s: &str) -> Result<[u8; 16], RpcError> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    let bad = || RpcError::invalid_params("nguid must be 32 hexadecimal digits");
    if hex.len() != 32 {
        return Err(bad());
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16)
            .map_err(|_| bad())?;
    }
    Ok(out)
}

pub(super) async fn add_ns(t: Arc<Target>, p: AddNs) -> RpcResult {
    let sub = nvm_subsystem(&t, &p.nqn)?;
    let nguid = p.namespace.nguid.as_deref().map(parse_nguid).transpose()?;
    // No await from here to the publication: the guard is a plain mutex.
    let _adding = sub.adding_namespace();
    let nsid = match p.namespace.nsid {
        Some(0) | None => sub.free_nsid(&t.pending.reserved_nsids(&p.nqn))?,
        Some(n) => n,
    };
    if let Some(g) = p.namespace.anagrpid.filter(|g| *g != nsid) {
        return Err(RpcError::invalid_params(format!(
            "namespace.anagrpid {g} is not supported: ANA groups are not implemented yet, and \
             each namespace is in its own group, numbered as its NSID ({nsid}), as SPDK's \
             default (Lamina accepts {nsid}, or leaving it out)"
        )));
    }
    let backend = open_backend(&t, &p.namespace.bdev_name, &p.nqn, nsid)?;
    // An lvol is a bdev named by its UUID (its alias is only an alias), as in SPDK.
    let name = match &backend {
        Backend::Lvol(d) => d.lvol().uuid().to_string(),
        Backend::Bdev(b) => b.name().to_owned(),
    };
    let mut ns = Namespace::new(nsid, name.clone(), backend, p.namespace.uuid, nguid);
    if p.namespace.no_auto_visible {
        ns = ns.masked();
    }
    let ns = Arc::new(ns);
    if let Err(e) = sub.add_namespace(ns.clone()) {
        // Never published: give the backend back (the lvol's export, a bdev's claim).
        ns.backend().release();
        return Err(e.into());
    }
    tracing::info!(nqn = %p.nqn, nsid, bdev = %name, no_auto_visible = p.namespace.no_auto_visible,
        "namespace added");
    Ok(json!(nsid))
}

/// Opens what `name` refers to for export: an lvol (UUID or alias), else a bdev.
fn open_backend(t: &Target, name: &str, nqn: &str, nsid: u32) -> Result<Backend, RpcError> {
    if let Ok(lvol) = t.lvols.lvol(name) {
        let desc = lvol.open(OpenMode::Export).map_err(RpcError::from)?;
        return Ok(Backend::Lvol(desc));
    }
    let bdev = t.bdevs.get(name).map_err(|_| {
        RpcError::not_found(format!(
            "bdev '{name}' not found (neither an lvol nor a bdev)"
        ))
    })?;
    bdev.try_claim(Claim::Namespace {
        nqn: nqn.to_owned(),
        nsid,
    })
    .map_err(|holder| RpcError::busy(format!("bdev '{name}' is in use by {holder}")))?;
    Ok(Backend::Bdev(bdev))
}

/// `nvmf_subsystem_remove_ns`' parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RemoveNs {
    nqn: String,
    nsid: u32,
}

impl Described for RemoveNs {
    const FIELDS: &'static [Field] = &[applied("nqn"), applied("nsid"), TGT_NAME];
}

pub(super) async fn remove_ns(t: Arc<Target>, p: RemoveNs) -> RpcResult {
    let sub = nvm_subsystem(&t, &p.nqn)?;
    sub.remove_namespace(p.nsid).await?;
    tracing::info!(nqn = %p.nqn, nsid = p.nsid, "namespace removed");
    Ok(json!(true))
}
