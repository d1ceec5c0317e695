//! The transport against Lamina's real target: the IC exchange as the Linux host checks it,
//! and every class of malformed PDU answered with a C2HTermReq carrying the right FES and FEI,
//! the connection closed, and the target still serving everyone else. A data digest error fails
//! only its command (NVMe/TCP 1.0) and the connection lives on.

// Test helpers fail the test by panicking; that is their job.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use bytes::{BufMut, Bytes, BytesMut};
use lamina_integration::fixtures::TestTarget;
use lamina_integration::host::{Controller, RawHost};
use lamina_protocol::Pdu;
use lamina_protocol::nvme::{IoOpcode, ReadWrite, SglDescriptor, Status, StatusCode};
use lamina_protocol::tcp::{
    CapsuleCmd, Digests, Fes, H2cData, IcReq, MIN_MAXH2CDATA, Pda, PduType, TxParams,
};

/// The target keeps serving a well-behaved host after each violation.
async fn still_serves(t: &TestTarget) {
    let ctrl = t
        .connect()
        .await
        .expect("a new host connects after a violation");
    let ns = ctrl.namespace(1).await.unwrap();
    ctrl.io_queue(0)
        .unwrap()
        .write(&ns, 0, Bytes::from(vec![7u8; 4096]), false)
        .await
        .unwrap();
    ctrl.shutdown().await.unwrap();
}

async fn handshaken(t: &TestTarget) -> RawHost {
    let mut raw = RawHost::connect(t.addr()).await.unwrap();
    raw.handshake(IcReq::default()).await.unwrap();
    raw
}

/// An admin queue connected and enabled over a raw connection, plus an I/O queue.
async fn raw_io_queue(t: &TestTarget, digests: Digests) -> (Controller, RawHost) {
    let mut opts = t.options();
    opts.io_queues = 0;
    let ctrl = Controller::connect(t.addr(), opts.clone()).await.unwrap();
    ctrl.request_io_queues(1).await.unwrap();
    let mut raw = RawHost::connect(t.addr()).await.unwrap();
    let req = IcReq {
        digests,
        ..IcReq::default()
    };
    raw.handshake(req).await.unwrap();
    let cqe = raw
        .connect_queue(&opts, 1, 32, ctrl.cntlid())
        .await
        .unwrap();
    assert_eq!(cqe.status, Status::SUCCESS);
    (ctrl, raw)
}

