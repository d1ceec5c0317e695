//! Golden byte vectors written by hand from the NVMe/TCP 1.0 and NVMe-oF 1.1 field tables, each
//! with and without digests: the encoder must produce exactly these bytes and the framer must
//! decode them back to the same PDU.
//!
//! Every expected CRC32C below was computed independently of the `crc32c` crate, by the bitwise
//! textbook implementation in `tests/vectors/crc32c.py` (run it to reproduce the values).

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use lamina_protocol::fabrics::{ConnectCommand, ConnectData, ConnectInvalidParameter};
use lamina_protocol::nvme::{
    Cqe, IoOpcode, Nqn, ReadWrite, SglDescriptor, Sqe, Status, StatusCode,
};
use lamina_protocol::tcp::{
    C2hData, CapsuleCmd, CapsuleResp, Digests, Fes, H2cData, IcReq, IcResp, Pda, Pdu, R2t, TermReq,
    TxParams,
};
use lamina_protocol::{Framer, FramerConfig, Role};

/// A zeroed buffer with `pieces` written at their offsets: a field table, transcribed.
fn at(size: usize, pieces: &[(usize, &[u8])]) -> Vec<u8> {
    let mut out = vec![0u8; size];
    for (offset, value) in pieces {
        out[*offset..*offset + value.len()].copy_from_slice(value);
    }
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

const NO_DIGESTS: TxParams = TxParams::INITIAL;
const DIGESTS: TxParams = TxParams {
    digests: Digests::BOTH,
    peer_pda: Pda(0),
};
const SUBNQN: &str = "nqn.2026-11.io.lamina:default";
const HOSTNQN: &str = "nqn.2014-08.org.nvmexpress:uuid:6f2b1f7e-3c1a-4d5e-9a8b-0c1d2e3f4a5b";

fn block() -> Vec<u8> {
    (0..=255u8).cycle().take(512).collect()
}

/// Encodes `pdu`, compares with `wire`, then frames `wire` in the given role with the given
/// digests and compares with `pdu`.
fn check(pdu: &Pdu, tx: TxParams, role: Role, wire: &[u8]) {
    let mut out = BytesMut::new();
    pdu.encode(tx, &mut out).unwrap();
    assert_eq!(out.len(), pdu.encoded_len(tx).unwrap());
    assert_eq!(hex(&out), hex(wire), "encoding of {:?}", pdu.pdu_type());

    let mut config = match role {
        Role::Target => FramerConfig::target(),
        Role::Host => FramerConfig::host(),
    };
    config.digests = tx.digests;
    let mut framer = Framer::new(config);
    if !matches!(
        pdu,
        Pdu::IcReq(_) | Pdu::IcResp(_) | Pdu::H2cTermReq(_) | Pdu::C2hTermReq(_)
    ) {
        establish(&mut framer, role);
        framer.set_digests(tx.digests);
    }
    let mut buf = BytesMut::from(wire);
    let decoded = framer.decode(&mut buf).unwrap().expect("a whole PDU");
    assert_eq!(&decoded, pdu);
    assert!(buf.is_empty());
}

/// Feeds the IC PDU of the role so that the framer accepts the PDUs that follow it.
fn establish(framer: &mut Framer, role: Role) {
    let mut ic = BytesMut::new();
    match role {
        Role::Target => IcReq::default().encode(&mut ic),
        Role::Host => IcResp::default().encode(&mut ic),
    }
    framer.decode(&mut ic).unwrap().unwrap();
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------------
// ICReq / ICResp: never digests themselves; "with digests" means DGST asks for both.

// NVMe/TCP 1.0 §3.6.2.2
#[test]
fn icreq() {
    for dgst in [0u8, 3] {
        let mut wire = vec![0u8; 128];
        wire[..16].copy_from_slice(&[
            0x00, 0x00, 0x80, 0x00, // ICReq, FLAGS 0, HLEN 128, PDO 0
            0x80, 0x00, 0x00, 0x00, // PLEN 128
            0x00, 0x00, // PFV 0
            0x00, // HPDA 0
            dgst, // DGST
            0x00, 0x00, 0x00, 0x00, // MAXR2T 0 (one outstanding R2T)
        ]);
        let pdu = Pdu::IcReq(IcReq {
            pfv: 0,
            hpda: Pda(0),
            digests: Digests::from_byte(dgst),
            maxr2t: 0,
        });
        check(&pdu, NO_DIGESTS, Role::Target, &wire);
    }
}

// NVMe/TCP 1.0 §3.6.2.3
#[test]
fn icresp() {
    for dgst in [0u8, 3] {
        let mut wire = vec![0u8; 128];
        wire[..16].copy_from_slice(&[
            0x01, 0x00, 0x80, 0x00, // ICResp, FLAGS 0, HLEN 128, PDO 0
            0x80, 0x00, 0x00, 0x00, // PLEN 128
            0x00, 0x00, // PFV 0
            0x00, // CPDA 0
            dgst, // DGST
            0x00, 0x00, 0x02, 0x00, // MAXH2CDATA 128 KiB
        ]);
        let pdu = Pdu::IcResp(IcResp {
            pfv: 0,
            cpda: Pda(0),
            digests: Digests::from_byte(dgst),
            maxh2cdata: 128 * 1024,
        });
        check(&pdu, NO_DIGESTS, Role::Host, &wire);
    }
}

// ---------------------------------------------------------------------------------------------
// Admin Connect capsule with its 1024-byte in-capsule data.

fn connect_sqe_bytes() -> Vec<u8> {
    at(
        64,
        &[
            (0, &[0x7f, 0x40]),              // OPC Fabrics, PSDT 01b (SGL)
            (2, &[0x07, 0x00]),              // CID 7
            (4, &[0x01]),                    // FCTYPE Connect
            (32, &[0x00, 0x04, 0x00, 0x00]), // SGL1 length 1024
            (39, &[0x01]),                   // SGL1 identifier: Data Block, Offset
            (44, &[0x1f, 0x00]),             // SQSIZE 31 (32 entries)
            (48, &[0xc0, 0xd4, 0x01, 0x00]), // KATO 120000 ms
        ],
    )
}

fn connect_data_bytes() -> Vec<u8> {
    let hostid: Vec<u8> = (0x10..0x20).collect();
    at(
        1024,
        &[
            (0, &hostid),
            (16, &[0xff, 0xff]),
            (256, SUBNQN.as_bytes()),
            (512, HOSTNQN.as_bytes()),
        ],
    )
}

fn connect_pdu() -> Pdu {
    let cmd = ConnectCommand {
        cid: 7,
        recfmt: 0,
        qid: 0,
        sqsize: 31,
        cattr: 0,
        kato_ms: 120_000,
        dptr: SglDescriptor::in_capsule(0, 1024),
    };
    let data = ConnectData {
        hostid: core::array::from_fn(|i| 0x10 + u8::try_from(i).unwrap()),
        cntlid: 0xffff,
        subnqn: Nqn::new(SUBNQN).unwrap(),
        hostnqn: Nqn::new(HOSTNQN).unwrap(),
    };
    let mut bytes = BytesMut::new();
    data.encode(&mut bytes);
    Pdu::CapsuleCmd(CapsuleCmd {
        sqe: cmd.to_sqe(),
        data: bytes.freeze(),
    })
}

// NVMe/TCP 1.0 §3.6.2.6
#[test]
fn connect_capsule() {
    let sqe = connect_sqe_bytes();
    let data = connect_data_bytes();
    // CapsuleCmd, FLAGS 0, HLEN 72, PDO 72, PLEN 72 + 1024 = 0x448.
    let plain = cat(&[
        &[0x04, 0x00, 0x48, 0x48, 0x48, 0x04, 0x00, 0x00],
        &sqe,
        &data,
    ]);
    check(&connect_pdu(), NO_DIGESTS, Role::Target, &plain);
    // HDGSTF|DDGSTF, PDO 76, PLEN 76 + 1024 + 4 = 0x450; HDGST 0xd214bac3, DDGST 0x041fe7b8.
    let digests = cat(&[
        &[0x04, 0x03, 0x48, 0x4c, 0x50, 0x04, 0x00, 0x00],
        &sqe,
        &[0xc3, 0xba, 0x14, 0xd2],
        &data,
        &[0xb8, 0xe7, 0x1f, 0x04],
    ]);
    check(&connect_pdu(), DIGESTS, Role::Target, &digests);
}

#[test]
fn connect_views_decode_the_golden_bytes() {
    let sqe = Sqe::decode(&connect_sqe_bytes()).unwrap();
    let cmd = ConnectCommand::try_from(&sqe).unwrap();
    assert_eq!(
        (cmd.cid, cmd.qid, cmd.sqsize, cmd.kato_ms),
        (7, 0, 31, 120_000)
    );
    assert!(cmd.dptr.is_in_capsule());
    let data = ConnectData::decode(&connect_data_bytes()).unwrap();
    assert_eq!(data.subnqn.as_str(), SUBNQN);
    assert_eq!(data.hostnqn.as_str(), HOSTNQN);
    assert_eq!(data.cntlid, ConnectData::DYNAMIC_CNTLID);
    // A corrupt SUBNQN gives the IPO/IATTR of the Connect Invalid Parameters response.
    let mut bad = connect_data_bytes();
    bad[256] = b'x';
    let err = ConnectData::decode(&bad).unwrap_err();
    assert_eq!(
        ConnectInvalidParameter::from_data_error(&err),
        Some(ConnectInvalidParameter::data(256))
    );
}

// ---------------------------------------------------------------------------------------------
// Read capsule (data by C2HData) and Write capsule (512 bytes in-capsule).

fn read_sqe_bytes() -> Vec<u8> {
    at(
        64,
        &[
            (0, &[0x02, 0x40]),                                      // OPC Read, PSDT SGL
            (2, &[0x21, 0x00]),                                      // CID 0x21
            (4, &[0x01, 0x00, 0x00, 0x00]),                          // NSID 1
            (32, &[0x00, 0x10, 0x00, 0x00]),                         // SGL1 length 4096
            (39, &[0x5a]),                                           // Transport SGL Data Block
            (40, &[0x10, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00]), // SLBA 0x1_0000_0010
            (48, &[0x07, 0x00, 0x00, 0x40]),                         // NLB 7 (8 blocks), FUA
        ],
    )
}

fn read_pdu() -> Pdu {
    let rw = ReadWrite {
        opcode: IoOpcode::READ,
        cid: 0x21,
        nsid: 1,
        slba: 0x1_0000_0010,
        nlb: 7,
        fua: true,
        dptr: SglDescriptor::transport(4096),
        ..ReadWrite::default()
    };
    Pdu::CapsuleCmd(CapsuleCmd {
        sqe: rw.to_sqe(),
        data: Bytes::new(),
    })
}

// NVMe/TCP 1.0 §3.6.2.6
// NVMe/TCP 1.0 §3.3.2
// NVM Command Set 1.0 §3.2.4
#[test]
fn read_capsule() {
    let sqe = read_sqe_bytes();
    let plain = cat(&[&[0x04, 0x00, 0x48, 0x00, 0x48, 0x00, 0x00, 0x00], &sqe]);
    check(&read_pdu(), NO_DIGESTS, Role::Target, &plain);
    // No data, so no DDGSTF even with data digests on. HDGST 0xaed980fc.
    let digests = cat(&[
        &[0x04, 0x01, 0x48, 0x00, 0x4c, 0x00, 0x00, 0x00],
        &sqe,
        &[0xfc, 0x80, 0xd9, 0xae],
    ]);
    check(&read_pdu(), DIGESTS, Role::Target, &digests);
    let Pdu::CapsuleCmd(cmd) = read_pdu() else {
        unreachable!()
    };
    let rw = ReadWrite::try_from(&cmd.sqe).unwrap();
    assert_eq!(
        (rw.slba, rw.block_count(), rw.fua),
        (0x1_0000_0010, 8, true)
    );
}

fn write_pdu() -> Pdu {
    let rw = ReadWrite {
        opcode: IoOpcode::WRITE,
        cid: 0x22,
        nsid: 1,
        slba: 0x20,
        nlb: 0,
        dptr: SglDescriptor::in_capsule(0, 512),
        ..ReadWrite::default()
    };
    Pdu::CapsuleCmd(CapsuleCmd {
        sqe: rw.to_sqe(),
        data: Bytes::from(block()),
    })
}

// NVMe/TCP 1.0 §3.6.2.6
// NVMe/TCP 1.0 §3.3.2
#[test]
fn write_capsule_with_in_capsule_data() {
    let sqe = at(
        64,
        &[
            (0, &[0x01, 0x40]),              // OPC Write
            (2, &[0x22, 0x00]),              // CID 0x22
            (4, &[0x01, 0x00, 0x00, 0x00]),  // NSID 1
            (32, &[0x00, 0x02, 0x00, 0x00]), // SGL1 length 512
            (39, &[0x01]),                   // Data Block, Offset
            (40, &[0x20]),                   // SLBA 0x20, NLB 0 (one block)
        ],
    );
    // PDO 72, PLEN 72 + 512 = 0x248.
    let plain = cat(&[
        &[0x04, 0x00, 0x48, 0x48, 0x48, 0x02, 0x00, 0x00],
        &sqe,
        &block(),
    ]);
    check(&write_pdu(), NO_DIGESTS, Role::Target, &plain);
    // PDO 76, PLEN 76 + 512 + 4 = 0x250; HDGST 0xcf49dd05, DDGST 0xae10ee5a.
    let digests = cat(&[
        &[0x04, 0x03, 0x48, 0x4c, 0x50, 0x02, 0x00, 0x00],
        &sqe,
        &[0x05, 0xdd, 0x49, 0xcf],
        &block(),
        &[0x5a, 0xee, 0x10, 0xae],
    ]);
    check(&write_pdu(), DIGESTS, Role::Target, &digests);
}

// ---------------------------------------------------------------------------------------------
// R2T, H2CData, C2HData (LAST_PDU | SUCCESS), CapsuleResp, C2HTermReq.

// NVMe/TCP 1.0 §3.6.2.10
#[test]
fn r2t() {
    let pdu = Pdu::R2t(R2t {
        cccid: 0x22,
        ttag: 0x0105,
        r2to: 0,
        r2tl: 512,
    });
    let psh = [
        0x22, 0x00, 0x05, 0x01, 0, 0, 0, 0, 0x00, 0x02, 0x00, 0x00, 0, 0, 0, 0,
    ];
    let plain = cat(&[&[0x09, 0x00, 0x18, 0x00, 0x18, 0x00, 0x00, 0x00], &psh]);
    check(&pdu, NO_DIGESTS, Role::Host, &plain);
    // HDGST 0x875d672d.
    let digests = cat(&[
        &[0x09, 0x01, 0x18, 0x00, 0x1c, 0x00, 0x00, 0x00],
        &psh,
        &[0x2d, 0x67, 0x5d, 0x87],
    ]);
    check(&pdu, DIGESTS, Role::Host, &digests);
}

// NVMe/TCP 1.0 §3.6.2.8
#[test]
fn h2c_data() {
    let pdu = Pdu::H2cData(H2cData {
        cccid: 0x22,
        ttag: 0x0105,
        datao: 0,
        last_pdu: true,
        data: Bytes::from(block()),
    });
    let psh = [
        0x22, 0x00, 0x05, 0x01, 0, 0, 0, 0, 0x00, 0x02, 0x00, 0x00, 0, 0, 0, 0,
    ];
    // LAST_PDU, PDO 24, PLEN 24 + 512 = 0x218.
    let plain = cat(&[
        &[0x06, 0x04, 0x18, 0x18, 0x18, 0x02, 0x00, 0x00],
        &psh,
        &block(),
    ]);
    check(&pdu, NO_DIGESTS, Role::Target, &plain);
    // HDGSTF|DDGSTF|LAST_PDU, PDO 28, PLEN 28 + 512 + 4 = 0x220; HDGST 0x4006432b.
    let digests = cat(&[
        &[0x06, 0x07, 0x18, 0x1c, 0x20, 0x02, 0x00, 0x00],
        &psh,
        &[0x2b, 0x43, 0x06, 0x40],
        &block(),
        &[0x5a, 0xee, 0x10, 0xae],
    ]);
    check(&pdu, DIGESTS, Role::Target, &digests);
}

// NVMe/TCP 1.0 §3.6.2.9
#[test]
fn c2h_data_last_pdu_success() {
    let pdu = Pdu::C2hData(C2hData {
        cccid: 0x21,
        datao: 0x200,
        last_pdu: true,
        success: true,
        data: Bytes::from(block()),
    });
    let psh = [
        0x21, 0x00, 0, 0, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0, 0, 0, 0,
    ];
    // LAST_PDU|SUCCESS = 0x0c.
    let plain = cat(&[
        &[0x07, 0x0c, 0x18, 0x18, 0x18, 0x02, 0x00, 0x00],
        &psh,
        &block(),
    ]);
    check(&pdu, NO_DIGESTS, Role::Host, &plain);
    // 0x0f, HDGST 0x53312c3c.
    let digests = cat(&[
        &[0x07, 0x0f, 0x18, 0x1c, 0x20, 0x02, 0x00, 0x00],
        &psh,
        &[0x3c, 0x2c, 0x31, 0x53],
        &block(),
        &[0x5a, 0xee, 0x10, 0xae],
    ]);
    check(&pdu, DIGESTS, Role::Host, &digests);
}

// NVMe/TCP 1.0 §3.6.2.7
#[test]
fn capsule_resp() {
    let cqe = Cqe {
        dw0: 0x0001_0100,
        dw1: 0,
        sqhd: 5,
        sqid: 1,
        cid: 0x21,
        status: Status::dnr(StatusCode::LBA_OUT_OF_RANGE),
        phase: false,
    };
    let pdu = Pdu::CapsuleResp(CapsuleResp { cqe });
    // DW0, DW1, SQHD 5, SQID 1, CID 0x21, status: DNR | SC 80h << 1 = 0x8100.
    let psh = [
        0x00, 0x01, 0x01, 0x00, 0, 0, 0, 0, 0x05, 0x00, 0x01, 0x00, 0x21, 0x00, 0x00, 0x81,
    ];
    let plain = cat(&[&[0x05, 0x00, 0x18, 0x00, 0x18, 0x00, 0x00, 0x00], &psh]);
    check(&pdu, NO_DIGESTS, Role::Host, &plain);
    // HDGST 0x476628c7.
    let digests = cat(&[
        &[0x05, 0x01, 0x18, 0x00, 0x1c, 0x00, 0x00, 0x00],
        &psh,
        &[0xc7, 0x28, 0x66, 0x47],
    ]);
    check(&pdu, DIGESTS, Role::Host, &digests);
}

// NVMe/TCP 1.0 §3.6.2.5
#[test]
fn c2h_term_req() {
    // Reports an Invalid PDU Header Field at HLEN (FEI 2) of a CapsuleCmd whose CH was
    // 04 00 47 00 ...: the offending 8 header bytes travel as data.
    let offending = [0x04, 0x00, 0x47, 0x00, 0x47, 0x00, 0x00, 0x00];
    let pdu = Pdu::C2hTermReq(TermReq {
        fes: Fes::INVALID_HEADER_FIELD,
        fei: 2,
        header: Bytes::copy_from_slice(&offending),
    });
    let wire = cat(&[
        &[0x03, 0x00, 0x18, 0x00, 0x20, 0x00, 0x00, 0x00], // C2HTermReq, HLEN 24, PLEN 32
        &[0x01, 0x00],                                     // FES Invalid PDU Header Field
        &[0x02, 0x00, 0x00, 0x00],                         // FEI 2
        &[0; 10],                                          // reserved
        &offending,
    ]);
    // TermReq never carries digests: the same bytes whether or not they were negotiated.
    check(&pdu, NO_DIGESTS, Role::Host, &wire);
    check(&pdu, DIGESTS, Role::Host, &wire);
}

// ---------------------------------------------------------------------------------------------
// Seed corpus for protocol/fuzz, built from the golden vectors above.

fn encode_all(pdus: &[Pdu], tx: TxParams) -> Vec<u8> {
    let mut out = BytesMut::new();
    for pdu in pdus {
        pdu.encode(tx, &mut out).unwrap();
    }
    out.to_vec()
}

/// Control byte of the framer harness (tests/common/harness.rs): bit 0 HDGST, bit 1 DDGST,
/// bit 4 start after the IC exchange, bits 7:5 chunk size.
fn framer_seed(control: u8, stream: &[u8]) -> Vec<u8> {
    cat(&[&[control], stream])
}

#[test]
#[ignore = "writes protocol/fuzz/seeds; run with --ignored after changing the vectors"]
fn write_fuzz_seeds() {
    use lamina_protocol::nvme::identify::{IdentifyController, NsIdList};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    let h2c = H2cData {
        cccid: 0x22,
        ttag: 0x0105,
        datao: 0,
        last_pdu: true,
        data: Bytes::from(block()),
    };
    let host_pdus = [connect_pdu(), write_pdu(), read_pdu(), Pdu::H2cData(h2c)];
    let mut ic = BytesMut::new();
    IcReq::default().encode(&mut ic);
    write(
        "framer_target",
        "plain",
        &framer_seed(0x00, &cat(&[&ic, &encode_all(&host_pdus, NO_DIGESTS)])),
    );
    write(
        "framer_target",
        "digests",
        &framer_seed(0x13, &encode_all(&host_pdus, DIGESTS)),
    );
    write(
        "framer_target",
        "chunked",
        &framer_seed(0x33, &encode_all(&host_pdus, DIGESTS)),
    );

    let c2h = C2hData {
        cccid: 0x21,
        datao: 0,
        last_pdu: true,
        success: true,
        data: Bytes::from(block()),
    };
    let ctrl_pdus = [
        Pdu::R2t(R2t {
            cccid: 0x22,
            ttag: 0x0105,
            r2to: 0,
            r2tl: 512,
        }),
        Pdu::C2hData(c2h),
        Pdu::CapsuleResp(CapsuleResp {
            cqe: Cqe::new(0x21, Status::SUCCESS),
        }),
        Pdu::C2hTermReq(TermReq {
            fes: Fes::INVALID_HEADER_FIELD,
            fei: 2,
            header: Bytes::from_static(&[4, 0, 0x47, 0]),
        }),
    ];
    let mut ic = BytesMut::new();
    IcResp::default().encode(&mut ic);
    write(
        "framer_host",
        "plain",
        &framer_seed(0x00, &cat(&[&ic, &encode_all(&ctrl_pdus, NO_DIGESTS)])),
    );
    write(
        "framer_host",
        "digests",
        &framer_seed(0x13, &encode_all(&ctrl_pdus, DIGESTS)),
    );

    write("sqe", "connect", &connect_sqe_bytes());
    write("sqe", "read", &read_sqe_bytes());
    let Pdu::CapsuleCmd(w) = write_pdu() else {
        unreachable!()
    };
    write("sqe", "write", &w.sqe.to_bytes());
    write("connect_data", "connect", &connect_data_bytes());

    let mut id = BytesMut::from(&[0u8][..]);
    IdentifyController {
        cntlid: 1,
        kas: 50,
        subnqn: Some(Nqn::new(SUBNQN).unwrap()),
        ioccsz: 260,
        iorcsz: 1,
        ..Default::default()
    }
    .encode(&mut id);
    write("structures", "identify_controller", &id);
    let mut list = BytesMut::from(&[2u8][..]);
    NsIdList {
        nsids: vec![1, 2, 7],
    }
    .encode(&mut list);
    write("structures", "ns_list", &list);
}
