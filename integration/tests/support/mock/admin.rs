//! Admin and Fabrics commands of the mock target.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use lamina_protocol::fabrics::{
    Cap, ConnectCommand, ConnectData, ConnectSuccess, FabricsCommandType, Property, PropertyGet,
    PropertySet, Vs, fabrics_command_type,
};
use lamina_protocol::nvme::features::{FeatureId, NumberOfQueues};
use lamina_protocol::nvme::identify::{
    Cns, IdentifyController, IdentifyControllerNvm, IdentifyNamespace, LbaFormat, NsIdDescriptor,
    NsIdList,
};
use lamina_protocol::nvme::{
    AdminOpcode, GetFeatures, GetLogPage, Identify, Nqn, SetFeatures, Sqe, StatusCode,
};

use super::conn::{Conn, Reply};
use super::{CtrlState, Fault, MOCK_NQN};

pub(crate) fn execute(c: &mut Conn, sqe: &Sqe, data: &Bytes, read_len: u32) -> Reply {
    if let Some(fctype) = fabrics_command_type(sqe) {
        return fabrics(c, fctype, sqe, data);
    }
    if c.qid.is_none() {
        return Reply::error(StatusCode::COMMAND_SEQUENCE_ERROR);
    }
    match AdminOpcode(sqe.opcode) {
        AdminOpcode::IDENTIFY => identify(c, sqe),
        AdminOpcode::GET_LOG_PAGE => log_page(sqe, read_len),
        AdminOpcode::SET_FEATURES => set_features(c, sqe),
        AdminOpcode::GET_FEATURES => get_features(c, sqe),
        AdminOpcode::KEEP_ALIVE => {
            c.shared.keep_alives.fetch_add(1, Ordering::Relaxed);
            Reply::ok()
        }
        AdminOpcode::ASYNC_EVENT_REQUEST => {
            c.aers.push(sqe.cid);
            Reply::deferred()
        }
        _ => Reply::error(StatusCode::INVALID_OPCODE),
    }
}

fn fabrics(c: &mut Conn, fctype: FabricsCommandType, sqe: &Sqe, data: &Bytes) -> Reply {
    match fctype {
        FabricsCommandType::CONNECT => connect(c, sqe, data),
        FabricsCommandType::PROPERTY_GET => property_get(c, sqe),
        FabricsCommandType::PROPERTY_SET => property_set(c, sqe),
        FabricsCommandType::DISCONNECT => {
            c.qid = None;
            Reply::ok()
        }
        _ => Reply::error(StatusCode::INVALID_OPCODE),
    }
}

fn connect(c: &mut Conn, sqe: &Sqe, data: &Bytes) -> Reply {
    let (Ok(cmd), Ok(d)) = (ConnectCommand::try_from(sqe), ConnectData::decode(data)) else {
        return Reply::error(StatusCode::INVALID_FIELD);
    };
    if d.subnqn != Nqn::new(MOCK_NQN).unwrap_or_else(|_| Nqn::discovery()) {
        return Reply::error(StatusCode::CONNECT_INVALID_PARAMETERS);
    }
    c.sqflow_disabled = cmd.cattr & ConnectCommand::CATTR_DISABLE_SQ_FLOW_CONTROL != 0;
    c.sq_entries = cmd.sqsize.saturating_add(1);
    if cmd.qid == 0 {
        let cntlid = c.shared.next_cntlid.fetch_add(1, Ordering::Relaxed);
        let mut map = c
            .shared
            .controllers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.insert(
            cntlid,
            CtrlState {
                kato_ms: cmd.kato_ms,
                events: Some(c.events_tx.clone()),
                ..CtrlState::default()
            },
        );
        c.cntlid = cntlid;
        c.kato = (cmd.kato_ms > 0).then(|| Duration::from_millis(u64::from(cmd.kato_ms)));
    } else {
        if c.shared.with_ctrl(d.cntlid, |_| ()).is_none() {
            return Reply::error(StatusCode::CONNECT_INVALID_PARAMETERS);
        }
        c.cntlid = d.cntlid;
    }
    c.qid = Some(cmd.qid);
    Reply::dw0(
        ConnectSuccess {
            cntlid: c.cntlid,
            authreq: 0,
        }
        .dw0(),
    )
}

fn cap(c: &Conn) -> u64 {
    Cap::new(c.shared.config.mqes, 1, Cap::CSS_NVM, 0, 0).0
}

fn property_get(c: &Conn, sqe: &Sqe) -> Reply {
    let Ok(get) = PropertyGet::try_from(sqe) else {
        return Reply::error(StatusCode::INVALID_FIELD);
    };
    let (cc, csts) = c
        .shared
        .with_ctrl(c.cntlid, |s| (s.cc, s.csts))
        .unwrap_or((0, 0));
    let value = match get.offset {
        Property::CAP => cap(c),
        Property::VS => u64::from(Vs::V1_4.0),
        Property::CC => u64::from(cc),
        Property::CSTS => u64::from(csts),
        _ => return Reply::error(StatusCode::INVALID_FIELD),
    };
    Reply {
        dw1: u32::try_from(value >> 32).unwrap_or(0),
        ..Reply::dw0(u32::try_from(value & 0xffff_ffff).unwrap_or(0))
    }
}

