//! Every fixed layout's size and key field offsets, asserted against the numbers in the
//! specifications' figures (written here as literals, not taken from the crate's constants),
//! by encoding distinctive values and finding them at those offsets.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use lamina_protocol::fabrics::discovery::{
    AdrFam, DiscoveryLogEntry, DiscoveryLogPage, EFlags, SecType, SubType, TrType, Treq,
};
use lamina_protocol::fabrics::{ConnectData, connect_data_offsets};
use lamina_protocol::nvme::identify::{
    IdentifyController, IdentifyControllerNvm, IdentifyNamespace, LbaFormat, NsIdList, ctrl_offsets,
};
use lamina_protocol::nvme::log_page::{ErrorInfoEntry, SmartLog};
use lamina_protocol::nvme::{Cqe, Nqn, SglDescriptor, Sqe, Status, StatusCode};
use lamina_protocol::tcp::{
    C2hData, CapsuleCmd, CapsuleResp, Digests, H2cData, IcReq, IcResp, Pda, Pdu, R2t, TermReq,
    TxParams,
};

fn enc(pdu: &Pdu) -> BytesMut {
    let mut b = BytesMut::new();
    pdu.encode(TxParams::INITIAL, &mut b).unwrap();
    b
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

// NVMe/TCP 1.0 §3.6.2.1
#[test]
fn pdu_header_sizes() {
    use lamina_protocol::tcp::*;
    assert_eq!(
        (
            CH_LEN,
            ICREQ_LEN,
            ICRESP_LEN,
            CAPSULE_CMD_HLEN,
            CAPSULE_RESP_HLEN
        ),
        (8, 128, 128, 72, 24)
    );
    assert_eq!(
        (
            DATA_PDU_HLEN,
            R2T_HLEN,
            TERM_REQ_HLEN,
            MAX_TERM_REQ_PLEN,
            DIGEST_LEN
        ),
        (24, 24, 24, 152, 4)
    );
    assert_eq!(enc(&Pdu::IcReq(IcReq::default())).len(), 128);
    assert_eq!(enc(&Pdu::IcResp(IcResp::default())).len(), 128);
    assert_eq!(enc(&Pdu::CapsuleCmd(CapsuleCmd::default())).len(), 72);
    assert_eq!(enc(&Pdu::CapsuleResp(CapsuleResp::default())).len(), 24);
    assert_eq!(enc(&Pdu::H2cData(H2cData::default())).len(), 24);
    assert_eq!(enc(&Pdu::C2hData(C2hData::default())).len(), 24);
    assert_eq!(
        enc(&Pdu::R2t(R2t {
            r2tl: 1,
            ..R2t::default()
        }))
        .len(),
        24
    );
    assert_eq!(enc(&Pdu::C2hTermReq(TermReq::default())).len(), 24);
}

// NVMe/TCP 1.0 §3.6.2.2
// NVMe/TCP 1.0 §3.6.2.3
#[test]
fn ic_field_offsets() {
    let b = enc(&Pdu::IcReq(IcReq {
        pfv: 0,
        hpda: Pda(5),
        digests: Digests::BOTH,
        maxr2t: 0x0102_0304,
    }));
    assert_eq!((b[0], b[2], b[3], le32(&b, 4)), (0x00, 128, 0, 128));
    assert_eq!(
        (le16(&b, 8), b[10], b[11], le32(&b, 12)),
        (0, 5, 3, 0x0102_0304)
    );
    let b = enc(&Pdu::IcResp(IcResp {
        pfv: 0,
        cpda: Pda(2),
        digests: Digests::BOTH,
        maxh2cdata: 0x0002_0000,
    }));
    assert_eq!(
        (b[0], b[10], b[11], le32(&b, 12)),
        (0x01, 2, 3, 0x0002_0000)
    );
    assert!(b[16..].iter().all(|&x| x == 0));
}

// NVMe/TCP 1.0 §3.6.2.8
// NVMe/TCP 1.0 §3.6.2.10
#[test]
fn data_pdu_and_r2t_offsets() {
    let h2c = enc(&Pdu::H2cData(H2cData {
        cccid: 0x1111,
        ttag: 0x2222,
        datao: 0x3333_3333,
        last_pdu: true,
        data: Bytes::from_static(b"xy"),
    }));
    assert_eq!(
        (h2c[0], h2c[1], h2c[2], h2c[3], le32(&h2c, 4)),
        (6, 4, 24, 24, 26)
    );
    assert_eq!(
        (
            le16(&h2c, 8),
            le16(&h2c, 10),
            le32(&h2c, 12),
            le32(&h2c, 16)
        ),
        (0x1111, 0x2222, 0x3333_3333, 2)
    );
    let c2h = enc(&Pdu::C2hData(C2hData {
        cccid: 0x1111,
        datao: 0x44,
        last_pdu: true,
        success: true,
        data: Bytes::from_static(b"xyz"),
    }));
    assert_eq!(
        (
            c2h[0],
            c2h[1],
            le16(&c2h, 8),
            le16(&c2h, 10),
            le32(&c2h, 12),
            le32(&c2h, 16)
        ),
        (7, 0x0c, 0x1111, 0, 0x44, 3)
    );
    let r2t = enc(&Pdu::R2t(R2t {
        cccid: 0x1111,
        ttag: 0x2222,
        r2to: 0x10,
        r2tl: 0x20,
    }));
    assert_eq!(
        (
            r2t[0],
            le16(&r2t, 8),
            le16(&r2t, 10),
            le32(&r2t, 12),
            le32(&r2t, 16)
        ),
        (9, 0x1111, 0x2222, 0x10, 0x20)
    );
    let term = enc(&Pdu::H2cTermReq(TermReq {
        fes: lamina_protocol::tcp::Fes(6),
        fei: 0x0a0b_0c0d,
        header: Bytes::from_static(&[1, 2]),
    }));
    assert_eq!(
        (term[0], le16(&term, 8), le32(&term, 10), &term[24..]),
        (2, 6, 0x0a0b_0c0d, &[1u8, 2][..])
    );
}

// NVMe/TCP 1.0 §3.6.2.6
// NVMe/TCP 1.0 §3.6.2.7
#[test]
fn capsule_offsets_sqe_and_cqe() {
    let sqe = Sqe {
        opcode: 0x02,
        flags: 0x40,
        cid: 0xbeef,
        nsid: 0x0102_0304,
        dptr: SglDescriptor::transport(0x1000),
        cdw: [0xa, 0xb, 0xc, 0xd, 0xe, 0xf],
        ..Sqe::default()
    };
    let raw = sqe.to_bytes();
    assert_eq!(raw.len(), 64);
    assert_eq!(
        (raw[0], raw[1], le16(&raw, 2), le32(&raw, 4)),
        (0x02, 0x40, 0xbeef, 0x0102_0304)
    );
    assert_eq!(
        (le32(&raw, 32), raw[39], le32(&raw, 40), le32(&raw, 60)),
        (0x1000, 0x5a, 0xa, 0xf)
    );
    let cmd = enc(&Pdu::CapsuleCmd(CapsuleCmd {
        sqe,
        data: Bytes::new(),
    }));
    assert_eq!(&cmd[8..72], &raw[..]);
    let cqe = Cqe {
        dw0: 1,
        dw1: 2,
        sqhd: 3,
        sqid: 4,
        cid: 5,
        status: Status::new(StatusCode::INVALID_FIELD),
        phase: true,
    };
    let raw = cqe.to_bytes();
    assert_eq!(raw.len(), 16);
    assert_eq!(
        (
            le32(&raw, 0),
            le32(&raw, 4),
            le16(&raw, 8),
            le16(&raw, 10),
            le16(&raw, 12),
            le16(&raw, 14)
        ),
        (1, 2, 3, 4, 5, (2 << 1) | 1)
    );
    let resp = enc(&Pdu::CapsuleResp(CapsuleResp { cqe }));
    assert_eq!(&resp[8..24], &raw[..]);
}

#[test]
fn connect_data_layout() {
    assert_eq!(
        (
            connect_data_offsets::CNTLID,
            connect_data_offsets::SUBNQN,
            connect_data_offsets::HOSTNQN
        ),
        (16, 256, 512)
    );
    let d = ConnectData {
        hostid: [0xaa; 16],
        cntlid: 0x1234,
        subnqn: Nqn::new("nqn.sub").unwrap(),
        hostnqn: Nqn::new("nqn.host").unwrap(),
    };
    let mut b = BytesMut::new();
    d.encode(&mut b);
    assert_eq!(b.len(), 1024);
    assert_eq!((&b[0..16], le16(&b, 16)), (&[0xaa; 16][..], 0x1234));
    assert_eq!((&b[256..263], b[263]), (&b"nqn.sub"[..], 0));
    assert_eq!(&b[512..520], b"nqn.host");
}

#[test]
fn identify_controller_layout() {
    assert_eq!(
        (
            ctrl_offsets::SUBNQN,
            ctrl_offsets::IOCCSZ,
            ctrl_offsets::KAS,
            ctrl_offsets::OAES
        ),
        (768, 1792, 320, 92)
    );
    let id = IdentifyController {
        serial_number: "SN1".into(),
        model_number: "Lamina".into(),
        firmware_revision: "0.1".into(),
        cmic: 0x0b,
        mdts: 5,
        cntlid: 0x0102,
        ver: 0x0001_0400,
        oaes: 0x8000_0900,
        cntrltype: 1,
        kas: 50,
        sqes: 0x66,
        cqes: 0x44,
        maxcmd: 128,
        nn: 32,
        oncs: 0x0c,
        vwc: 1,
        sgls: 0x0010_0001,
        subnqn: Some(Nqn::new("nqn.2026-11.io.lamina:x").unwrap()),
        ioccsz: 260,
        iorcsz: 1,
        icdoff: 0,
        fcatt: 0,
        msdbd: 1,
        ..IdentifyController::default()
    };
    let mut b = BytesMut::new();
    id.encode(&mut b);
    assert_eq!(b.len(), 4096);
    assert_eq!(&b[4..24], b"SN1                 ");
    assert_eq!(&b[24..30], b"Lamina");
    assert_eq!(&b[64..72], b"0.1     ");
    assert_eq!(
        (
            b[76],
            b[77],
            le16(&b, 78),
            le32(&b, 80),
            le32(&b, 92),
            b[111]
        ),
        (0x0b, 5, 0x0102, 0x0001_0400, 0x8000_0900, 1)
    );
    assert_eq!(
        (le16(&b, 320), b[512], b[513], le16(&b, 514), le32(&b, 516)),
        (50, 0x66, 0x44, 128, 32)
    );
    assert_eq!(
        (le16(&b, 520), b[525], le32(&b, 536)),
        (0x0c, 1, 0x0010_0001)
    );
    assert_eq!(&b[768..791], b"nqn.2026-11.io.lamina:x");
    assert_eq!(
        (
            le32(&b, 1792),
            le32(&b, 1796),
            le16(&b, 1800),
            b[1802],
            b[1803]
        ),
        (260, 1, 0, 0, 1)
    );
}

// NVM Command Set 1.0 §4.1.5.1
// NVM Command Set 1.0 §4.1.5.4
#[test]
fn identify_namespace_and_lists_layout() {
    let mut ns = IdentifyNamespace {
        nsze: 0x1111,
        ncap: 0x2222,
        nuse: 0x3333,
        nlbaf: 1,
        flbas: 1,
        dlfeat: 1,
        nsattr: 1,
        anagrpid: 7,
        ..IdentifyNamespace::default()
    };
    ns.nguid = [0x5a; 16];
    ns.eui64 = [0xe0; 8];
    ns.lbaf[1] = LbaFormat {
        ms: 8,
        lbads: 12,
        rp: 0,
    };
    let mut b = BytesMut::new();
    ns.encode(&mut b);
    assert_eq!(b.len(), 4096);
    assert_eq!(
        (le32(&b, 0), le32(&b, 8), le32(&b, 16), b[25], b[26], b[33]),
        (0x1111, 0x2222, 0x3333, 1, 1, 1)
    );
    assert_eq!(
        (le32(&b, 92), b[99], &b[104..120], &b[120..128]),
        (7, 1, &[0x5a; 16][..], &[0xe0; 8][..])
    );
    assert_eq!((le16(&b, 132), b[134]), (8, 12));
    assert_eq!(ns.current_format().unwrap().block_size(), Some(4096));
    let mut b = BytesMut::new();
    NsIdList { nsids: vec![1, 5] }.encode(&mut b);
    assert_eq!(
        (b.len(), le32(&b, 0), le32(&b, 4), le32(&b, 8)),
        (4096, 1, 5, 0)
    );
    let mut b = BytesMut::new();
    IdentifyControllerNvm {
        vsl: 1,
        wzsl: 2,
        wusl: 3,
        dmrl: 4,
        dmrsl: 0x0506_0708,
        dmsl: 9,
    }
    .encode(&mut b);
    assert_eq!(
        (b.len(), &b[0..4], le32(&b, 4), le32(&b, 8)),
        (4096, &[1u8, 2, 3, 4][..], 0x0506_0708, 9)
    );
}

#[test]
fn log_page_layouts() {
    let mut b = BytesMut::new();
    ErrorInfoEntry {
        error_count: 1,
        sqid: 2,
        cid: 3,
        status_field: 4,
        lba: 5,
        nsid: 6,
        ..ErrorInfoEntry::default()
    }
    .encode(&mut b);
    assert_eq!(
        (
            b.len(),
            le16(&b, 8),
            le16(&b, 10),
            le16(&b, 12),
            le32(&b, 16),
            le32(&b, 24)
        ),
        (64, 2, 3, 4, 5, 6)
    );
    let mut b = BytesMut::new();
    SmartLog {
        data_units_read: 0x0102,
        media_errors: 7,
        warning_temp_time: 9,
        ..SmartLog::default()
    }
    .encode(&mut b);
    assert_eq!(
        (b.len(), le16(&b, 32), le32(&b, 160), le32(&b, 192)),
        (512, 0x0102, 7, 9)
    );
}

#[test]
fn discovery_layout() {
    let e = DiscoveryLogEntry {
        trtype: TrType::TCP,
        adrfam: AdrFam::IPV4,
        subtype: SubType::NVME,
        treq: Treq::NOT_REQUIRED,
        portid: 1,
        cntlid: 0xffff,
        asqsz: 32,
        eflags: EFlags(0),
        trsvcid: "4420".into(),
        subnqn: Nqn::new("nqn.2026-11.io.lamina:default").unwrap(),
        traddr: "127.0.0.1".into(),
        sectype: SecType::NONE,
    };
    let mut b = BytesMut::new();
    DiscoveryLogPage::new(3, vec![e]).encode(&mut b);
    assert_eq!(b.len(), 2048);
    assert_eq!((le32(&b, 0), le32(&b, 8), le16(&b, 16)), (3, 1, 0));
    let e = &b[1024..];
    assert_eq!(
        (e[0], e[1], e[2], e[3], le16(e, 4), le16(e, 6), le16(e, 8)),
        (3, 1, 2, 2, 1, 0xffff, 32)
    );
    assert_eq!(&e[32..38], b"4420  ");
    assert_eq!(&e[256..285], b"nqn.2026-11.io.lamina:default");
    assert_eq!(&e[512..521], b"127.0.0.1");
}
