//! Get Features and Set Features: Number of Queues, Keep Alive Timer, Asynchronous Event
//! Configuration, Volatile Write Cache, Timestamp and Host Identifier. Other features are
//! Invalid Field; none is saveable (Feature Identifier Not Saveable when the host asks to save).

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use lamina_protocol::nvme::features::{
    AsyncEventConfig, FeatureId, HostIdentifier, NumberOfQueues, Timestamp,
};
use lamina_protocol::nvme::{GetFeatures, SetFeatures, Sqe, StatusCode};

use crate::command::{Completion, QueueCtx};
use crate::subsystem::SubsystemKind;

/// Get Features SEL: current, default, saved, supported capabilities.
const SEL_SUPPORTED_CAPABILITIES: u8 = 3;
/// Capabilities: changeable (bit 2).
const CAP_CHANGEABLE: u32 = 1 << 2;

/// Handles Set Features.
pub fn set_features(ctx: &QueueCtx, sqe: &Sqe, data: &Bytes) -> Completion {
    let cid = sqe.cid;
    let Ok(cmd) = SetFeatures::try_from(sqe) else {
        return Completion::error(cid, StatusCode::INVALID_FIELD);
    };
    if cmd.save {
        return Completion::error(cid, StatusCode::FEATURE_NOT_SAVEABLE);
    }
    let discovery = ctx.ctrl.subsystem().kind() == SubsystemKind::Discovery;
    let ctrl = &ctx.ctrl;
    match cmd.fid {
        FeatureId::KEEP_ALIVE_TIMER => {
            ctrl.set_kato_ms(ctx.target.options().effective_kato(cmd.cdw11));
            Completion::ok(cid)
        }
        FeatureId::ASYNC_EVENT_CONFIG => {
            let supported = if discovery {
                AsyncEventConfig::DISCOVERY_LOG_CHANGE
            } else {
                AsyncEventConfig::NS_ATTRIBUTE
            };
            ctrl.update_features(|f| f.async_event_config = cmd.cdw11 & supported);
            Completion::ok(cid)
        }
        _ if discovery => Completion::error(cid, StatusCode::INVALID_FIELD),
        FeatureId::NUMBER_OF_QUEUES => number_of_queues(ctx, cid, cmd.cdw11),
        FeatureId::VOLATILE_WRITE_CACHE => {
            ctrl.update_features(|f| f.volatile_write_cache = cmd.cdw11 & 1 != 0);
            Completion::ok(cid)
        }
        FeatureId::TIMESTAMP => match Timestamp::decode(data) {
            Ok(ts) => {
                ctrl.update_features(|f| f.timestamp = Some((ts.millis, Instant::now())));
                Completion::ok(cid)
            }
            Err(_) => Completion::error(cid, StatusCode::INVALID_FIELD),
        },
        // The host identifier is fixed by Connect over Fabrics (NVMe-oF 1.1).
        FeatureId::HOST_IDENTIFIER => Completion::error(cid, StatusCode::COMMAND_SEQUENCE_ERROR),
        _ => Completion::error(cid, StatusCode::INVALID_FIELD),
    }
}

/// Number of Queues: grants min(requested, allowed) I/O queues, once per controller reset and
/// only before any I/O queue exists.
fn number_of_queues(ctx: &QueueCtx, cid: u16, cdw11: u32) -> Completion {
    let req = NumberOfQueues::from_dword(cdw11);
    if req.nsq == u16::MAX || req.ncq == u16::MAX {
        return Completion::error(cid, StatusCode::INVALID_FIELD);
    }
    if ctx.ctrl.io_queue_count() > 0 {
        return Completion::error(cid, StatusCode::COMMAND_SEQUENCE_ERROR);
    }
    let max = ctx.ctrl.max_io_queues();
    let granted = (req.nsq.max(req.ncq) + 1).min(max);
    ctx.ctrl.update_features(|f| {
        f.io_queues_granted = granted;
        f.io_queues_set = true;
    });
    let n = granted.saturating_sub(1);
    Completion::dw0(cid, NumberOfQueues { nsq: n, ncq: n }.to_dword())
}

/// Handles Get Features.
pub fn get_features(ctx: &QueueCtx, sqe: &Sqe) -> Completion {
    let cid = sqe.cid;
    let Ok(cmd) = GetFeatures::try_from(sqe) else {
        return Completion::error(cid, StatusCode::INVALID_FIELD);
    };
    let known = matches!(
        cmd.fid,
        FeatureId::KEEP_ALIVE_TIMER
            | FeatureId::ASYNC_EVENT_CONFIG
            | FeatureId::NUMBER_OF_QUEUES
            | FeatureId::VOLATILE_WRITE_CACHE
            | FeatureId::TIMESTAMP
            | FeatureId::HOST_IDENTIFIER
    );
    if !known {
        return Completion::error(cid, StatusCode::INVALID_FIELD);
    }
    if cmd.sel == SEL_SUPPORTED_CAPABILITIES {
        let changeable = cmd.fid != FeatureId::HOST_IDENTIFIER;
        return Completion::dw0(cid, if changeable { CAP_CHANGEABLE } else { 0 });
    }
    let f = ctx.ctrl.features();
    match cmd.fid {
        FeatureId::KEEP_ALIVE_TIMER => Completion::dw0(cid, ctx.ctrl.kato_ms()),
        FeatureId::ASYNC_EVENT_CONFIG => Completion::dw0(cid, f.async_event_config),
        FeatureId::NUMBER_OF_QUEUES => {
            let n = f.io_queues_granted.saturating_sub(1);
            Completion::dw0(cid, NumberOfQueues { nsq: n, ncq: n }.to_dword())
        }
        FeatureId::VOLATILE_WRITE_CACHE => Completion::dw0(cid, u32::from(f.volatile_write_cache)),
        FeatureId::TIMESTAMP => Completion::data(cid, timestamp(f.timestamp)),
        _ => host_identifier(ctx, cid, cmd.cdw11),
    }
}

/// The timestamp now: the host's value plus the time since it was set, or the time since the
/// epoch from this machine's clock (origin 0: not set by a host).
fn timestamp(set: Option<(u64, Instant)>) -> Bytes {
    let ts = match set {
        Some((ms, at)) => Timestamp {
            millis: ms.saturating_add(u64::try_from(at.elapsed().as_millis()).unwrap_or(0)),
            synch: false,
            origin: 1,
        },
        None => Timestamp {
            millis: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0)),
            synch: false,
            origin: 0,
        },
    };
    let mut b = BytesMut::with_capacity(8);
    ts.encode(&mut b);
    b.freeze()
}

fn host_identifier(ctx: &QueueCtx, cid: u16, cdw11: u32) -> Completion {
    // NVMe over Fabrics uses the 128-bit form only (EXHID must be set).
    if cdw11 & 1 == 0 {
        return Completion::error(cid, StatusCode::HOST_ID_INCONSISTENT_FORMAT);
    }
    let mut b = BytesMut::with_capacity(16);
    HostIdentifier::Extended(ctx.ctrl.host().hostid).encode(&mut b);
    Completion::data(cid, b.freeze())
}
