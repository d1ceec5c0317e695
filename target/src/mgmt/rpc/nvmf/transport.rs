//! `nvmf_create_transport` and `nvmf_get_transports`: Lamina's one TCP transport and its
//! options ([`TransportOptions`]).
//!
//! Every parameter of SPDK's schema is accepted. The ones Lamina implements are applied (queue
//! and capsule sizes, the C2H SUCCESS optimisation, keep-alive granularity and minimum, socket
//! priority). SPDK's buffer-pool sizes and poll rates describe machinery Lamina does not have
//! (its data buffers are pooled per queue and grow with the queue depth; it accepts connections
//! as they arrive instead of polling), and the RDMA- and vfio-user-only ones do nothing on TCP in
//! SPDK either: any value means the same. Zero-copy, DIF insert/strip and ONCS/FUSES masking are
//! not implemented and are accepted only off. See the module doc of [`super`] for what a second
//! `nvmf_create_transport` does.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::Deserialize;
use serde_json::{Value, json};

use super::super::dispatch::{Params, RpcResult};
use super::super::error::{EBUSY, RpcError};
use super::super::fields::{Described, Field, Lit, TGT_NAME, Ty, applied, only, same};
use crate::mgmt::context::Target;
use crate::options::TransportOptions;

/// `nvmf_create_transport`'s parameters Lamina applies.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateTransport {
    trtype: String,
    max_queue_depth: Option<u16>,
    max_io_qpairs_per_ctrlr: Option<u16>,
    /// SPDK's older name, counting the admin queue too.
    max_qpairs_per_ctrlr: Option<u16>,
    in_capsule_data_size: Option<u32>,
    max_io_size: Option<u32>,
    io_unit_size: Option<u32>,
    max_aq_depth: Option<u16>,
    c2h_success: Option<bool>,
    kas: Option<u16>,
    min_kato: Option<u32>,
    sock_priority: Option<u32>,
}

/// Why SPDK's buffer-pool sizes make no difference.
const NO_SHARED_POOL: &str = "Lamina has no shared data-buffer pool to size: buffers are pooled \
     per queue and grow with its depth";
/// Why RDMA-only options make no difference.
const RDMA_ONLY: &str = "an RDMA option; SPDK's TCP transport ignores it too";
/// Why vfio-user-only options make no difference.
const VFIO_USER_ONLY: &str = "a vfio-user option; SPDK's TCP transport ignores it too";

impl Described for CreateTransport {
    const FIELDS: &'static [Field] = &[
        applied("trtype"),
        TGT_NAME,
        applied("max_queue_depth"),
        applied("max_io_qpairs_per_ctrlr"),
        applied("max_qpairs_per_ctrlr"),
        applied("in_capsule_data_size"),
        applied("max_io_size"),
        applied("io_unit_size"),
        applied("max_aq_depth"),
        same("num_shared_buffers", Ty::Int, NO_SHARED_POOL),
        same("buf_cache_size", Ty::Int, NO_SHARED_POOL),
        same("iobuf_small_cache_size", Ty::Int, NO_SHARED_POOL),
        same("iobuf_large_cache_size", Ty::Int, NO_SHARED_POOL),
        same(
            "control_msg_num",
            Ty::Int,
            "Lamina keeps no per-poll-group pool of control-message buffers",
        ),
        only(
            "zcopy",
            &[Lit::Bool(false)],
            "Lamina has no zero-copy bdev path to switch on",
        ),
        same("num_cqe", Ty::Int, RDMA_ONLY),
        same("max_srq_depth", Ty::Int, RDMA_ONLY),
        same("no_srq", Ty::Bool, RDMA_ONLY),
        applied("c2h_success"),
        only(
            "dif_insert_or_strip",
            &[Lit::Bool(false)],
            "Lamina bdevs carry no protection information to insert or strip",
        ),
        applied("sock_priority"),
        same("acceptor_backlog", Ty::Int, RDMA_ONLY),
        only(
            "abort_timeout_sec",
            &[Lit::Int(1)],
            "Lamina's Abort never waits for a command (it completes 'not aborted' at once), so \
             only SPDK's default of 1 s describes it",
        ),
        same("no_wr_batching", Ty::Bool, RDMA_ONLY),
        same("disable_mappable_bar0", Ty::Bool, VFIO_USER_ONLY),
        same("disable_adaptive_irq", Ty::Bool, VFIO_USER_ONLY),
        same("disable_shadow_doorbells", Ty::Bool, VFIO_USER_ONLY),
        same(
            "acceptor_poll_rate",
            Ty::Int,
            "Lamina accepts connections as they arrive (epoll); it does not poll",
        ),
        same("ack_timeout", Ty::Int, RDMA_ONLY),
        same("data_wr_pool_size", Ty::Int, RDMA_ONLY),
        same(
            "disable_command_passthru",
            Ty::Bool,
            "Lamina has no passthrough bdevs: unknown opcodes get Invalid Opcode either way",
        ),
        applied("kas"),
        applied("min_kato"),
        only(
            "masked_oncs",
            &[Lit::EmptyList],
            "masking optional NVM commands is not implemented: Lamina serves every command its \
             ONCS advertises",
        ),
        only(
            "masked_fuses",
            &[Lit::EmptyList],
            "Lamina advertises no fused operations (FUSES is 0), so there is nothing to mask",
        ),
    ];
}