fn write_sqe(cid: u16, slba: u64, blocks: u16, dptr: SglDescriptor) -> lamina_protocol::nvme::Sqe {
    let mut sqe = ReadWrite {
        opcode: IoOpcode::WRITE,
        cid,
        nsid: 1,
        slba,
        nlb: blocks - 1,
        ..ReadWrite::default()
    }
    .to_sqe();
    sqe.dptr = dptr;
    sqe
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn icresp_is_what_the_linux_host_accepts() {
    let t = TestTarget::start().await;
    for (hd, dd, hpda) in [
        (false, false, 0),
        (true, false, 0),
        (false, true, 3),
        (true, true, 31),
    ] {
        let mut raw = RawHost::connect(t.addr()).await.unwrap();
        let req = IcReq {
            pfv: 0,
            hpda: Pda(hpda),
            digests: Digests {
                header: hd,
                data: dd,
            },
            maxr2t: 0,
        };
        let resp = raw.handshake(req).await.unwrap();
        assert_eq!(resp.pfv, 0);
        assert_eq!(
            resp.cpda,
            Pda(0),
            "the Linux host rejects a CPDA other than 0"
        );
        assert_eq!(
            resp.digests, req.digests,
            "digest bits must be echoed exactly"
        );
        assert!(resp.maxh2cdata >= MIN_MAXH2CDATA && resp.maxh2cdata % 4 == 0);
        assert_eq!(resp.linux_host_rejects(&req), None);
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_icreq_gets_a_term_req() {
    let t = TestTarget::start().await;
    // PFV 1: unsupported parameter at byte 8.
    let mut raw = RawHost::connect(t.addr()).await.unwrap();
    let mut b = BytesMut::new();
    IcReq {
        pfv: 1,
        ..IcReq::default()
    }
    .encode(&mut b);
    raw.send_bytes(&b).await.unwrap();
    let term = raw.expect_term_req().await.unwrap();
    assert_eq!(term.fes, Fes::UNSUPPORTED_PARAMETER);
    assert_eq!(term.fei, 8);
    raw.expect_closed().await.unwrap();

    // A command capsule before the ICReq: PDU sequence error.
    let mut raw = RawHost::connect(t.addr()).await.unwrap();
    let cmd = CapsuleCmd {
        sqe: write_sqe(1, 0, 1, SglDescriptor::transport(4096)),
        data: Bytes::new(),
    };
    raw.send_pdu(&Pdu::CapsuleCmd(cmd)).await.unwrap();
    let term = raw.expect_term_req().await.unwrap();
    assert_eq!(term.fes, Fes::PDU_SEQUENCE_ERROR);
    raw.expect_closed().await.unwrap();
    still_serves(&t).await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_headers_get_the_right_fes_and_fei() {
    let t = TestTarget::start().await;
    // (bytes after the IC exchange, FES, FEI)
    let cases: Vec<(Vec<u8>, Fes, Option<u32>)> = vec![
        // Unknown PDU type 0x0B.
        (
            vec![0x0B, 0, 24, 0, 24, 0, 0, 0],
            Fes::INVALID_HEADER_FIELD,
            Some(0),
        ),
        // C2HData (controller-to-host) sent by the host.
        (
            vec![0x07, 0x0C, 24, 24, 28, 0, 0, 0],
            Fes::INVALID_HEADER_FIELD,
            Some(0),
        ),
        // CapsuleCmd with HLEN 71.
        (
            vec![0x04, 0, 71, 0, 72, 0, 0, 0],
            Fes::INVALID_HEADER_FIELD,
            Some(2),
        ),
        // CapsuleCmd whose PLEN is far past the in-capsule limit.
        (
            vec![0x04, 0, 72, 72, 0, 0, 0, 0x10],
            Fes::DATA_LIMIT_EXCEEDED,
            None,
        ),
        // A second ICReq.
        (
            {
                let mut b = BytesMut::new();
                IcReq::default().encode(&mut b);
                b.to_vec()
            },
            Fes::PDU_SEQUENCE_ERROR,
            None,
        ),
    ];
    for (bytes, fes, fei) in cases {
        let mut raw = handshaken(&t).await;
        raw.send_bytes(&bytes).await.unwrap();
        let term = raw.expect_term_req().await.unwrap();
        assert_eq!(term.fes, fes, "for {bytes:02x?}");
        if let Some(fei) = fei {
            assert_eq!(term.fei, fei, "FEI for {bytes:02x?}");
        }
        assert!(!term.header.is_empty() || fes == Fes::PDU_SEQUENCE_ERROR);
        raw.expect_closed().await.unwrap();
    }
    still_serves(&t).await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_digest_error_terminates() {
    let t = TestTarget::start().await;
    let (ctrl, mut raw) = raw_io_queue(
        &t,
        Digests {
            header: true,
            data: false,
        },
    )
    .await;
    let cmd = CapsuleCmd {
        sqe: write_sqe(5, 0, 1, SglDescriptor::transport(4096)),
        data: Bytes::new(),
    };
    let mut b = BytesMut::new();
    Pdu::CapsuleCmd(cmd)
        .encode(
            TxParams {
                digests: Digests {
                    header: true,
                    data: false,
                },
                peer_pda: Pda(0),
            },
            &mut b,
        )
        .unwrap();
    let last = b.len() - 1;
    b[last] ^= 0xff; // corrupt HDGST
    raw.send_bytes(&b).await.unwrap();
    let term = raw.expect_term_req().await.unwrap();
    assert_eq!(term.fes, Fes::HEADER_DIGEST_ERROR);
    raw.expect_closed().await.unwrap();
    let stats = &t.running().target.transport_stats;
    assert!(
        stats
            .header_digest_errors
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    drop(ctrl);
    still_serves(&t).await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_digest_error_fails_only_the_command() {
    let t = TestTarget::start().await;
    let digests = Digests {
        header: false,
        data: true,
    };
    let (ctrl, mut raw) = raw_io_queue(&t, digests).await;
    let data = Bytes::from(vec![0x5a; 4096]);
    let cmd = CapsuleCmd {
        sqe: write_sqe(9, 3, 1, SglDescriptor::in_capsule(0, 4096)),
        data: data.clone(),
    };
    let mut b = BytesMut::new();
    Pdu::CapsuleCmd(cmd.clone())
        .encode(
            TxParams {
                digests,
                peer_pda: Pda(0),
            },
            &mut b,
        )
        .unwrap();
    let last = b.len() - 1;
    b[last] ^= 0xff; // corrupt DDGST
    raw.send_bytes(&b).await.unwrap();
    let Pdu::CapsuleResp(resp) = raw.recv_pdu().await.unwrap() else {
        panic!("expected a response")
    };
    assert_eq!(resp.cqe.cid, 9);
    assert_eq!(resp.cqe.status.code, StatusCode::TRANSIENT_TRANSPORT_ERROR);
    // The connection lives on: the same write with a good digest succeeds.
    let cqe = raw.command(cmd.sqe, data).await.unwrap();
    assert_eq!(cqe.status, Status::SUCCESS);
    drop(ctrl);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_data_violations_terminate_with_their_fes() {
    let t = TestTarget::start().await;
    // (ttag, datao, last_pdu, FES, FEI)
    let cases = [
        (7u16, 0u32, true, Fes::INVALID_HEADER_FIELD, Some(10u32)), // unknown TTAG
        (0, 4096, true, Fes::DATA_OUT_OF_RANGE, None),              // DATAO skips ahead
        (0, 0, false, Fes::PDU_SEQUENCE_ERROR, None),               // LAST_PDU missing
    ];
    for (ttag_override, datao, last, fes, fei) in cases {
        let (ctrl, mut raw) = raw_io_queue(&t, Digests::NONE).await;
        let cmd = CapsuleCmd {
            sqe: write_sqe(3, 0, 4, SglDescriptor::transport(16384)),
            data: Bytes::new(),
        };
        raw.send_pdu(&Pdu::CapsuleCmd(cmd)).await.unwrap();
        let Pdu::R2t(r2t) = raw.recv_pdu().await.unwrap() else {
            panic!("expected R2T")
        };
        assert_eq!((r2t.cccid, r2t.r2to, r2t.r2tl), (3, 0, 16384));
        let ttag = if ttag_override == 0 {
            r2t.ttag
        } else {
            ttag_override
        };
        let len = if last { 16384 - datao as usize } else { 16384 };
        let h2c = H2cData {
            cccid: 3,
            ttag,
            datao,
            last_pdu: last,
            data: Bytes::from(vec![1u8; len]),
        };
        raw.send_pdu(&Pdu::H2cData(h2c)).await.unwrap();
        let term = raw.expect_term_req().await.unwrap();
        assert_eq!(term.fes, fes);
        if let Some(fei) = fei {
            assert_eq!(term.fei, fei);
        }
        raw.expect_closed().await.unwrap();
        drop(ctrl);
    }
    still_serves(&t).await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_vanishing_mid_transfer_leaves_the_target_serving() {
    let t = TestTarget::start().await;
    let (ctrl, mut raw) = raw_io_queue(&t, Digests::NONE).await;
    let cmd = CapsuleCmd {
        sqe: write_sqe(4, 0, 32, SglDescriptor::transport(131_072)),
        data: Bytes::new(),
    };
    raw.send_pdu(&Pdu::CapsuleCmd(cmd)).await.unwrap();
    let Pdu::R2t(r2t) = raw.recv_pdu().await.unwrap() else {
        panic!("expected R2T")
    };
    // Half the data, then the host disappears.
    let mut half = BytesMut::new();
    half.put_bytes(9, 65536);
    let h2c = H2cData {
        cccid: 4,
        ttag: r2t.ttag,
        datao: 0,
        last_pdu: false,
        data: half.freeze(),
    };
    raw.send_pdu(&Pdu::H2cData(h2c)).await.unwrap();
    drop(raw);
    // The controller's other queue still works, and so does everyone else.
    ctrl.keep_alive().await.unwrap();
    still_serves(&t).await;
    let pdus = t.running().target.transport_stats.pdus();
    assert!(
        pdus.iter()
            .any(|(ty, rx, _)| *ty == usize::from(PduType::H2C_DATA.0) && *rx >= 1)
    );
    ctrl.shutdown().await.unwrap();
    t.stop().await;
}
