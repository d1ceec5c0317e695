//! Identify: the controller (CNS 01h), a namespace (00h), the active namespace lists (02h and,
//! per command set, 07h), the namespace identification descriptors (03h), the NVM command set
//! namespace and controller data (05h, 06h), the command set independent namespace data (08h)
//! and the I/O Command Set data structure (1Ch). Discovery controllers answer 01h and 1Ch.
//!
//! The fields the Linux host checks are filled as it expects: CNTLID equal to the Connect's,
//! KAS non-zero, IOCCSZ ≥ 4, IORCSZ 1, ICDOFF 0, SGLS with in-capsule offsets, MSDBD 1, OAES
//! advertising the notices we send (Namespace Attribute for I/O controllers, Discovery Log
//! Change for discovery controllers). Namespace identifiers come from the lvol (or bdev) UUID,
//! so they are unique and stable across restarts.

use bytes::{Bytes, BytesMut};
use lamina_protocol::nvme::identify::{
    Cns, Csi, IdentifyController, IdentifyControllerNvm, IdentifyNamespace,
    IdentifyNamespaceIndependent, IdentifyNamespaceNvm, IoCommandSetList, IoCommandSetVector,
    LbaFormat, NsIdDescriptor, NsIdList,
};
use lamina_protocol::nvme::strings::Nqn;
use lamina_protocol::nvme::{Identify, Sqe, Status, StatusCode};

use crate::plane::command::{Completion, QueueCtx};
use crate::plane::controller::aer::AERL;
use crate::plane::controller::properties::VERSION;
use crate::plane::subsystem::{Namespace, SubsystemKind};

/// OAES bit 8: Namespace Attribute Notices.
const OAES_NS_ATTRIBUTE: u32 = 1 << 8;
/// OAES bit 31: Discovery Log Page Change Notices.
const OAES_DISCOVERY_CHANGE: u32 = 1 << 31;
/// ONCS: Compare, Dataset Management, Write Zeroes, the Save field of Set Features with the
/// Select field of Get Features (no feature is saveable: saving is refused with Feature
/// Identifier Not Saveable, and Select 010b returns the defaults), and the Timestamp feature.
const ONCS: u16 = (1 << 0) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 6);
/// VWC: present, and Flush with NSID FFFFFFFFh applies to every namespace.
const VWC: u8 = 0b111;
/// SGLS: SGLs supported (no alignment), Address field as offset (in-capsule data).
const SGLS: u32 = 1 | (1 << 20);
/// CTRATT: 128-bit Host Identifier, Traffic Based Keep Alive (any command restarts the timer).
const CTRATT: u32 = 1 | (1 << 6);
//~ NVMe Base 2.0, Identify Controller, LPA bit 5: the controller supports the Supported Log
//~ Pages log page, the scope of each command in the Commands Supported and Effects log page,
//~ the Feature Identifiers Supported and Effects log page and the NVMe-MI Commands Supported
//~ and Effects log page.
/// LPA of an NVM controller: Commands Supported and Effects, extended Get Log Page (offsets,
/// 32-bit NUMD), and bit 5 (the NVMe 2.0 "supported and effects" pages, scopes included). A
/// discovery controller serves only the extended Get Log Page: it has no Commands Supported
/// and Effects log.
const LPA: u8 = (1 << 1) | (1 << 2) | (1 << 5);
/// LPA of a discovery controller.
const LPA_DISCOVERY: u8 = 1 << 2;
/// Error log entries kept, 0's based.
pub const ELPE: u8 = 63;
/// OFCS bit 0: Disconnect supported (deleting a single I/O queue); an NVM controller serves it,
/// a discovery controller has no I/O queue.
const OFCS_DISCONNECT: u16 = 1;
/// DLFEAT: deallocated blocks read as zeros, Write Zeroes honours DEAC.
const DLFEAT: u8 = 0b1001;

/// The I/O command set combinations the controllers support, in index order: index 0 is the
/// NVM Command Set alone (what CC.CSS 000b selects), and the only one.
pub const IOCS_COMBINATIONS: [IoCommandSetVector; 1] = [IoCommandSetVector::NVM_ONLY];

