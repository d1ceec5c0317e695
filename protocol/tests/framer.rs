//! The framer: streams of random PDUs cut at random points come back exactly; every violation
//! is reported with the FES and FEI the specification names, before the rest of a hostile PDU
//! is buffered; payloads are views of the input, not copies.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use common::strategies::*;
use lamina_protocol::nvme::Sqe;
use lamina_protocol::tcp::{
    C2hData, CapsuleCmd, Digests, Fes, H2cData, IcReq, IcResp, Pda, Pdu, PduType, R2t, TxParams,
};
use lamina_protocol::{DecodeError, Framer, FramerConfig, Role};
use proptest::prelude::*;

fn config(role: Role) -> FramerConfig {
    let mut c = match role {
        Role::Target => FramerConfig::target(),
        Role::Host => FramerConfig::host(),
    };
    c.max_data_len = 64 * 1024;
    c.max_in_capsule_data = 16 * 1024;
    c.max_plen = 80 * 1024;
    c
}

fn established(role: Role, digests: Digests) -> Framer {
    let mut f = Framer::new(config(role));
    let mut ic = BytesMut::new();
    match role {
        Role::Target => IcReq::default().encode(&mut ic),
        Role::Host => IcResp::default().encode(&mut ic),
    }
    f.decode(&mut ic).unwrap().unwrap();
    f.set_digests(digests);
    f
}

fn encode(pdu: &Pdu, tx: TxParams) -> BytesMut {
    let mut b = BytesMut::new();
    pdu.encode(tx, &mut b).unwrap();
    b
}

fn err_of(f: &mut Framer, bytes: &[u8]) -> DecodeError {
    let mut buf = BytesMut::from(bytes);
    let len = buf.len();
    let err = f.decode(&mut buf).expect_err("must be rejected");
    if err.is_fatal() {
        assert_eq!(buf.len(), len, "a fatal error consumes nothing");
    }
    err
}

fn assert_fes(err: &DecodeError, fes: Fes, fei: u32) {
    assert_eq!(err.fes(), Some(fes), "{err:?}");
    assert_eq!(err.fei(), fei, "{err:?}");
    let term = err.term_req().unwrap();
    assert_eq!(
        (term.fes, term.fei),
        (fes, if fes.has_fei() { fei } else { 0 })
    );
    assert!(!term.header.is_empty() && term.header.len() <= 128);
}

fn write_cmd(data: usize) -> Pdu {
    Pdu::CapsuleCmd(CapsuleCmd {
        sqe: Sqe {
            opcode: 1,
            cid: 9,
            ..Sqe::default()
        },
        data: Bytes::from(vec![0xab; data]),
    })
}

const D: TxParams = TxParams {
    digests: Digests::BOTH,
    peer_pda: Pda(0),
};

