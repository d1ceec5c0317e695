//! What ends a queue: each broken rule is answered with the C2HTermReq its FES and field
//! call for, reported as a typed [`QueueError`], and nothing is sent after the TermReq.
//! Data digest errors fail one command and the queue goes on.

use bytes::{Bytes, BytesMut};

use super::{Host, capsule, h2c, read, write};
use crate::nvme::{Sqe, Status, StatusCode};
use crate::target::{Cause, Completion, Input, QueueError, Rule};
use crate::tcp::{Digests, Fes, IcReq, Pdu, TermReq};

/// The one TermReq the queue sent.
fn term_req(h: &mut Host) -> TermReq {
    match h.received().as_slice() {
        [Pdu::C2hTermReq(t)] => t.clone(),
        other => panic!("expected one C2HTermReq, got {other:?}"),
    }
}

fn rule_of(e: &QueueError) -> Rule {
    match e {
        QueueError::Violation(v) => v.rule,
        other => panic!("expected a rule violation, got {other:?}"),
    }
}

// NVMe/TCP 1.0 §3.1
#[test]
fn the_first_pdu_must_be_an_icreq() {
    let mut h = Host::new();
    let e = h.send(&read(1, 1)).unwrap_err();
    // The framer itself refuses a capsule before the IC exchange.
    assert_eq!(e.fes(), Some(Fes::PDU_SEQUENCE_ERROR));
    assert_eq!(e.cause(), Cause::Host);
    assert_eq!(term_req(&mut h).fes, Fes::PDU_SEQUENCE_ERROR);
    // A decoded PDU handed in directly hits the queue's own rule.
    let mut h = Host::new();
    let e = h.queue.handle_pdu(read(1, 1)).unwrap_err();
    assert_eq!(rule_of(&e), Rule::IcReqFirst);
}

// NVMe/TCP 1.0 §3.1
#[test]
fn a_second_icreq_is_a_sequence_error() {
    let mut h = Host::new();
    h.handshake(Digests::NONE);
    let e = h.send(&Pdu::IcReq(IcReq::default())).unwrap_err();
    assert_eq!(e.fes(), Some(Fes::PDU_SEQUENCE_ERROR));
    let t = term_req(&mut h);
    assert_eq!((t.fes, t.fei), (Fes::PDU_SEQUENCE_ERROR, 0));
    assert!(!t.header.is_empty(), "the offending header goes back");
}

#[test]
fn a_cid_in_flight_ends_the_queue_naming_the_cid_field() {
    let mut h = Host::io_queue(32, false);
    h.command(&read(5, 1));
    let e = h.send(&read(5, 1)).unwrap_err();
    assert_eq!(rule_of(&e), Rule::CidInFlight);
    let t = term_req(&mut h);
    assert_eq!((t.fes, t.fei), (Fes::INVALID_HEADER_FIELD, 10));
    // Nothing goes out after the TermReq, and the queue stays ended.
    h.queue.complete(Completion::ok(5));
    assert!(h.received().is_empty());
    assert_eq!(h.send(&read(6, 1)).unwrap_err(), e);
}

#[test]
fn more_commands_than_the_sq_holds_end_the_queue() {
    let mut h = Host::io_queue(4, false);
    for cid in 0..4 {
        h.command(&read(cid, 1));
    }
    let e = h.send(&read(4, 1)).unwrap_err();
    assert_eq!(rule_of(&e), Rule::SqOverrun);
    assert_eq!(term_req(&mut h).fes, Fes::PDU_SEQUENCE_ERROR);
}

/// Starts an 8 KiB write by R2T; returns its transfer tag.
fn r2t_write(h: &mut Host, cid: u16) -> u16 {
    h.send(&write(cid, &[0; 8192], false)).unwrap();
    match h.received()[..] {
        [Pdu::R2t(r)] => r.ttag,
        ref other => panic!("no R2T: {other:?}"),
    }
}

// NVMe/TCP 1.0 §3.3.2.2
// NVMe/TCP 1.0 §3.5
#[test]
fn h2c_data_outside_its_window_ends_the_queue() {
    // (what the host sends after the R2T, the rule, FES, FEI)
    type Case = (fn(u16) -> Pdu, Rule, Fes, u32);
    let cases: [Case; 5] = [
        (
            |t| h2c(7, t.wrapping_add(1), 0, &[0; 4096], false),
            Rule::UnknownTransferTag,
            Fes::INVALID_HEADER_FIELD,
            10,
        ),
        (
            |t| h2c(8, t, 0, &[0; 4096], false),
            Rule::TransferCommandMismatch,
            Fes::INVALID_HEADER_FIELD,
            8,
        ),
        (
            |t| h2c(7, t, 4096, &[0; 4096], false),
            Rule::DataOffset,
            Fes::DATA_OUT_OF_RANGE,
            0,
        ),
        (
            |t| h2c(7, t, 0, &[0; 12288], true),
            Rule::DataPastR2t,
            Fes::DATA_OUT_OF_RANGE,
            0,
        ),
        (
            |t| h2c(7, t, 0, &[0; 4096], true),
            Rule::LastPduFlag,
            Fes::PDU_SEQUENCE_ERROR,
            0,
        ),
    ];
    for (pdu, rule, fes, fei) in cases {
        let mut h = Host::io_queue(32, false);
        let ttag = r2t_write(&mut h, 7);
        let e = h.send(&pdu(ttag)).unwrap_err();
        assert_eq!(rule_of(&e), rule);
        let t = term_req(&mut h);
        assert_eq!((t.fes, t.fei), (fes, fei), "{rule:?}");
        assert_eq!(t.header.len(), 24, "the H2CData header goes back");
    }
}