fn property_set(c: &Conn, sqe: &Sqe) -> Reply {
    let Ok(set) = PropertySet::try_from(sqe) else {
        return Reply::error(StatusCode::INVALID_FIELD);
    };
    if set.offset != Property::CC {
        return Reply::error(StatusCode::INVALID_FIELD);
    }
    let cc = u32::try_from(set.value & 0xffff_ffff).unwrap_or(0);
    c.shared.with_ctrl(c.cntlid, |s| {
        s.cc = cc;
        let ready = cc & 1;
        // SHN normal or abrupt: shutdown complete (10b) at once.
        let shst = if (cc >> 14) & 3 != 0 { 0b10 << 2 } else { 0 };
        s.csts = ready | shst;
    });
    Reply::ok()
}

fn identify(c: &Conn, sqe: &Sqe) -> Reply {
    let Ok(id) = Identify::try_from(sqe) else {
        return Reply::error(StatusCode::INVALID_FIELD);
    };
    let mut out = BytesMut::new();
    match id.cns {
        Cns::CONTROLLER => identify_controller(c).encode(&mut out),
        Cns::NAMESPACE if id.nsid == 1 => identify_namespace(c).encode(&mut out),
        Cns::ACTIVE_NS_LIST => NsIdList {
            nsids: if id.nsid < 1 { vec![1] } else { vec![] },
        }
        .encode(&mut out),
        Cns::NS_ID_DESCRIPTORS if id.nsid == 1 => {
            NsIdDescriptor::encode_list(&[NsIdDescriptor::Nguid([0x42; 16])], &mut out);
        }
        Cns::CSI_CONTROLLER => IdentifyControllerNvm::default().encode(&mut out),
        _ => return Reply::error(StatusCode::INVALID_FIELD),
    }
    Reply::data(out.to_vec())
}

fn identify_controller(c: &Conn) -> IdentifyController {
    let cfg = c.shared.config;
    let cntlid = if cfg.fault == Fault::WrongCntlid {
        c.cntlid + 100
    } else {
        c.cntlid
    };
    IdentifyController {
        serial_number: "MOCK0001".into(),
        model_number: "Lamina mock target".into(),
        firmware_revision: "0.1".into(),
        cntlid,
        ver: Vs::V1_4.0,
        mdts: cfg.mdts,
        kas: 10,
        maxcmd: 1024,
        nn: 1,
        oncs: 0x0d,
        vwc: 1,
        sgls: 0x10_0001,
        ioccsz: cfg.ioccsz,
        iorcsz: 1,
        msdbd: 1,
        cntrltype: 1,
        sqes: 0x66,
        cqes: 0x44,
        oaes: 0x100,
        subnqn: Nqn::new(MOCK_NQN).ok(),
        ..IdentifyController::default()
    }
}

fn identify_namespace(c: &Conn) -> IdentifyNamespace {
    let mut id = IdentifyNamespace {
        nsze: c.shared.config.blocks,
        ncap: c.shared.config.blocks,
        nuse: c.shared.config.blocks,
        nguid: [0x42; 16],
        ..IdentifyNamespace::default()
    };
    id.lbaf[0] = LbaFormat {
        ms: 0,
        lbads: 12,
        rp: 0,
    };
    id
}

fn log_page(sqe: &Sqe, read_len: u32) -> Reply {
    let Ok(get) = GetLogPage::try_from(sqe) else {
        return Reply::error(StatusCode::INVALID_FIELD);
    };
    if u64::from(read_len) != get.len_bytes() {
        return Reply::error(StatusCode::DATA_SGL_LENGTH_INVALID);
    }
    // Byte i of every log reads as (offset + i) mod 256, so offset handling is visible.
    let data = (0..u64::from(read_len))
        .map(|i| u8::try_from((get.lpo + i) % 256).unwrap_or(0))
        .collect();
    Reply::data(data)
}

fn set_features(c: &Conn, sqe: &Sqe) -> Reply {
    let Ok(set) = SetFeatures::try_from(sqe) else {
        return Reply::error(StatusCode::INVALID_FIELD);
    };
    match set.fid {
        FeatureId::NUMBER_OF_QUEUES => {
            let max = c.shared.config.max_io_queues.saturating_sub(1);
            let asked = NumberOfQueues::from_dword(set.cdw11);
            Reply::dw0(
                NumberOfQueues {
                    nsq: asked.nsq.min(max),
                    ncq: asked.ncq.min(max),
                }
                .to_dword(),
            )
        }
        FeatureId::ASYNC_EVENT_CONFIG => {
            c.shared.with_ctrl(c.cntlid, |s| s.aec = set.cdw11);
            Reply::ok()
        }
        FeatureId::KEEP_ALIVE_TIMER => {
            c.shared.with_ctrl(c.cntlid, |s| s.kato_ms = set.cdw11);
            Reply::ok()
        }
        _ => Reply::error(StatusCode::INVALID_FIELD),
    }
}

fn get_features(c: &Conn, sqe: &Sqe) -> Reply {
    let Ok(get) = GetFeatures::try_from(sqe) else {
        return Reply::error(StatusCode::INVALID_FIELD);
    };
    let state = c
        .shared
        .with_ctrl(c.cntlid, |s| (s.aec, s.kato_ms))
        .unwrap_or((0, 0));
    match get.fid {
        FeatureId::ASYNC_EVENT_CONFIG => Reply::dw0(state.0),
        FeatureId::KEEP_ALIVE_TIMER => Reply::dw0(state.1),
        FeatureId::VOLATILE_WRITE_CACHE => Reply::dw0(1),
        FeatureId::NUMBER_OF_QUEUES => {
            let n = c.shared.config.max_io_queues.saturating_sub(1);
            Reply::dw0(NumberOfQueues { nsq: n, ncq: n }.to_dword())
        }
        _ => Reply::error(StatusCode::INVALID_FIELD),
    }
}
