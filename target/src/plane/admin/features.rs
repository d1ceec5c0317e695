//! Get Features and Set Features, table-driven: each controller type has a table of the
//! features it serves ([`served`]), with their scope, whether Set Features may change them, and
//! the functions that read and write them (in [`super::feature_values`]). The Feature
//! Identifiers Supported and Effects log page (LID 12h) is made from the same table, so what it
//! advertises is what is served.
//!
//! I/O controllers serve Arbitration, Power Management, Temperature Threshold, Error Recovery,
//! Volatile Write Cache, Number of Queues, Write Atomicity Normal, Asynchronous Event
//! Configuration, Timestamp, Keep Alive Timer, I/O Command Set Profile and Host Identifier;
//! discovery controllers Asynchronous Event Configuration and Keep Alive Timer. Interrupt
//! Coalescing and Interrupt Vector Configuration are PCIe-only (nvmet refuses them on fabrics
//! controllers too). No feature is saveable: SV=1 is Feature Identifier Not Saveable, and Get
//! Features with Select "saved" returns the default, as the specification says for features
//! that cannot be saved.

use bytes::{Bytes, BytesMut};
use lamina_protocol::nvme::features::FeatureId;
use lamina_protocol::nvme::log_page::{FeatureEffects, FeatureIdsEffects};
use lamina_protocol::nvme::{GetFeatures, SetFeatures, Sqe, StatusCode};

use super::feature_values as v;
pub use super::feature_values::{Reply, Which};
use crate::plane::command::{Completion, QueueCtx};
use crate::plane::subsystem::SubsystemKind;

/// Reads a feature.
pub type GetFn = fn(&QueueCtx, &GetFeatures, Which) -> Result<Reply, StatusCode>;
/// Writes a feature: `(command, its data)`, returns completion DW0.
pub type SetFn = fn(&QueueCtx, &SetFeatures, &Bytes) -> Result<u32, StatusCode>;

/// One served feature.
#[derive(Debug, Clone, Copy)]
pub struct Feature {
    /// Its identifier.
    pub fid: FeatureId,
    /// Whether it is namespace specific (else its scope is the controller).
    pub per_namespace: bool,
    /// Whether Set Features may change it (Get Features "supported capabilities" bit 2).
    pub changeable: bool,
    /// Get Features.
    pub get: GetFn,
    /// Set Features.
    pub set: SetFn,
}

const fn ctrl(fid: FeatureId, get: GetFn, set: SetFn) -> Feature {
    Feature {
        fid,
        per_namespace: false,
        changeable: true,
        get,
        set,
    }
}

/// The features of an I/O controller.
const IO_FEATURES: &[Feature] = &[
    ctrl(
        FeatureId::ARBITRATION,
        v::get_arbitration,
        v::set_arbitration,
    ),
    ctrl(FeatureId::POWER_MANAGEMENT, v::get_power, v::set_power),
    ctrl(
        FeatureId::TEMPERATURE_THRESHOLD,
        v::get_temperature,
        v::set_temperature,
    ),
    Feature {
        per_namespace: true,
        ..ctrl(
            FeatureId::ERROR_RECOVERY,
            v::get_error_recovery,
            v::set_error_recovery,
        )
    },
    ctrl(FeatureId::VOLATILE_WRITE_CACHE, v::get_vwc, v::set_vwc),
    ctrl(FeatureId::NUMBER_OF_QUEUES, v::get_queues, v::set_queues),
    ctrl(
        FeatureId::WRITE_ATOMICITY,
        v::get_atomicity,
        v::set_atomicity,
    ),
    ctrl(FeatureId::ASYNC_EVENT_CONFIG, v::get_aec, v::set_aec),
    ctrl(FeatureId::TIMESTAMP, v::get_timestamp, v::set_timestamp),
    ctrl(FeatureId::KEEP_ALIVE_TIMER, v::get_kato, v::set_kato),
    ctrl(FeatureId::IO_COMMAND_SET_PROFILE, v::get_iocs, v::set_iocs),
    Feature {
        changeable: false,
        ..ctrl(FeatureId::HOST_IDENTIFIER, v::get_host_id, v::set_host_id)
    },
];

/// The features of a discovery controller.
const DISCOVERY_FEATURES: &[Feature] = &[
    ctrl(FeatureId::ASYNC_EVENT_CONFIG, v::get_aec, v::set_aec),
    ctrl(FeatureId::KEEP_ALIVE_TIMER, v::get_kato, v::set_kato),
];

/// The features a controller of this kind serves.
pub fn served(discovery: bool) -> &'static [Feature] {
    if discovery {
        DISCOVERY_FEATURES
    } else {
        IO_FEATURES
    }
}

fn is_discovery(ctx: &QueueCtx) -> bool {
    ctx.ctrl.subsystem().kind() == SubsystemKind::Discovery
}

fn lookup(ctx: &QueueCtx, fid: FeatureId) -> Option<&'static Feature> {
    served(is_discovery(ctx)).iter().find(|f| f.fid == fid)
}

