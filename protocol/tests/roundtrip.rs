//! Property tests: for every PDU and every structure, `decode(encode(x)) == x` and the encoded
//! length is what `encoded_len` announced.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::BytesMut;
use common::strategies::*;
use lamina_protocol::fabrics::discovery::DiscoveryLogPage;
use lamina_protocol::fabrics::{
    AuthReceive, AuthSend, ConnectCommand, ConnectData, Disconnect, Property, PropertyGet,
    PropertySet, PropertySize,
};
use lamina_protocol::nvme::features::FeatureId;
use lamina_protocol::nvme::features::{HostIdentifier, NumberOfQueues, Timestamp};
use lamina_protocol::nvme::identify::{
    Cns, IdentifyController, IdentifyControllerNvm, IdentifyNamespace, NsIdDescriptor, NsIdList,
};
use lamina_protocol::nvme::log_page::{
    AnaLog, CommandsSupportedEffects, ErrorInfoEntry, FirmwareSlotInfo, LogPageId, SmartLog,
};
use lamina_protocol::nvme::{
    Abort, AdminOpcode, AsyncEvent, Cqe, DatasetManagement, DsmRange, Flush, GetFeatures,
    GetLogPage, Identify, IoOpcode, ReadWrite, SetFeatures, SimpleAdmin, Sqe, Status, WriteZeroes,
};
use lamina_protocol::tcp::{IcReq, IcResp, Pdu, TxParams};
use lamina_protocol::{Framer, FramerConfig, Role};
use proptest::prelude::*;

fn framer(role: Role, tx: TxParams, established: bool) -> Framer {
    let mut config = match role {
        Role::Target => FramerConfig::target(),
        Role::Host => FramerConfig::host(),
    };
    config.max_data_len = 1 << 20;
    config.max_in_capsule_data = 1 << 20;
    config.max_plen = 2 << 20;
    config.rx_pda = tx.peer_pda;
    let mut f = Framer::new(config);
    if established {
        let mut ic = BytesMut::new();
        match role {
            Role::Target => IcReq::default().encode(&mut ic),
            Role::Host => IcResp::default().encode(&mut ic),
        }
        f.decode(&mut ic).unwrap().unwrap();
    }
    f.set_digests(tx.digests);
    f
}

fn pdu_round_trip(role: Role, tx: TxParams, pdu: &Pdu) -> Result<(), TestCaseError> {
    let mut wire = BytesMut::new();
    pdu.encode(tx, &mut wire).unwrap();
    prop_assert_eq!(wire.len(), pdu.encoded_len(tx).unwrap());
    let established = !matches!(pdu, Pdu::IcReq(_) | Pdu::IcResp(_));
    let mut f = framer(role, tx, established);
    let decoded = f.decode(&mut wire).unwrap().unwrap();
    prop_assert_eq!(&decoded, pdu);
    prop_assert!(wire.is_empty());
    Ok(())
}

fn tx() -> impl Strategy<Value = TxParams> {
    (digests(), pda()).prop_map(|(digests, peer_pda)| TxParams { digests, peer_pda })
}