// NVMe/TCP 1.0 §3.3.2.2
#[test]
fn h2c_data_without_a_transfer_ends_the_queue() {
    let mut h = Host::io_queue(32, false);
    let e = h.send(&h2c(1, 0, 0, &[0; 512], true)).unwrap_err();
    assert_eq!(rule_of(&e), Rule::UnknownTransferTag);
}

// NVMe/TCP 1.0 §3.1
#[test]
fn pdus_a_host_never_sends_are_sequence_errors() {
    let mut h = Host::io_queue(32, false);
    let e = h
        .queue
        .handle_pdu(Pdu::IcReq(IcReq::default()))
        .unwrap_err();
    assert_eq!(rule_of(&e), Rule::UnexpectedPdu);
    assert_eq!(term_req(&mut h).fes, Fes::PDU_SEQUENCE_ERROR);
}

// NVMe/TCP 1.0 §3.5
#[test]
fn an_h2c_term_req_ends_the_queue_without_an_answer() {
    let mut h = Host::io_queue(32, false);
    let term = TermReq {
        fes: Fes::HEADER_DIGEST_ERROR,
        fei: 0,
        header: Bytes::new(),
    };
    let e = h.send(&Pdu::H2cTermReq(term)).unwrap_err();
    assert_eq!(e, QueueError::HostTerminated(Fes::HEADER_DIGEST_ERROR));
    assert!(h.received().is_empty());
}

/// Encodes `pdu` with digests on and flips a bit of its data digest.
fn with_bad_data_digest(h: &mut Host, pdu: &Pdu) {
    let mut bytes = BytesMut::new();
    pdu.encode(h.tx, &mut bytes).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    h.wire.extend_from_slice(&bytes);
}

// NVMe/TCP 1.0 §3.5
#[test]
fn a_bad_data_digest_fails_the_command_and_the_queue_goes_on() {
    let mut h = Host::new();
    h.handshake(Digests::BOTH);
    h.connect(1, 32, false);
    with_bad_data_digest(&mut h, &write(3, &[1; 1024], true));
    assert_eq!(
        h.queue.handle_input(&mut h.wire),
        Ok(Input::Handled { capsule: true })
    );
    let cqe = h.cqe();
    assert_eq!(cqe.cid, 3);
    assert_eq!(
        cqe.status,
        Status::new(StatusCode::TRANSIENT_TRANSPORT_ERROR)
    );
    // The same for H2CData of a transfer in progress.
    let ttag = r2t_write(&mut h, 4);
    with_bad_data_digest(&mut h, &h2c(4, ttag, 0, &[0; 8192], true));
    h.queue.handle_input(&mut h.wire).unwrap();
    assert_eq!(
        h.cqe().status,
        Status::new(StatusCode::TRANSIENT_TRANSPORT_ERROR)
    );
    // Both CIDs are free again, and the queue runs on.
    h.command(&write(3, &[1; 1024], true));
    assert_eq!(h.queue.in_flight(), 1);
}

// NVMe/TCP 1.0 §3.5
#[test]
fn a_bad_data_digest_on_a_duplicate_cid_still_ends_the_queue() {
    let mut h = Host::new();
    h.handshake(Digests::BOTH);
    h.connect(1, 32, false);
    h.command(&read(3, 1));
    with_bad_data_digest(&mut h, &write(3, &[1; 1024], true));
    let e = h.queue.handle_input(&mut h.wire).unwrap_err();
    assert_eq!(rule_of(&e), Rule::CidInFlight);
    // And H2CData with a bad digest for no transfer is a sequence error.
    let mut h = Host::new();
    h.handshake(Digests::BOTH);
    h.connect(1, 32, false);
    with_bad_data_digest(&mut h, &h2c(4, 0, 0, &[0; 512], true));
    let e = h.queue.handle_input(&mut h.wire).unwrap_err();
    assert_eq!(rule_of(&e), Rule::DigestWithoutTransfer);
}

// NVMe/TCP 1.0 §3.5
#[test]
fn a_bad_header_digest_ends_the_queue() {
    let mut h = Host::new();
    h.handshake(Digests::BOTH);
    let mut bytes = BytesMut::new();
    read(1, 1).encode(h.tx, &mut bytes).unwrap();
    // The header digest follows the 72-byte capsule header.
    bytes[72] ^= 1;
    h.wire.extend_from_slice(&bytes);
    let e = h.queue.handle_input(&mut h.wire).unwrap_err();
    assert_eq!(e.fes(), Some(Fes::HEADER_DIGEST_ERROR));
    assert_eq!(term_req(&mut h).fes, Fes::HEADER_DIGEST_ERROR);
}

#[test]
fn a_fabrics_command_with_an_in_capsule_read_is_refused() {
    let mut h = Host::io_queue(32, false);
    // A Read whose SGL points into the capsule: the wrong direction for in-capsule data.
    let mut sqe = Sqe {
        opcode: 0x02,
        cid: 2,
        nsid: 1,
        ..Sqe::default()
    };
    sqe.dptr = crate::nvme::SglDescriptor::in_capsule(0, 512);
    let pdu = capsule(sqe, Bytes::from(vec![0; 512]));
    assert_eq!(h.send(&pdu), Ok(Input::Handled { capsule: true }));
    assert_eq!(h.cqe().status, Status::dnr(StatusCode::INVALID_FIELD));
}