/// Feature Identifiers Supported and Effects (log page 12h) of this controller.
pub fn effects_log(ctx: &QueueCtx) -> Bytes {
    let mut log = FeatureIdsEffects::default();
    for f in served(is_discovery(ctx)) {
        let scope = if f.per_namespace {
            FeatureEffects::NSCPE
        } else {
            FeatureEffects::CSCPE
        };
        log.fids[usize::from(f.fid.0)] = FeatureEffects(FeatureEffects::FSUPP | scope);
    }
    let mut b = BytesMut::with_capacity(FeatureIdsEffects::SIZE);
    log.encode(&mut b);
    b.freeze()
}

/// The NSID checks of both commands: `Err` for an NSID the feature cannot take.
//~ NVMe Base 2.0, Set Features: a namespace specific feature takes an active NSID or
//~ FFFFFFFFh (every namespace); a feature that is not namespace specific, given the NSID of
//~ a namespace, is Feature Not Namespace Specific (as SPDK answers); NSIDs past NN are
//~ Invalid Namespace or Format.
fn check_nsid(ctx: &QueueCtx, f: &Feature, nsid: u32, set: bool) -> Result<(), StatusCode> {
    let sub = ctx.ctrl.subsystem();
    let broadcast = nsid == 0xffff_ffff || (nsid == 0 && (!set || !f.per_namespace));
    if broadcast {
        return Ok(());
    }
    if nsid == 0 || nsid > sub.max_namespaces() {
        return Err(StatusCode::INVALID_NAMESPACE_OR_FORMAT);
    }
    if f.per_namespace {
        return ctx
            .ctrl
            .namespace(nsid)
            .map(|_| ())
            .ok_or(StatusCode::INVALID_NAMESPACE_OR_FORMAT);
    }
    if set {
        Err(StatusCode::FEATURE_NOT_NAMESPACE_SPECIFIC)
    } else {
        Ok(())
    }
}

/// Handles Set Features.
pub fn set_features(ctx: &QueueCtx, sqe: &Sqe, data: &Bytes) -> Completion {
    let cid = sqe.cid;
    let Ok(cmd) = SetFeatures::try_from(sqe) else {
        return Completion::error(cid, StatusCode::INVALID_FIELD);
    };
    let Some(f) = lookup(ctx, cmd.fid) else {
        return Completion::error(cid, StatusCode::INVALID_FIELD);
    };
    if cmd.save {
        return Completion::error(cid, StatusCode::FEATURE_NOT_SAVEABLE);
    }
    let done = check_nsid(ctx, f, cmd.nsid, true).and_then(|()| (f.set)(ctx, &cmd, data));
    match done {
        Ok(dw0) => Completion::dw0(cid, dw0),
        Err(code) => Completion::error(cid, code),
    }
}

//~ NVMe Base 2.0, Get Features, Select: 000b current, 001b default, 010b saved, 011b supported
//~ capabilities (bit 0 saveable, bit 1 namespace specific, bit 2 changeable); 100b to 111b
//~ are reserved. Saved, for a feature that is not saveable, is the default value.
const SEL_CURRENT: u8 = 0;
const SEL_DEFAULT: u8 = 1;
const SEL_SAVED: u8 = 2;
const SEL_CAPABILITIES: u8 = 3;

/// Handles Get Features.
pub fn get_features(ctx: &QueueCtx, sqe: &Sqe) -> Completion {
    let cid = sqe.cid;
    let Ok(cmd) = GetFeatures::try_from(sqe) else {
        return Completion::error(cid, StatusCode::INVALID_FIELD);
    };
    let Some(f) = lookup(ctx, cmd.fid) else {
        return Completion::error(cid, StatusCode::INVALID_FIELD);
    };
    if let Err(code) = check_nsid(ctx, f, cmd.nsid, false) {
        return Completion::error(cid, code);
    }
    let which = match cmd.sel {
        SEL_CURRENT => Which::Current,
        SEL_DEFAULT | SEL_SAVED => Which::Default,
        SEL_CAPABILITIES => {
            let caps = (u32::from(f.per_namespace) << 1) | (u32::from(f.changeable) << 2);
            return Completion::dw0(cid, caps);
        }
        _ => return Completion::error(cid, StatusCode::INVALID_FIELD),
    };
    match (f.get)(ctx, &cmd, which) {
        Ok(Reply::Dw0(dw0)) => Completion::dw0(cid, dw0),
        Ok(Reply::Data(dw0, data)) => Completion {
            dw0,
            ..Completion::data(cid, data)
        },
        Err(code) => Completion::error(cid, code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_hold_each_fid_once_and_discovery_a_subset() {
        for discovery in [false, true] {
            let mut fids: Vec<u8> = served(discovery).iter().map(|f| f.fid.0).collect();
            let n = fids.len();
            fids.sort_unstable();
            fids.dedup();
            assert_eq!(fids.len(), n, "a FID twice");
        }
        for f in served(true) {
            assert!(served(false).iter().any(|g| g.fid == f.fid));
        }
        // Interrupt Coalescing and Interrupt Vector Configuration are PCIe-only.
        assert!(
            !served(false)
                .iter()
                .any(|f| f.fid.0 == 0x08 || f.fid.0 == 0x09)
        );
    }
}