impl CreateTransport {
    /// `base` with the options this request gives.
    fn apply_to(&self, base: &TransportOptions) -> TransportOptions {
        TransportOptions {
            max_queue_depth: self.max_queue_depth.unwrap_or(base.max_queue_depth),
            max_io_qpairs_per_ctrlr: self
                .max_io_qpairs_per_ctrlr
                .or(self.max_qpairs_per_ctrlr.map(|q| q.saturating_sub(1)))
                .unwrap_or(base.max_io_qpairs_per_ctrlr),
            in_capsule_data_size: self
                .in_capsule_data_size
                .unwrap_or(base.in_capsule_data_size),
            max_io_size: self.max_io_size.unwrap_or(base.max_io_size),
            io_unit_size: self.io_unit_size.unwrap_or(base.io_unit_size),
            max_aq_depth: self.max_aq_depth.unwrap_or(base.max_aq_depth),
            c2h_success: self.c2h_success.unwrap_or(base.c2h_success),
            kas: self.kas.unwrap_or(base.kas),
            min_kato: self.min_kato.unwrap_or(base.min_kato),
            sock_priority: self.sock_priority.unwrap_or(base.sock_priority),
        }
    }
}

pub(super) async fn create_transport(t: Arc<Target>, p: CreateTransport) -> RpcResult {
    if !p.trtype.eq_ignore_ascii_case("tcp") {
        return Err(RpcError::invalid(format!(
            "transport type '{}' is not supported: Lamina serves TCP",
            p.trtype
        )));
    }
    if !t.transport_created.load(Ordering::Acquire) {
        let o = p.apply_to(&TransportOptions::default());
        o.validate().map_err(RpcError::invalid_params)?;
        t.set_options(o);
        t.transport_created.store(true, Ordering::Release);
        return Ok(json!(true));
    }
    let current = t.options();
    let asked = p.apply_to(&current);
    if asked == current {
        return Ok(json!(true));
    }
    asked.validate().map_err(RpcError::invalid_params)?;
    let connected = t.controllers.list().len();
    if connected > 0 {
        return Err(RpcError::new(
            EBUSY,
            format!(
                "the TCP transport exists with other options ({}) and {connected} controller(s) \
                 are connected: disconnect them first, or put the options in the --config file",
                differences(&current, &asked)
            ),
        ));
    }
    tracing::info!(changes = %differences(&current, &asked), "transport options changed");
    t.set_options(asked);
    Ok(json!(true))
}

/// Whether `nvmf_create_transport` with `params` would find the transport there with exactly
/// those options, so a configuration replay counts the call as already done.
pub(crate) fn transport_unchanged(t: &Target, params: &Value) -> bool {
    if !t.transport_created.load(Ordering::Acquire) {
        return false;
    }
    let Ok(p) = Params::new(Some(params.clone())).parse::<CreateTransport>() else {
        return false;
    };
    let current = t.options();
    p.trtype.eq_ignore_ascii_case("tcp") && p.apply_to(&current) == current
}

/// "name: current -> asked" for each option that differs.
fn differences(current: &TransportOptions, asked: &TransportOptions) -> String {
    let (Ok(Value::Object(a)), Ok(Value::Object(b))) =
        (serde_json::to_value(current), serde_json::to_value(asked))
    else {
        return String::new();
    };
    a.iter()
        .filter(|(k, v)| b.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: {v} -> {}", b.get(k).unwrap_or(&Value::Null)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `nvmf_get_transports`' parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GetTransports {
    trtype: Option<String>,
}

impl Described for GetTransports {
    const FIELDS: &'static [Field] = &[TGT_NAME, applied("trtype")];
}

pub(super) async fn get_transports(t: Arc<Target>, p: GetTransports) -> RpcResult {
    if p.trtype
        .as_deref()
        .is_some_and(|tr| !tr.eq_ignore_ascii_case("tcp"))
    {
        return Err(RpcError::not_found("no such transport"));
    }
    if !t.transport_created.load(Ordering::Acquire) {
        return Ok(json!([]));
    }
    Ok(json!([transport_json(&t.options())]))
}

/// The transport as `nvmf_get_transports` and `save_config` show it: SPDK's names, with the
/// values of the options that describe what Lamina does.
pub fn transport_json(o: &TransportOptions) -> Value {
    json!({
        "trtype": "TCP",
        "max_queue_depth": o.max_queue_depth,
        "max_io_qpairs_per_ctrlr": o.max_io_qpairs_per_ctrlr,
        "in_capsule_data_size": o.in_capsule_data_size,
        "max_io_size": o.max_io_size,
        "io_unit_size": o.io_unit_size,
        "max_aq_depth": o.max_aq_depth,
        "zcopy": false,
        "c2h_success": o.c2h_success,
        "dif_insert_or_strip": false,
        "sock_priority": o.sock_priority,
        "abort_timeout_sec": 1,
        "kas": o.kas,
        "min_kato": o.min_kato,
    })
}
