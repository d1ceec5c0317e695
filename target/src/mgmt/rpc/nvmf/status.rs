//! What is connected and how it went: `nvmf_subsystem_get_controllers`,
//! `nvmf_subsystem_get_qpairs` and `nvmf_get_stats`.
//!
//! Lamina has no SPDK poll groups: its connections run on a tokio runtime, so `nvmf_get_stats`
//! reports one poll group named `lamina` holding the target-wide counts, and, under its TCP
//! transport, the transport statistics the metrics endpoint exports (PDUs by type and
//! direction, C2HTermReqs by FES, digest errors, keep-alive expiries, connections, zero-copy
//! sends by outcome). SPDK's TCP
//! transport reports only `trtype` there.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::super::dispatch::RpcResult;
use super::{ListenAddress, NqnOnly, TgtOnly, subsystem};
use crate::mgmt::context::Target;
use crate::plane::stats::OpClass;
use crate::plane::stats::transport::TransportStats;

pub(super) async fn get_controllers(t: Arc<Target>, p: NqnOnly) -> RpcResult {
    let sub = subsystem(&t, &p.nqn)?;
    Ok(Value::Array(
        t.controllers
            .of_subsystem(sub.nqn())
            .iter()
            .map(|c| {
                let hostid = Uuid::from_bytes(c.host().hostid);
                json!({
                    "cntlid": c.cntlid(),
                    "hostnqn": c.host().hostnqn,
                    "hostid": hostid.to_string(),
                    "num_io_qpairs": c.io_queue_count(),
                })
            })
            .collect(),
    ))
}

pub(super) async fn get_qpairs(t: Arc<Target>, p: NqnOnly) -> RpcResult {
    let sub = subsystem(&t, &p.nqn)?;
    let mut out = Vec::new();
    for c in t.controllers.of_subsystem(sub.nqn()) {
        let addr = ListenAddress::from_socket_addr(c.host().local);
        let peer = ListenAddress::from_socket_addr(c.host().peer);
        let qids = std::iter::once(0).chain(c.io_queue_ids());
        for qid in qids {
            let auth = c.queue_auth(qid);
            let described = auth.as_ref().and_then(|a| a.describe());
            // SPDK's qpair states: a queue still authenticating takes no other command.
            let state = match &auth {
                Some(a) if !a.admits() => "authenticating",
                _ => "active",
            };
            let mut q = json!({"cntlid": c.cntlid(), "qid": qid, "state": state,
                "thread": "lamina", "hostnqn": c.host().hostnqn,
                "listen_address": addr, "peer_address": peer});
            if let Some((step, negotiated)) = described {
                q["auth"] = json!({
                    "state": step.name(),
                    "digest": negotiated.map_or("unknown", |(h, _)| h.name()),
                    "dhgroup": negotiated.map_or("unknown", |(_, g)| g.name()),
                });
            }
            out.push(q);
        }
    }
    Ok(Value::Array(out))
}

pub(super) async fn get_stats(t: Arc<Target>, _p: TgtOnly) -> RpcResult {
    let s = &t.transport_stats;
    let completed: u64 = t
        .subsystems
        .list()
        .iter()
        .flat_map(|sub| sub.namespaces())
        .map(|ns| {
            OpClass::ALL
                .iter()
                .map(|c| ns.stats().commands(*c))
                .sum::<u64>()
        })
        .sum();
    let (_, unconnected) = t.admission.counts();
    Ok(json!({
        "tick_rate": 1_000_000_000u64,
        "poll_groups": [{
            "name": "lamina",
            "admin_qpairs": s.admin_queues_total.load(Ordering::Relaxed),
            "io_qpairs": s.io_queues_total.load(Ordering::Relaxed),
            "current_admin_qpairs": TransportStats::gauge(&s.admin_queues),
            "current_io_qpairs": TransportStats::gauge(&s.io_queues),
            "current_unassociated_qpairs": unconnected,
            "pending_bdev_io": 0,
            "completed_nvme_io": completed,
            "transports": [transport_stats(s)],
        }],
    }))
}

/// The TCP transport's statistics.
fn transport_stats(s: &TransportStats) -> Value {
    let labelled = |pairs: Vec<(&'static str, u64)>| -> Value {
        Value::Object(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), json!(v)))
                .collect::<Map<_, _>>(),
        )
    };
    json!({
        "trtype": "TCP",
        "current_connections": TransportStats::gauge(&s.connections),
        "connections": s.connections_total.load(Ordering::Relaxed),
        "keep_alive_expiries": s.kato_expiries.load(Ordering::Relaxed),
        "header_digest_errors": s.header_digest_errors.load(Ordering::Relaxed),
        "data_digest_errors": s.data_digest_errors.load(Ordering::Relaxed),
        "connection_panics": s.connection_panics.load(Ordering::Relaxed),
        "zero_copy_sends": labelled(vec![
            ("zero_copy", s.zero_copy_sends.load(Ordering::Relaxed)),
            ("copied", s.zero_copy_copied.load(Ordering::Relaxed)),
        ]),
        "c2h_term_reqs": labelled(s.term_reqs()),
        "pdus_received": labelled(s.pdus_received()),
        "pdus_sent": labelled(s.pdus_sent()),
    })
}
