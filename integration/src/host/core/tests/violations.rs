//! What the host does when the target breaks the protocol: every violation ends the queue,
//! fails the commands in flight and, when it has a Fatal Error Status, queues an H2CTermReq
//! carrying the offending header.

use bytes::Bytes;
use lamina_protocol::Pdu;
use lamina_protocol::nvme::Status;
use lamina_protocol::tcp::{Digests, Fes, TermReq};

use super::*;

#[test]
fn success_flag_is_a_violation_when_flow_control_is_on() {
    let mut p = params(Digests::NONE);
    p.sq_flow_control_disabled = false;
    let mut rig = Rig::with(p);
    let id = rig.submit(read_cmd(1));
    rig.sent();
    let err = rig
        .deliver_pdus(&[c2h(id.1, 0, pattern(4096, 1), true, true)])
        .unwrap_err();
    assert!(matches!(
        err,
        HostError::Protocol(Violation::SuccessWithFlowControl { .. })
    ));
    assert!(matches!(rig.done(id), Err(HostError::Protocol(_))));
    let term = rig.sent();
    assert!(
        matches!(&term[..], [Pdu::H2cTermReq(t)] if (t.fes, t.fei) == (Fes::INVALID_HEADER_FIELD, 1))
    );
}

#[test]
fn r2t_for_in_capsule_data_is_a_violation() {
    let mut rig = Rig::new(Digests::BOTH);
    let id = rig.submit(write_cmd(pattern(4096, 9)));
    let err = rig.deliver_pdus(&[r2t(id.1, 1, 0, 4096)]).unwrap_err();
    assert!(matches!(
        err,
        HostError::Protocol(Violation::WrongTransfer { .. })
    ));
}

#[test]
fn r2t_offset_and_length_are_checked() {
    let mut rig = Rig::new(Digests::NONE);
    let data = pattern(4096, 2);
    let sqe = write_cmd(data.clone()).sqe;
    let id = rig.submit(Command::with_transfer(
        sqe,
        Transfer::ToControllerByR2t(data),
    ));
    rig.sent();
    let err = rig.deliver_pdus(&[r2t(id.1, 1, 512, 512)]).unwrap_err();
    assert!(matches!(
        err,
        HostError::Protocol(Violation::DataOffset {
            expected: 0,
            got: 512,
            ..
        })
    ));
    // The H2CTermReq reports the R2TO field.
    let term = rig.sent();
    assert!(
        matches!(&term[..], [Pdu::H2cTermReq(TermReq { fes, fei: 12, .. })] if *fes == Fes::INVALID_HEADER_FIELD)
    );

    let mut rig = Rig::new(Digests::NONE);
    let data = pattern(4096, 2);
    let sqe = write_cmd(data.clone()).sqe;
    let id = rig.submit(Command::with_transfer(
        sqe,
        Transfer::ToControllerByR2t(data),
    ));
    let err = rig.deliver_pdus(&[r2t(id.1, 1, 0, 8192)]).unwrap_err();
    assert!(matches!(
        err,
        HostError::Protocol(Violation::DataOutOfRange { .. })
    ));
}

#[test]
fn write_completed_before_its_data_was_fetched_is_a_violation() {
    let mut rig = Rig::new(Digests::NONE);
    let id = rig.submit(write_cmd(pattern(8192, 2)));
    let err = rig
        .deliver_pdus(&[resp(id.1, Status::SUCCESS)])
        .unwrap_err();
    assert!(matches!(
        err,
        HostError::Protocol(Violation::IncompleteWrite {
            sent: 0,
            expected: 8192,
            ..
        })
    ));
}

