//! Namespace masking: `nvmf_ns_add_host` and `nvmf_ns_remove_host`, SPDK's methods for a
//! namespace added with `no_auto_visible`. A listed host sees the namespace; any other host of
//! the subsystem finds it inactive (see `crate::plane::subsystem::visibility`). A change reaches
//! the host's connected controllers at once as a Namespace Attribute Changed event with the
//! NSID in the Changed Namespace List, so the Linux host rescans and adds or drops the disk.
//! As in SPDK: adding a host that is listed, or removing one that is not, succeeds and changes
//! nothing; a namespace visible to every host answers `-EPERM`.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use super::super::dispatch::RpcResult;
use super::super::error::RpcError;
use super::super::fields::{Described, Field, TGT_NAME, applied};
use super::nvm_subsystem;
use crate::mgmt::context::Target;

/// Both methods' parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NsHost {
    nqn: String,
    nsid: u32,
    host: String,
}

impl Described for NsHost {
    const FIELDS: &'static [Field] = &[applied("nqn"), applied("nsid"), applied("host"), TGT_NAME];
}

fn set(t: &Target, p: &NsHost, visible: bool) -> RpcResult {
    lamina_protocol::nvme::Nqn::new(&p.host)
        .map_err(|e| RpcError::invalid_params(format!("host: {e}")))?;
    let sub = nvm_subsystem(t, &p.nqn)?;
    if sub.set_visible(p.nsid, &p.host, visible)? {
        tracing::info!(nqn = %p.nqn, nsid = p.nsid, host = %p.host, visible,
            "namespace visibility changed");
    }
    Ok(json!(true))
}

pub(super) async fn add_host(t: Arc<Target>, p: NsHost) -> RpcResult {
    set(&t, &p, true)
}

pub(super) async fn remove_host(t: Arc<Target>, p: NsHost) -> RpcResult {
    set(&t, &p, false)
}