/// The CNS values a controller of this kind answers; every other CNS is Invalid Field.
pub fn served_cns(discovery: bool) -> &'static [Cns] {
    if discovery {
        &[Cns::CONTROLLER, Cns::COMMAND_SET]
    } else {
        &[
            Cns::NAMESPACE,
            Cns::CONTROLLER,
            Cns::ACTIVE_NS_LIST,
            Cns::NS_ID_DESCRIPTORS,
            Cns::CSI_NAMESPACE,
            Cns::CSI_CONTROLLER,
            Cns::CSI_ACTIVE_NS_LIST,
            Cns::CS_INDEPENDENT_NAMESPACE,
            Cns::COMMAND_SET,
        ]
    }
}

/// Handles Identify.
pub fn identify(ctx: &QueueCtx, sqe: &Sqe) -> Completion {
    let cid = sqe.cid;
    let Ok(cmd) = Identify::try_from(sqe) else {
        return Completion::error(cid, StatusCode::INVALID_FIELD);
    };
    let discovery = ctx.ctrl.subsystem().kind() == SubsystemKind::Discovery;
    if !served_cns(discovery).contains(&cmd.cns) {
        return Completion::error(cid, StatusCode::INVALID_FIELD);
    }
    let result = match cmd.cns {
        Cns::CONTROLLER => Ok(controller(ctx)),
        Cns::NAMESPACE => namespace(ctx, cmd.nsid),
        Cns::ACTIVE_NS_LIST => active_list(ctx, cmd.nsid, None),
        Cns::CSI_ACTIVE_NS_LIST => active_list(ctx, cmd.nsid, Some(cmd.csi)),
        Cns::NS_ID_DESCRIPTORS => descriptors(ctx, cmd.nsid),
        Cns::CSI_NAMESPACE => nvm_namespace(ctx, cmd.nsid, cmd.csi),
        Cns::CSI_CONTROLLER if cmd.csi == Csi::NVM.0 => Ok(nvm_controller()),
        Cns::CS_INDEPENDENT_NAMESPACE => independent_namespace(ctx, cmd.nsid),
        Cns::COMMAND_SET => command_sets(ctx, cmd.cntid),
        _ => Err(StatusCode::INVALID_FIELD),
    };
    match result {
        Ok(data) => Completion::data(cid, data),
        Err(code) => Completion::with_status(cid, Status::dnr(code)),
    }
}

