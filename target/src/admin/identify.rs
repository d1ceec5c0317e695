//! Identify: the controller (CNS 01h), a namespace (00h), the active namespace list (02h), the
//! namespace identification descriptors (03h) and the NVM command set controller data (06h).
//!
//! The fields the Linux host checks are filled as it expects: CNTLID equal to the Connect's,
//! KAS non-zero, IOCCSZ ≥ 4, IORCSZ 1, ICDOFF 0, SGLS with in-capsule offsets, MSDBD 1, OAES
//! advertising the notices we send (Namespace Attribute for I/O controllers, Discovery Log
//! Change for discovery controllers). Namespace identifiers come from the lvol (or bdev) UUID,
//! so they are unique and stable across restarts.

use bytes::{Bytes, BytesMut};
use lamina_protocol::nvme::identify::{
    Cns, Csi, IdentifyController, IdentifyControllerNvm, IdentifyNamespace, LbaFormat,
    NsIdDescriptor, NsIdList,
};
use lamina_protocol::nvme::strings::Nqn;
use lamina_protocol::nvme::{Identify, Sqe, Status, StatusCode};

use crate::command::{Completion, QueueCtx};
use crate::controller::aer::AERL;
use crate::controller::properties::VERSION;
use crate::subsystem::{Namespace, SubsystemKind};

/// OAES bit 8: Namespace Attribute Notices.
const OAES_NS_ATTRIBUTE: u32 = 1 << 8;
/// OAES bit 31: Discovery Log Page Change Notices.
const OAES_DISCOVERY_CHANGE: u32 = 1 << 31;
/// ONCS: Compare, Dataset Management, Write Zeroes.
const ONCS: u16 = (1 << 0) | (1 << 2) | (1 << 3);
/// VWC: present, and Flush with NSID FFFFFFFFh applies to every namespace.
const VWC: u8 = 0b111;
/// SGLS: SGLs supported (no alignment), Address field as offset (in-capsule data).
const SGLS: u32 = 1 | (1 << 20);
/// CTRATT: 128-bit Host Identifier, Traffic Based Keep Alive (any command restarts the timer).
const CTRATT: u32 = 1 | (1 << 6);
/// LPA of an NVM controller: Commands Supported and Effects, extended Get Log Page (offsets,
/// 32-bit NUMD). A discovery controller serves only the extended Get Log Page: it has no
/// Commands Supported and Effects log.
const LPA: u8 = (1 << 1) | (1 << 2);
/// LPA of a discovery controller.
const LPA_DISCOVERY: u8 = 1 << 2;
/// Error log entries kept, 0's based.
pub const ELPE: u8 = 63;
/// OFCS bit 0: Disconnect supported (deleting a single I/O queue); an NVM controller serves it,
/// a discovery controller has no I/O queue.
const OFCS_DISCONNECT: u16 = 1;
/// DLFEAT: deallocated blocks read as zeros, Write Zeroes honours DEAC.
const DLFEAT: u8 = 0b1001;

/// Handles Identify.
pub fn identify(ctx: &QueueCtx, sqe: &Sqe) -> Completion {
    let cid = sqe.cid;
    let Ok(cmd) = Identify::try_from(sqe) else {
        return Completion::error(cid, StatusCode::INVALID_FIELD);
    };
    let discovery = ctx.ctrl.subsystem().kind() == SubsystemKind::Discovery;
    let result = match cmd.cns {
        Cns::CONTROLLER => Ok(controller(ctx)),
        _ if discovery => Err(StatusCode::INVALID_FIELD),
        Cns::NAMESPACE => namespace(ctx, cmd.nsid),
        Cns::ACTIVE_NS_LIST => Ok(active_list(ctx, cmd.nsid)),
        Cns::NS_ID_DESCRIPTORS => descriptors(ctx, cmd.nsid),
        Cns::CSI_CONTROLLER if cmd.csi == Csi::NVM.0 => Ok(nvm_controller()),
        _ => Err(StatusCode::INVALID_FIELD),
    };
    match result {
        Ok(data) => Completion::data(cid, data),
        Err(code) => Completion::with_status(cid, Status::dnr(code)),
    }
}