proptest! {
    #[test]
    fn host_to_controller_pdus(tx in tx(), pdu in h2c_pdu(MAX_DATA)) {
        pdu_round_trip(Role::Target, tx, &pdu)?;
    }

    #[test]
    fn controller_to_host_pdus(tx in tx(), pdu in c2h_pdu(MAX_DATA)) {
        pdu_round_trip(Role::Host, tx, &pdu)?;
    }

    #[test]
    fn ic_pdus(req in icreq(), resp in icresp()) {
        pdu_round_trip(Role::Target, TxParams::INITIAL, &Pdu::IcReq(req))?;
        pdu_round_trip(Role::Host, TxParams::INITIAL, &Pdu::IcResp(resp))?;
    }

    #[test]
    fn split_encoding_equals_whole(tx in tx(), pdu in h2c_pdu(MAX_DATA)) {
        let mut whole = BytesMut::new();
        pdu.encode(tx, &mut whole).unwrap();
        let mut split = BytesMut::new();
        let trailer = match &pdu {
            Pdu::CapsuleCmd(p) => p.encode_head(tx, &mut split).unwrap(),
            Pdu::H2cData(p) => p.encode_head(tx, &mut split).unwrap(),
            _ => return Ok(()),
        };
        split.extend_from_slice(&trailer.data);
        if let Some(d) = trailer.data_digest {
            split.extend_from_slice(&d);
        }
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn sqe_and_cqe(sqe in sqe(), cqe in cqe()) {
        prop_assert_eq!(Sqe::decode(&sqe.to_bytes()).unwrap(), sqe);
        prop_assert_eq!(Cqe::decode(&cqe.to_bytes()).unwrap(), cqe);
        let (status, phase) = Status::from_field(cqe.status.to_field(cqe.phase));
        prop_assert_eq!((status, phase), (cqe.status, cqe.phase));
    }

    // NVM Command Set 1.0 §3.2.4
    // NVM Command Set 1.0 §3.2.6
    // NVM Command Set 1.0 §3.2.8
    // NVM Command Set 1.0 §3.2.3
    #[test]
    fn io_command_views(
        (cid, nsid, slba, nlb) in any::<(u16, u32, u64, u16)>(),
        (dtype, prinfo) in (0u8..16, 0u8..16),
        flags in any::<(bool, bool, bool, bool)>(),
        (dsm, dspec, ilbrt, lbat, lbatm) in any::<(u8, u16, u32, u16, u16)>(),
        dptr in sgl(),
        op in prop_oneof![Just(IoOpcode::READ), Just(IoOpcode::WRITE), Just(IoOpcode::COMPARE)],
        nr in any::<u8>(),
    ) {
        let (stc, fua, lr, deac) = flags;
        let rw = ReadWrite { opcode: op, cid, nsid, slba, nlb, dtype, stc, prinfo, fua, limited_retry: lr, dsm, dspec, ilbrt, lbat, lbatm, dptr };
        prop_assert_eq!(ReadWrite::try_from(&Sqe::decode(&rw.to_sqe().to_bytes()).unwrap()).unwrap(), rw);
        let wz = WriteZeroes { cid, nsid, slba, nlb, deac, prinfo, fua, limited_retry: lr };
        prop_assert_eq!(WriteZeroes::try_from(&wz.to_sqe()).unwrap(), wz);
        let fl = Flush { cid, nsid };
        prop_assert_eq!(Flush::try_from(&fl.to_sqe()).unwrap(), fl);
        let dsm_cmd = DatasetManagement { cid, nsid, nr, idr: stc, idw: fua, deallocate: deac, dptr };
        prop_assert_eq!(DatasetManagement::try_from(&dsm_cmd.to_sqe()).unwrap(), dsm_cmd);
        prop_assert!(ReadWrite::try_from(&fl.to_sqe()).is_err());
    }

    #[test]
    fn admin_command_views(
        (cid, nsid, a, b, c) in any::<(u16, u32, u8, u16, u16)>(),
        (d, e, numd, lpo) in any::<(u8, bool, u32, u64)>(),
        cdw in any::<[u32; 5]>(),
        dptr in sgl(),
    ) {
        let id = Identify { cid, nsid, cns: Cns(a), cntid: b, cnssid: c, csi: d, uuid_index: d & 0x7f, dptr };
        prop_assert_eq!(Identify::try_from(&id.to_sqe()).unwrap(), id);
        let glp = GetLogPage { cid, nsid, lid: LogPageId(a), lsp: d & 0x7f, rae: e, numd, lsi: b, lpo, uuid_index: a & 0x7f, ot: e, csi: d, dptr };
        prop_assert_eq!(GetLogPage::try_from(&glp.to_sqe()).unwrap(), glp);
        let sf = SetFeatures { cid, nsid, fid: FeatureId(a), save: e, cdw11: cdw[0], cdw12: cdw[1], cdw13: cdw[2], cdw14: cdw[3], cdw15: cdw[4], dptr };
        prop_assert_eq!(SetFeatures::try_from(&sf.to_sqe()).unwrap(), sf);
        let gf = GetFeatures { cid, nsid, fid: FeatureId(a), sel: d & 7, cdw11: cdw[0], uuid_index: d & 0x7f, dptr };
        prop_assert_eq!(GetFeatures::try_from(&gf.to_sqe()).unwrap(), gf);
        let ab = Abort { cid, sqid: b, abort_cid: c };
        prop_assert_eq!(Abort::try_from(&ab.to_sqe()).unwrap(), ab);
        let ka = SimpleAdmin { opcode: if e { AdminOpcode::KEEP_ALIVE } else { AdminOpcode::ASYNC_EVENT_REQUEST }, cid };
        prop_assert_eq!(SimpleAdmin::try_from(&ka.to_sqe()).unwrap(), ka);
    }

    #[test]
    fn fabrics_command_views(
        (cid, recfmt, qid, sqsize, cattr, kato) in any::<(u16, u16, u16, u16, u8, u32)>(),
        (off, value, size) in (any::<u32>(), any::<u64>(), 0u8..8),
        (secp, spsp, len) in any::<(u8, [u8; 2], u32)>(),
        dptr in sgl(),
    ) {
        let c = ConnectCommand { cid, recfmt, qid, sqsize, cattr, kato_ms: kato, dptr };
        prop_assert_eq!(ConnectCommand::try_from(&c.to_sqe()).unwrap(), c);
        let size = match size { 0 => PropertySize::Four, 1 => PropertySize::Eight, v => PropertySize::Reserved(v) };
        let g = PropertyGet { cid, size, offset: Property(off) };
        prop_assert_eq!(PropertyGet::try_from(&g.to_sqe()).unwrap(), g);
        let s = PropertySet { cid, size, offset: Property(off), value };
        prop_assert_eq!(PropertySet::try_from(&s.to_sqe()).unwrap(), s);
        let d = Disconnect { cid, recfmt };
        prop_assert_eq!(Disconnect::try_from(&d.to_sqe()).unwrap(), d);
        let a = AuthSend { cid, secp, spsp, tl: len, dptr };
        prop_assert_eq!(AuthSend::try_from(&a.to_sqe()).unwrap(), a);
        let r = AuthReceive { cid, secp, spsp, al: len, dptr };
        prop_assert_eq!(AuthReceive::try_from(&r.to_sqe()).unwrap(), r);
        prop_assert!(ConnectCommand::try_from(&d.to_sqe()).is_err());
    }

    #[test]
    fn connect_data_round_trips(v in connect_data()) {
        let mut b = BytesMut::new();
        v.encode(&mut b);
        prop_assert_eq!(b.len(), v.encoded_len());
        prop_assert_eq!(ConnectData::decode(&b).unwrap(), v);
    }

    // NVM Command Set 1.0 §4.1.5.1
    // NVM Command Set 1.0 §4.1.5.4
    #[test]
    fn identify_round_trips(c in identify_controller(), n in identify_namespace(), l in ns_list(), d in ns_descriptors(), v in identify_controller_nvm()) {
        let mut b = BytesMut::new();
        c.encode(&mut b);
        prop_assert_eq!(b.len(), c.encoded_len());
        prop_assert_eq!(IdentifyController::decode(&b).unwrap(), c);
        let mut b = BytesMut::new();
        n.encode(&mut b);
        prop_assert_eq!(b.len(), n.encoded_len());
        prop_assert_eq!(IdentifyNamespace::decode(&b).unwrap(), n);
        let mut b = BytesMut::new();
        l.encode(&mut b);
        prop_assert_eq!(b.len(), l.encoded_len());
        prop_assert_eq!(NsIdList::decode(&b).unwrap(), l);
        let mut b = BytesMut::new();
        NsIdDescriptor::encode_list(&d, &mut b);
        prop_assert_eq!(b.len(), 4096);
        prop_assert_eq!(NsIdDescriptor::decode_list(&b).unwrap(), d);
        let mut b = BytesMut::new();
        v.encode(&mut b);
        prop_assert_eq!(b.len(), v.encoded_len());
        prop_assert_eq!(IdentifyControllerNvm::decode(&b).unwrap(), v);
    }

    #[test]
    fn log_pages_round_trip(e in error_info(), s in smart(), f in fw_slot(), x in effects(), a in ana()) {
        let mut b = BytesMut::new();
        e.encode(&mut b);
        prop_assert_eq!(b.len(), e.encoded_len());
        prop_assert_eq!(ErrorInfoEntry::decode(&b).unwrap(), e);
        let mut b = BytesMut::new();
        s.encode(&mut b);
        prop_assert_eq!(b.len(), s.encoded_len());
        prop_assert_eq!(SmartLog::decode(&b).unwrap(), s);
        let mut b = BytesMut::new();
        f.encode(&mut b);
        prop_assert_eq!(b.len(), f.encoded_len());
        prop_assert_eq!(FirmwareSlotInfo::decode(&b).unwrap(), f);
        let mut b = BytesMut::new();
        x.encode(&mut b);
        prop_assert_eq!(b.len(), x.encoded_len());
        prop_assert_eq!(CommandsSupportedEffects::decode(&b).unwrap(), x);
        let mut b = BytesMut::new();
        a.encode(&mut b);
        prop_assert_eq!(b.len(), a.encoded_len());
        prop_assert_eq!(AnaLog::decode(&b).unwrap(), a);
    }

    #[test]
    fn discovery_log_round_trips(p in discovery_page()) {
        let mut b = BytesMut::new();
        p.encode(&mut b);
        prop_assert_eq!(b.len(), p.encoded_len());
        prop_assert_eq!(DiscoveryLogPage::decode(&b).unwrap(), p.clone());
        // A host reading only the header still learns NUMREC.
        let header = DiscoveryLogPage::decode(&b[..1024]).unwrap();
        prop_assert_eq!((header.genctr, header.numrec, header.entries.len()), (p.genctr, p.numrec, 0));
    }

    // NVM Command Set 1.0 §3.2.3
    #[test]
    fn small_values_round_trip(
        millis in 0u64..=Timestamp::MAX_MILLIS, synch in any::<bool>(), origin in 0u8..8,
        long in any::<bool>(), id in any::<[u8; 16]>(), dw in any::<u32>(),
        ranges in proptest::collection::vec(any::<(u32, u32, u64)>(), 0..16),
    ) {
        let ts = Timestamp { millis, synch, origin };
        let mut b = BytesMut::new();
        ts.encode(&mut b);
        prop_assert_eq!(Timestamp::decode(&b).unwrap(), ts);
        let hid = if long { HostIdentifier::Extended(id) } else { HostIdentifier::Short(id[..8].try_into().unwrap()) };
        let mut b = BytesMut::new();
        hid.encode(&mut b);
        prop_assert_eq!(b.len(), hid.encoded_len());
        prop_assert_eq!(HostIdentifier::decode(hid.cdw11(), &b).unwrap(), hid);
        prop_assert_eq!(NumberOfQueues::from_dword(dw).to_dword(), dw);
        let ev = AsyncEvent::from_dw0(dw);
        prop_assert_eq!(AsyncEvent::from_dw0(ev.to_dw0()), ev);
        let ranges: Vec<DsmRange> = ranges.into_iter().map(|(c, n, s)| DsmRange { context_attributes: c, nlb: n, slba: s }).collect();
        let mut b = BytesMut::new();
        for r in &ranges { r.encode(&mut b); }
        prop_assert_eq!(DsmRange::decode_list(&b, ranges.len()).unwrap(), ranges);
    }
}