proptest! {
    // NVMe/TCP 1.0 §2
    #[test]
    fn random_streams_split_anywhere(
        target_side in any::<bool>(),
        digests in digests(),
        pda in pda(),
        h2c in proptest::collection::vec(h2c_pdu(3000), 1..12),
        c2h in proptest::collection::vec(c2h_pdu(3000), 1..12),
        cuts in proptest::collection::vec(1usize..700, 1..64),
    ) {
        let role = if target_side { Role::Target } else { Role::Host };
        let pdus = if target_side { h2c } else { c2h };
        let tx = TxParams { digests, peer_pda: pda };
        let mut wire = BytesMut::new();
        let ic = if target_side {
            Pdu::IcReq(IcReq { digests, ..IcReq::default() })
        } else {
            Pdu::IcResp(IcResp { digests, ..IcResp::default() })
        };
        ic.encode(TxParams::INITIAL, &mut wire).unwrap();
        for p in &pdus {
            p.encode(tx, &mut wire).unwrap();
        }
        let mut cfg = config(role);
        cfg.rx_pda = pda;
        let mut framer = Framer::new(cfg);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut rest = &wire[..];
        let mut cut = cuts.iter().cycle();
        while !rest.is_empty() {
            let n = (*cut.next().unwrap()).min(rest.len());
            buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            while let Some(pdu) = framer.decode(&mut buf).unwrap() {
                if matches!(pdu, Pdu::IcReq(_) | Pdu::IcResp(_)) {
                    framer.set_digests(digests);
                }
                got.push(pdu);
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got.remove(0), ic);
        prop_assert_eq!(got, pdus);
    }
}

#[test]
fn needs_more_bytes_until_the_whole_pdu_is_in() {
    let mut f = established(Role::Target, Digests::BOTH);
    let wire = encode(&write_cmd(4096), D);
    let mut buf = BytesMut::new();
    for (i, b) in wire.iter().enumerate() {
        buf.put_u8(*b);
        let r = f.decode(&mut buf).unwrap();
        assert_eq!(r.is_some(), i + 1 == wire.len());
        if r.is_none() {
            assert_eq!(buf.len(), i + 1);
        }
    }
}

#[test]
fn payload_is_a_view_of_the_input_not_a_copy() {
    let mut f = established(Role::Host, Digests::NONE);
    let pdu = Pdu::C2hData(C2hData {
        cccid: 1,
        datao: 0,
        last_pdu: true,
        success: false,
        data: Bytes::from(vec![7; 8192]),
    });
    let mut buf = encode(&pdu, TxParams::INITIAL);
    let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
    let Some(Pdu::C2hData(got)) = f.decode(&mut buf).unwrap() else {
        panic!()
    };
    assert!(range.contains(&(got.data.as_ptr() as usize)));
    assert_eq!(got.data.len(), 8192);
}

// NVMe/TCP 1.0 §3.3
// NVMe/TCP 1.0 §3.1
#[test]
fn unknown_type_wrong_direction_and_sequence() {
    let mut f = established(Role::Target, Digests::NONE);
    assert!(matches!(
        err_of(&mut f, &[8, 0, 24, 0, 24, 0, 0, 0]),
        DecodeError::UnknownPduType { .. }
    ));
    assert_fes(
        &err_of(&mut f, &[8, 0, 24, 0, 24, 0, 0, 0]),
        Fes::INVALID_HEADER_FIELD,
        0,
    );
    let resp = [5, 0, 24, 0, 24, 0, 0, 0];
    assert!(matches!(
        err_of(&mut f, &resp),
        DecodeError::WrongDirection { .. }
    ));
    // A second ICReq after the exchange.
    let mut ic = BytesMut::new();
    IcReq::default().encode(&mut ic);
    assert_fes(&err_of(&mut f, &ic), Fes::PDU_SEQUENCE_ERROR, 0);
    // A command before the ICReq.
    let mut fresh = Framer::new(config(Role::Target));
    assert_fes(
        &err_of(&mut fresh, &encode(&write_cmd(0), TxParams::INITIAL)),
        Fes::PDU_SEQUENCE_ERROR,
        0,
    );
    // The host side refuses an ICReq as well as an H2C PDU.
    let mut host = Framer::new(config(Role::Host));
    assert!(matches!(
        err_of(&mut host, &ic),
        DecodeError::WrongDirection { .. }
    ));
}

// NVMe/TCP 1.0 §3.3.1.1
// NVMe/TCP 1.0 §3.3.2.1
#[test]
fn flags_are_checked_against_the_type_and_the_negotiated_digests() {
    // LAST_PDU is reserved on a CapsuleCmd.
    let mut f = established(Role::Target, Digests::NONE);
    let mut wire = encode(&write_cmd(16), TxParams::INITIAL);
    wire[1] |= 0x04;
    assert!(matches!(
        err_of(&mut f, &wire),
        DecodeError::ReservedField { offset: 1, .. }
    ));
    // Header digests negotiated but HDGSTF clear.
    let mut f = established(
        Role::Target,
        Digests {
            header: true,
            data: false,
        },
    );
    let wire = encode(&write_cmd(16), TxParams::INITIAL);
    assert_fes(&err_of(&mut f, &wire), Fes::INVALID_HEADER_FIELD, 1);
    // Data digests negotiated, data present, DDGSTF clear.
    let mut f = established(
        Role::Target,
        Digests {
            header: false,
            data: true,
        },
    );
    assert_fes(&err_of(&mut f, &wire), Fes::INVALID_HEADER_FIELD, 1);
    // DDGSTF set although data digests are off.
    let mut f = established(Role::Target, Digests::NONE);
    let mut wire = encode(
        &write_cmd(16),
        TxParams {
            digests: Digests {
                header: false,
                data: true,
            },
            peer_pda: Pda(0),
        },
    );
    assert_fes(&err_of(&mut f, &wire), Fes::INVALID_HEADER_FIELD, 1);
    wire.clear();
    // SUCCESS without LAST_PDU.
    let mut f = established(Role::Host, Digests::NONE);
    let pdu = Pdu::C2hData(C2hData {
        cccid: 1,
        datao: 0,
        last_pdu: true,
        success: true,
        data: Bytes::from_static(b"abcd"),
    });
    let mut wire = encode(&pdu, TxParams::INITIAL);
    wire[1] &= !0x04;
    assert!(matches!(
        err_of(&mut f, &wire),
        DecodeError::InvalidFlags { .. }
    ));
}

// NVMe/TCP 1.0 §3.6.2.1
// NVMe/TCP 1.0 §3.6.2.6
#[test]
fn hlen_pdo_and_plen() {
    let mut f = established(Role::Target, Digests::NONE);
    let mut wire = encode(&write_cmd(16), TxParams::INITIAL);
    wire[2] = 71;
    assert_fes(&err_of(&mut f, &wire), Fes::INVALID_HEADER_FIELD, 2);
    // PDO inside the header.
    let mut wire = encode(&write_cmd(16), TxParams::INITIAL);
    wire[3] = 64;
    assert_fes(&err_of(&mut f, &wire), Fes::INVALID_HEADER_FIELD, 3);
    // PDO not a multiple of our alignment (CPDA 1 = 8 bytes; 76 is not).
    let mut cfg = config(Role::Target);
    cfg.rx_pda = Pda(1);
    let mut f8 = Framer::new(cfg);
    let mut ic = BytesMut::new();
    IcReq::default().encode(&mut ic);
    f8.decode(&mut ic).unwrap();
    f8.set_digests(Digests::BOTH);
    let wire = encode(&write_cmd(16), D);
    assert_eq!(wire[3], 76);
    assert_fes(&err_of(&mut f8, &wire), Fes::INVALID_HEADER_FIELD, 3);
    // ... and accepted once padded to it.
    let mut ok = encode(
        &write_cmd(16),
        TxParams {
            digests: Digests::BOTH,
            peer_pda: Pda(1),
        },
    );
    assert_eq!(ok[3], 80);
    assert!(f8.decode(&mut ok).unwrap().is_some());
    // PDO on a PDU that never carries data.
    let mut host = established(Role::Host, Digests::NONE);
    let mut r2t = encode(
        &Pdu::R2t(R2t {
            cccid: 1,
            ttag: 2,
            r2to: 0,
            r2tl: 8,
        }),
        TxParams::INITIAL,
    );
    r2t[3] = 24;
    assert_fes(&err_of(&mut host, &r2t), Fes::INVALID_HEADER_FIELD, 3);
    // PLEN of a header-only PDU that claims data.
    let mut r2t = encode(
        &Pdu::R2t(R2t {
            cccid: 1,
            ttag: 2,
            r2to: 0,
            r2tl: 8,
        }),
        TxParams::INITIAL,
    );
    r2t[4] = 32;
    assert_fes(&err_of(&mut host, &r2t), Fes::INVALID_HEADER_FIELD, 4);
}

// NVMe/TCP 1.0 §3.3.2.2
// NVMe/TCP 1.0 §3.3.1
#[test]
fn hostile_plen_is_refused_from_the_common_header_alone() {
    let mut f = established(Role::Target, Digests::NONE);
    // H2CData, PDO 24, PLEN 4 GiB - 1: only the 8 header bytes are buffered.
    let ch = [6, 0, 24, 24, 0xff, 0xff, 0xff, 0xff];
    let err = err_of(&mut f, &ch);
    assert!(
        matches!(err, DecodeError::DataLimitExceeded { limit: 65536, .. }),
        "{err:?}"
    );
    assert_fes(&err, Fes::DATA_LIMIT_EXCEEDED, 0);
    // Same without data offset: PLEN disagrees with HLEN.
    assert_fes(
        &err_of(&mut f, &[6, 0, 24, 0, 0xff, 0xff, 0xff, 0xff]),
        Fes::INVALID_HEADER_FIELD,
        4,
    );
    // In-capsule data beyond the limit.
    let wire = encode(&write_cmd(16 * 1024 + 4), TxParams::INITIAL);
    assert_fes(&err_of(&mut f, &wire[..8]), Fes::DATA_LIMIT_EXCEEDED, 0);
}

// NVMe/TCP 1.0 §3.5
// NVMe/TCP 1.0 §3.3.1.1
#[test]
fn header_digest_mismatch_is_fatal_and_found_before_the_data() {
    let mut f = established(Role::Target, Digests::BOTH);
    let mut wire = encode(&write_cmd(4096), D);
    wire[20] ^= 1; // a byte of the SQE
    let err = err_of(&mut f, &wire[..76]);
    assert!(matches!(err, DecodeError::HeaderDigest { .. }));
    assert_fes(&err, Fes::HEADER_DIGEST_ERROR, 0);
    assert_eq!(err.header().len(), 76);
}

// NVMe/TCP 1.0 §3.5
#[test]
fn data_digest_mismatch_is_reported_per_command_and_the_stream_goes_on() {
    let mut f = established(Role::Target, Digests::BOTH);
    let mut wire = encode(&write_cmd(512), D);
    let n = wire.len();
    wire[n - 10] ^= 0xff;
    let next = encode(&write_cmd(8), D);
    wire.extend_from_slice(&next);
    let err = f.decode(&mut wire).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::DataDigest {
                pdu_type: PduType::CAPSULE_CMD,
                command_id: 9,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_fatal());
    assert!(err.fes().is_none() && err.term_req().is_none());
    assert_eq!(wire.len(), next.len(), "the damaged PDU was consumed");
    assert!(matches!(
        f.decode(&mut wire).unwrap(),
        Some(Pdu::CapsuleCmd(_))
    ));
}

// NVMe/TCP 1.0 §3.6.2.8
// NVMe/TCP 1.0 §3.6.2.10
#[test]
fn psh_fields() {
    // DATAL disagrees with PLEN.
    let mut f = established(Role::Target, Digests::NONE);
    let pdu = Pdu::H2cData(H2cData {
        cccid: 1,
        ttag: 2,
        datao: 0,
        last_pdu: true,
        data: Bytes::from_static(b"12345678"),
    });
    let mut wire = encode(&pdu, TxParams::INITIAL);
    wire[16] = 9;
    assert_fes(&err_of(&mut f, &wire), Fes::INVALID_HEADER_FIELD, 16);
    // R2TL of zero.
    let mut host = established(Role::Host, Digests::NONE);
    let mut r2t = encode(
        &Pdu::R2t(R2t {
            cccid: 1,
            ttag: 2,
            r2to: 0,
            r2tl: 8,
        }),
        TxParams::INITIAL,
    );
    r2t[16] = 0;
    assert_fes(&err_of(&mut host, &r2t), Fes::INVALID_HEADER_FIELD, 16);
}

// NVMe/TCP 1.0 §3.1
// NVMe/TCP 1.0 §3.6.2.2
// NVMe/TCP 1.0 §3.6.2.3
#[test]
fn icreq_and_icresp_parameters() {
    let ic = |edit: &dyn Fn(&mut BytesMut)| {
        let mut b = BytesMut::new();
        IcReq::default().encode(&mut b);
        edit(&mut b);
        b
    };
    let mut f = Framer::new(config(Role::Target));
    assert_fes(
        &err_of(&mut f, &ic(&|b| b[8] = 1)),
        Fes::UNSUPPORTED_PARAMETER,
        8,
    );
    assert_fes(
        &err_of(&mut f, &ic(&|b| b[10] = 32)),
        Fes::INVALID_HEADER_FIELD,
        10,
    );
    assert_fes(
        &err_of(&mut f, &ic(&|b| b[11] = 4)),
        Fes::INVALID_HEADER_FIELD,
        11,
    );
    assert_fes(
        &err_of(&mut f, &ic(&|b| b[4] = 129)),
        Fes::INVALID_HEADER_FIELD,
        4,
    );
    let mut host = Framer::new(config(Role::Host));
    let mut resp = BytesMut::new();
    IcResp {
        maxh2cdata: 4095,
        ..IcResp::default()
    }
    .encode(&mut resp);
    assert_fes(&err_of(&mut host, &resp), Fes::INVALID_HEADER_FIELD, 12);
    // The Linux host's additional rules.
    let req = IcReq {
        digests: Digests::BOTH,
        ..IcReq::default()
    };
    assert_eq!(
        IcResp {
            digests: Digests::BOTH,
            ..IcResp::default()
        }
        .linux_host_rejects(&req),
        None
    );
    assert_eq!(IcResp::default().linux_host_rejects(&req), Some(11));
    assert_eq!(
        IcResp {
            cpda: Pda(1),
            digests: Digests::BOTH,
            ..IcResp::default()
        }
        .linux_host_rejects(&req),
        Some(10)
    );
}

// NVMe/TCP 1.0 §3.5
// NVMe/TCP 1.0 §3.6.2.4
#[test]
fn term_req_with_a_bad_length_is_closed_without_an_answer() {
    let mut f = Framer::new(config(Role::Target));
    let err = err_of(&mut f, &[2, 0, 24, 0, 200, 0, 0, 0]);
    assert!(matches!(err, DecodeError::TermReqLength { plen: 200 }));
    assert!(err.is_fatal() && err.fes().is_none() && err.term_req().is_none());
}