fn controller(ctx: &QueueCtx) -> Bytes {
    let sub = ctx.ctrl.subsystem();
    let opts = ctx.target.options();
    let discovery = sub.kind() == SubsystemKind::Discovery;
    let id = IdentifyController {
        serial_number: sub.serial_number().to_owned(),
        model_number: sub.model_number().to_owned(),
        firmware_revision: crate::VERSION.chars().take(8).collect(),
        rab: 6,
        cmic: if discovery { 0 } else { 1 << 1 },
        mdts: opts.mdts(),
        cntlid: ctx.ctrl.cntlid(),
        ver: VERSION.0,
        oaes: if discovery {
            OAES_DISCOVERY_CHANGE
        } else {
            OAES_NS_ATTRIBUTE
        },
        ctratt: CTRATT,
        cntrltype: if discovery { 2 } else { 1 },
        acl: 3,
        aerl: AERL,
        frmw: 0b11,
        lpa: if discovery { LPA_DISCOVERY } else { LPA },
        elpe: ELPE,
        kas: opts.kas,
        crdt: ctx.target.subsystems.settings.crdt(),
        sqes: 0x66,
        cqes: 0x44,
        maxcmd: opts.max_queue_depth,
        nn: sub.max_namespaces(),
        oncs: if discovery { 0 } else { ONCS },
        vwc: if discovery { 0 } else { VWC },
        sgls: SGLS,
        mnan: sub.max_namespaces(),
        subnqn: Nqn::new(sub.nqn()).ok(),
        ioccsz: opts.ioccsz(),
        iorcsz: 1,
        icdoff: 0,
        fcatt: 0,
        msdbd: 1,
        dctype: u8::from(discovery),
        ofcs: if discovery { 0 } else { OFCS_DISCONNECT },
        ..IdentifyController::default()
    };
    let mut b = BytesMut::with_capacity(IdentifyController::SIZE);
    id.encode(&mut b);
    b.freeze()
}

/// Identify Namespace data for `ns`.
pub fn namespace_data(ns: &Namespace) -> IdentifyNamespace {
    let backend = ns.backend();
    let bs = u64::from(backend.block_size().max(1));
    let blocks = backend.size_bytes() / bs;
    let used = backend.allocated_bytes().div_ceil(bs).min(blocks);
    let thin = used < blocks;
    let mut lbaf = IdentifyNamespace::default().lbaf;
    lbaf[0] = LbaFormat {
        ms: 0,
        lbads: u8::try_from(bs.trailing_zeros()).unwrap_or(12),
        rp: 0,
    };
    IdentifyNamespace {
        nsze: blocks,
        ncap: blocks,
        nuse: used,
        nsfeat: u8::from(thin),
        nlbaf: 0,
        flbas: 0,
        nmic: 1,
        dlfeat: DLFEAT,
        nsattr: u8::from(backend.is_read_only()),
        nguid: ns.nguid(),
        lbaf,
        ..IdentifyNamespace::default()
    }
}

fn namespace(ctx: &QueueCtx, nsid: u32) -> Result<Bytes, StatusCode> {
    let sub = ctx.ctrl.subsystem();
    if nsid == 0 || nsid > sub.max_namespaces() {
        return Err(StatusCode::INVALID_NAMESPACE_OR_FORMAT);
    }
    let mut b = BytesMut::with_capacity(IdentifyNamespace::SIZE);
    // An inactive NSID within range reads as all zeros (NVMe Base 2.0 §5.17.2.1).
    let data = sub
        .namespace(nsid)
        .map(|ns| namespace_data(&ns))
        .unwrap_or_default();
    data.encode(&mut b);
    Ok(b.freeze())
}

fn active_list(ctx: &QueueCtx, after: u32) -> Bytes {
    let ids: Vec<u32> = ctx
        .ctrl
        .subsystem()
        .nsids()
        .into_iter()
        .filter(|n| *n > after)
        .take(NsIdList::SIZE / 4)
        .collect();
    let mut b = BytesMut::with_capacity(4096);
    NsIdList { nsids: ids }.encode(&mut b);
    b.freeze()
}

fn descriptors(ctx: &QueueCtx, nsid: u32) -> Result<Bytes, StatusCode> {
    let ns = ctx
        .ctrl
        .subsystem()
        .namespace(nsid)
        .ok_or(StatusCode::INVALID_NAMESPACE_OR_FORMAT)?;
    let list = [
        NsIdDescriptor::Nguid(ns.nguid()),
        NsIdDescriptor::Uuid(*ns.uuid().as_bytes()),
        NsIdDescriptor::Csi(Csi::NVM.0),
    ];
    let mut b = BytesMut::with_capacity(4096);
    NsIdDescriptor::encode_list(&list, &mut b);
    Ok(b.freeze())
}

fn nvm_controller() -> Bytes {
    // No size limits beyond MDTS: Write Zeroes and Dataset Management ranges are bounded by
    // the namespace only.
    let id = IdentifyControllerNvm::default();
    let mut b = BytesMut::with_capacity(IdentifyControllerNvm::SIZE);
    id.encode(&mut b);
    b.freeze()
}
