//! Decoding harnesses shared by the "arbitrary bytes never panic" proptests and the cargo-fuzz
//! targets in `protocol/fuzz` (which include this file with `#[path]`), so both exercise exactly
//! the same code and assert the same invariants.

use bytes::BytesMut;
use lamina_protocol::fabrics::dhchap::{ControllerMessage, HostMessage, message_id};
use lamina_protocol::fabrics::{
    AuthReceive, AuthSend, ConnectCommand, ConnectData, Disconnect, PropertyGet, PropertySet,
    discovery::DiscoveryLogPage,
};
use lamina_protocol::nvme::features::{HostIdentifier, Timestamp};
use lamina_protocol::nvme::identify::{
    IdentifyController, IdentifyControllerNvm, IdentifyNamespace, NsIdDescriptor, NsIdList,
};
use lamina_protocol::nvme::log_page::{
    AnaLog, CommandsSupportedEffects, ErrorInfoEntry, FirmwareSlotInfo, SmartLog,
};
use lamina_protocol::nvme::{
    Abort, Cqe, DatasetManagement, DsmRange, Flush, GetFeatures, GetLogPage, Identify, ReadWrite,
    SetFeatures, SimpleAdmin, Sqe, WriteZeroes,
};
use lamina_protocol::tcp::{Digests, IcReq, IcResp, Pda, Pdu, TxParams};
use lamina_protocol::{DecodeError, Framer, FramerConfig, Role};

/// Interprets `data` as: one control byte (digests, PDA, whether to start after the IC
/// exchange, chunk size), then a byte stream fed to a framer of `role` in chunks.
pub fn drive_framer(role: Role, data: &[u8]) {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let mut config = match role {
        Role::Target => FramerConfig::target(),
        Role::Host => FramerConfig::host(),
    };
    config.max_data_len = 64 * 1024;
    config.max_in_capsule_data = 16 * 1024;
    config.max_plen = 80 * 1024;
    config.rx_pda = Pda([0, 1, 7, 31][usize::from((control >> 2) & 3)]);
    let digests = Digests {
        header: control & 1 != 0,
        data: control & 2 != 0,
    };
    let mut framer = Framer::new(config);
    if control & 0x10 != 0 {
        establish(&mut framer, role);
        framer.set_digests(digests);
    }
    let chunk = usize::from(control >> 5) * 7 + 1;
    let mut buf = BytesMut::new();
    let mut fed = 0usize;
    let mut consumed = 0usize;
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        fed += piece.len();
        loop {
            let before = buf.len();
            match framer.decode(&mut buf) {
                Ok(Some(pdu)) => {
                    consumed += before - buf.len();
                    check_pdu(role, framer.config(), &pdu);
                    if matches!(pdu, Pdu::IcReq(_) | Pdu::IcResp(_)) {
                        framer.set_digests(digests);
                    }
                }
                Ok(None) => {
                    assert_eq!(before, buf.len(), "Ok(None) must not consume");
                    break;
                }
                Err(err) => {
                    check_error(&err);
                    if err.is_fatal() {
                        assert_eq!(before, buf.len(), "a fatal error leaves the buffer alone");
                        return;
                    }
                    consumed += before - buf.len();
                }
            }
        }
    }
    assert_eq!(fed, consumed + buf.len());
}

fn establish(framer: &mut Framer, role: Role) {
    let mut ic = BytesMut::new();
    match role {
        Role::Target => IcReq::default().encode(&mut ic),
        Role::Host => IcResp::default().encode(&mut ic),
    }
    let pdu = framer
        .decode(&mut ic)
        .expect("valid IC PDU")
        .expect("whole IC PDU");
    assert!(matches!(pdu, Pdu::IcReq(_) | Pdu::IcResp(_)));
}

/// A decoded PDU goes the right way, and re-encodes into bytes that decode to itself.
fn check_pdu(role: Role, config: &FramerConfig, pdu: &Pdu) {
    let t = pdu.pdu_type();
    match role {
        Role::Target => assert!(t.is_host_to_controller()),
        Role::Host => assert!(t.is_controller_to_host()),
    }
    let tx = TxParams {
        digests: config.digests,
        peer_pda: config.rx_pda,
    };
    let mut wire = BytesMut::new();
    pdu.encode(tx, &mut wire).expect("a decoded PDU encodes");
    assert_eq!(wire.len(), pdu.encoded_len(tx).expect("length"));
    let mut again = Framer::new(*config);
    let is_ic = matches!(pdu, Pdu::IcReq(_) | Pdu::IcResp(_));
    if !is_ic {
        let digests = config.digests;
        establish(&mut again, role);
        again.set_digests(digests);
    }
    let redecoded = again
        .decode(&mut wire)
        .expect("re-encoded PDU decodes")
        .expect("whole");
    assert_eq!(&redecoded, pdu);
    assert!(wire.is_empty());
}

fn check_error(err: &DecodeError) {
    let _ = err.to_string();
    assert!(err.header().len() <= 128);
    if let Some(fes) = err.fes() {
        let term = err.term_req().expect("a FES means a TermReq");
        assert_eq!(term.fes, fes);
        let mut out = BytesMut::new();
        Pdu::C2hTermReq(term)
            .encode(TxParams::INITIAL, &mut out)
            .expect("TermReq encodes");
        assert!(out.len() <= 152);
    } else {
        assert!(err.term_req().is_none());
    }
}