#[test]
fn data_gap_fails_the_queue_with_a_term_req() {
    let mut rig = Rig::new(Digests::NONE);
    let id = rig.submit(read_cmd(2));
    let other = rig.submit(read_cmd(1));
    rig.sent();
    let gap = c2h(id.1, 4096, pattern(4096, 0), true, false);
    let err = rig.deliver_pdus(&[gap]).unwrap_err();
    assert!(matches!(
        err,
        HostError::Protocol(Violation::DataOffset {
            expected: 0,
            got: 4096,
            ..
        })
    ));
    let term = rig.sent();
    let [Pdu::H2cTermReq(t)] = term.as_slice() else {
        panic!("{term:?}")
    };
    assert_eq!((t.fes, t.fei), (Fes::INVALID_HEADER_FIELD, 12));
    assert_eq!(t.header.len(), 24, "the offending C2HData header");
    assert_eq!(t.header[0], 0x07);
    // Everything in flight failed, and the queue refuses new work.
    assert!(matches!(rig.done(id), Err(HostError::Protocol(_))));
    assert!(matches!(rig.done(other), Err(HostError::Protocol(_))));
    assert!(rig.core.submit(read_cmd(1)).is_err());
}

#[test]
fn data_beyond_the_transfer_is_out_of_range() {
    let mut rig = Rig::new(Digests::NONE);
    let id = rig.submit(read_cmd(1));
    rig.sent();
    let err = rig
        .deliver_pdus(&[c2h(id.1, 0, pattern(8192, 0), true, false)])
        .unwrap_err();
    assert!(matches!(
        err,
        HostError::Protocol(Violation::DataOutOfRange { .. })
    ));
    let term = rig.sent();
    assert!(matches!(&term[..], [Pdu::H2cTermReq(t)] if t.fes == Fes::DATA_OUT_OF_RANGE));
}

#[test]
fn unknown_cid_and_short_reads_are_violations() {
    let mut rig = Rig::new(Digests::NONE);
    let id = rig.submit(read_cmd(1));
    let err = rig
        .deliver_pdus(&[resp(id.1 ^ 0x0100, Status::SUCCESS)])
        .unwrap_err();
    assert!(matches!(
        err,
        HostError::Protocol(Violation::UnknownCommand { .. })
    ));

    let mut rig = Rig::new(Digests::NONE);
    let id = rig.submit(read_cmd(2));
    let err = rig
        .deliver_pdus(&[
            c2h(id.1, 0, pattern(4096, 0), true, false),
            resp(id.1, Status::SUCCESS),
        ])
        .unwrap_err();
    assert!(matches!(
        err,
        HostError::Protocol(Violation::ShortData {
            received: 4096,
            expected: 8192,
            ..
        })
    ));
}

#[test]
fn c2h_term_req_ends_the_queue() {
    let mut rig = Rig::new(Digests::NONE);
    let id = rig.submit(read_cmd(1));
    rig.sent();
    let term = Pdu::C2hTermReq(TermReq {
        fes: Fes::PDU_SEQUENCE_ERROR,
        fei: 0,
        header: Bytes::from_static(&[4; 8]),
    });
    let err = rig.deliver_pdus(&[term]).unwrap_err();
    assert!(matches!(
        err,
        HostError::Terminated {
            fes: Fes::PDU_SEQUENCE_ERROR,
            ..
        }
    ));
    assert!(matches!(rig.done(id), Err(HostError::Terminated { .. })));
    assert!(rig.sent().is_empty(), "no TermReq answers a TermReq");
}

#[test]
fn header_digest_error_sends_term_req() {
    let mut rig = Rig::new(Digests::BOTH);
    let id = rig.submit(read_cmd(1));
    rig.sent();
    let mut bytes = wire(&[resp(id.1, Status::SUCCESS)], rig.digests);
    bytes[9] ^= 0x40;
    let err = rig.deliver(&bytes).unwrap_err();
    assert!(matches!(err, HostError::Protocol(Violation::Decode(_))));
    let term = rig.sent();
    assert!(matches!(&term[..], [Pdu::H2cTermReq(t)] if t.fes == Fes::HEADER_DIGEST_ERROR));
}