fn controller(ctx: &QueueCtx) -> Bytes {
    let sub = ctx.ctrl.subsystem();
    let opts = ctx.plane.options();
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
        crdt: ctx.plane.subsystems.settings.crdt(),
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

/// The namespace `nsid` names: `Ok(None)` for an inactive NSID within NN, Invalid Namespace
/// or Format for 0 and anything past NN (FFFFFFFFh included: no Namespace Management).
fn lookup(ctx: &QueueCtx, nsid: u32) -> Result<Option<std::sync::Arc<Namespace>>, StatusCode> {
    let sub = ctx.ctrl.subsystem();
    if nsid == 0 || nsid > sub.max_namespaces() {
        return Err(StatusCode::INVALID_NAMESPACE_OR_FORMAT);
    }
    Ok(ctx.ctrl.namespace(nsid))
}

fn namespace(ctx: &QueueCtx, nsid: u32) -> Result<Bytes, StatusCode> {
    let mut b = BytesMut::with_capacity(IdentifyNamespace::SIZE);
    //~ NVMe Base 2.0, Identify Namespace (CNS 00h): an inactive NSID reads as a zero filled
    //~ data structure.
    let data = lookup(ctx, nsid)?
        .map(|ns| namespace_data(&ns))
        .unwrap_or_default();
    data.encode(&mut b);
    Ok(b.freeze())
}

//~ NVMe Base 2.0, Active Namespace ID list (CNS 02h, and CNS 07h for the command set in
//~ CSI): active NSIDs greater than NSID, increasing; NSID FFFFFFFEh and FFFFFFFFh are Invalid
//~ Namespace or Format (as nvmet and SPDK answer); an unsupported CSI is Invalid Field.
fn active_list(ctx: &QueueCtx, after: u32, csi: Option<u8>) -> Result<Bytes, StatusCode> {
    if after >= 0xffff_fffe {
        return Err(StatusCode::INVALID_NAMESPACE_OR_FORMAT);
    }
    if csi.is_some_and(|c| !supports_csi(c)) {
        return Err(StatusCode::INVALID_FIELD);
    }
    // Every namespace Lamina serves belongs to the NVM Command Set.
    let ids: Vec<u32> = ctx
        .ctrl
        .nsids()
        .into_iter()
        .filter(|n| *n > after)
        .take(NsIdList::SIZE / 4)
        .collect();
    let mut b = BytesMut::with_capacity(4096);
    NsIdList { nsids: ids }.encode(&mut b);
    Ok(b.freeze())
}

/// Whether `csi` names a command set of the supported combinations.
fn supports_csi(csi: u8) -> bool {
    IOCS_COMBINATIONS.iter().any(|v| v.contains(Csi(csi)))
}

//~ NVMe Base 2.0, Identify CNS 05h: the I/O Command Set specific Identify Namespace data
//~ structure for the command set in CSI. An unsupported CSI is Invalid Field (as for CNS
//~ 06h); NSIDs as nvmet and SPDK answer: an inactive or invalid NSID is Invalid Namespace or
//~ Format.
fn nvm_namespace(ctx: &QueueCtx, nsid: u32, csi: u8) -> Result<Bytes, StatusCode> {
    if csi != Csi::NVM.0 {
        return Err(StatusCode::INVALID_FIELD);
    }
    lookup(ctx, nsid)?.ok_or(StatusCode::INVALID_NAMESPACE_OR_FORMAT)?;
    // No storage tags and no protection information: every field is zero, ELBAF0 included
    // (16-bit guard format, which no LBA format uses since none has metadata).
    let mut b = BytesMut::with_capacity(IdentifyNamespaceNvm::SIZE);
    IdentifyNamespaceNvm::default().encode(&mut b);
    Ok(b.freeze())
}

//~ NVMe Base 2.0, Identify CNS 08h: the I/O Command Set Independent Identify Namespace data
//~ structure; an inactive NSID reads as zeros, 0 and NSIDs past NN are Invalid Namespace or
//~ Format (SPDK; FFFFFFFFh too, as there is no Namespace Management).
fn independent_namespace(ctx: &QueueCtx, nsid: u32) -> Result<Bytes, StatusCode> {
    let data = lookup(ctx, nsid)?
        .map(|ns| {
            let id = namespace_data(&ns);
            IdentifyNamespaceIndependent {
                nmic: id.nmic,
                nsattr: id.nsattr,
                nstat: IdentifyNamespaceIndependent::NSTAT_READY,
                ..IdentifyNamespaceIndependent::default()
            }
        })
        .unwrap_or_default();
    let mut b = BytesMut::with_capacity(IdentifyNamespaceIndependent::SIZE);
    data.encode(&mut b);
    Ok(b.freeze())
}

//~ NVMe Base 2.0, Identify CNS 1Ch: the I/O Command Set data structure of the controller
//~ CNTID names; like SPDK, only this controller (its CNTLID, or FFFFh) is answered.
fn command_sets(ctx: &QueueCtx, cntid: u16) -> Result<Bytes, StatusCode> {
    if cntid != 0xffff && cntid != ctx.ctrl.cntlid() {
        return Err(StatusCode::INVALID_FIELD);
    }
    let mut b = BytesMut::with_capacity(IoCommandSetList::SIZE);
    IoCommandSetList {
        vectors: IOCS_COMBINATIONS.to_vec(),
    }
    .encode(&mut b);
    Ok(b.freeze())
}

fn descriptors(ctx: &QueueCtx, nsid: u32) -> Result<Bytes, StatusCode> {
    let ns = ctx
        .ctrl
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