/// Every typed SQE view: a view that decodes must convert back into an SQE that decodes into
/// the same view.
pub fn decode_sqe(data: &[u8]) {
    let Ok(sqe) = Sqe::decode(data) else { return };
    assert_eq!(Sqe::from_bytes(&sqe.to_bytes()), sqe);
    macro_rules! view {
        ($($ty:ty),*) => {$(
            if let Ok(view) = <$ty>::try_from(&sqe) {
                assert_eq!(<$ty>::try_from(&view.to_sqe()).ok(), Some(view));
            }
        )*};
    }
    view!(
        ReadWrite,
        WriteZeroes,
        Flush,
        DatasetManagement,
        Identify,
        GetLogPage,
        SetFeatures
    );
    view!(
        GetFeatures,
        Abort,
        SimpleAdmin,
        ConnectCommand,
        PropertyGet,
        PropertySet,
        Disconnect
    );
    view!(AuthSend, AuthReceive);
    if let Ok(cqe) = Cqe::decode(data) {
        assert_eq!(Cqe::from_bytes(&cqe.to_bytes()), cqe);
    }
}

/// Connect data: a decoded value re-encodes to 1024 bytes that decode to itself.
pub fn decode_connect_data(data: &[u8]) {
    if let Ok(value) = ConnectData::decode(data) {
        let mut out = BytesMut::new();
        value.encode(&mut out);
        assert_eq!(out.len(), value.encoded_len());
        assert_eq!(ConnectData::decode(&out).expect("re-decodes"), value);
    }
}

/// A DH-HMAC-CHAP message of kind `kind` (its AUTH_TYPE and AUTH_ID forced, so that every
/// message is reached) with arbitrary bytes after: decoding never panics, and a message that
/// decodes re-encodes to itself.
pub fn decode_dhchap(kind: usize, data: &[u8]) {
    const KINDS: [(u8, u8); 7] = [
        (0, message_id::NEGOTIATE),
        (1, message_id::REPLY),
        (1, message_id::SUCCESS2),
        (0, message_id::FAILURE2),
        (1, message_id::CHALLENGE),
        (1, message_id::SUCCESS1),
        (0, message_id::FAILURE1),
    ];
    let (auth_type, auth_id) = KINDS[kind % KINDS.len()];
    let mut msg = vec![auth_type, auth_id];
    msg.extend_from_slice(data);
    if let Ok(m) = HostMessage::decode(&msg) {
        let mut out = BytesMut::new();
        m.encode(&mut out);
        assert_eq!(HostMessage::decode(&out).expect("re-decodes"), m);
    }
    if let Ok(m) = ControllerMessage::decode(&msg) {
        let mut out = BytesMut::new();
        m.encode(&mut out);
        assert_eq!(ControllerMessage::decode(&out).expect("re-decodes"), m);
    }
}

/// Identify data structures and log pages: the first byte picks the decoder; a decoded value
/// re-encodes to bytes that decode to itself.
pub fn decode_structures(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    macro_rules! round_trip {
        ($ty:ty) => {{
            if let Ok(value) = <$ty>::decode(rest) {
                let mut out = BytesMut::new();
                value.encode(&mut out);
                assert_eq!(out.len(), value.encoded_len());
                assert_eq!(<$ty>::decode(&out).expect("re-decodes"), value);
            }
        }};
    }
    match which % 14 {
        0 => round_trip!(IdentifyController),
        1 => round_trip!(IdentifyNamespace),
        2 => round_trip!(NsIdList),
        3 => {
            if let Ok(list) = NsIdDescriptor::decode_list(rest) {
                let mut out = BytesMut::new();
                NsIdDescriptor::encode_list(&list, &mut out);
                assert_eq!(NsIdDescriptor::decode_list(&out).expect("re-decodes"), list);
            }
        }
        4 => round_trip!(IdentifyControllerNvm),
        5 => round_trip!(ErrorInfoEntry),
        6 => round_trip!(SmartLog),
        7 => round_trip!(FirmwareSlotInfo),
        8 => round_trip!(CommandsSupportedEffects),
        9 => round_trip!(AnaLog),
        10 => {
            if let Ok(page) = DiscoveryLogPage::decode(rest) {
                let mut out = BytesMut::new();
                page.encode(&mut out);
                assert_eq!(out.len(), page.encoded_len());
                let again = DiscoveryLogPage::decode(&out).expect("re-decodes");
                assert_eq!(again.entries, page.entries);
                assert_eq!((again.genctr, again.numrec), (page.genctr, page.numrec));
            }
        }
        11 => {
            if let Ok(ts) = Timestamp::decode(rest) {
                let mut out = BytesMut::new();
                ts.encode(&mut out);
                assert_eq!(Timestamp::decode(&out).expect("re-decodes"), ts);
            }
        }
        12 => {
            let cdw11 = u32::from(rest.first().copied().unwrap_or(0) & 1);
            if let Ok(id) = HostIdentifier::decode(cdw11, rest.get(1..).unwrap_or_default()) {
                let mut out = BytesMut::new();
                id.encode(&mut out);
                assert_eq!(
                    HostIdentifier::decode(id.cdw11(), &out).expect("re-decodes"),
                    id
                );
            }
        }
        _ => {
            let count = usize::from(rest.first().copied().unwrap_or(0));
            if let Ok(ranges) = DsmRange::decode_list(rest.get(1..).unwrap_or_default(), count) {
                assert_eq!(ranges.len(), count);
            }
        }
    }
}
