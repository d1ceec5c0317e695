//! Hostile and broken hosts (issue 12 §2 and §3): what a host that does not play by the rules
//! can make the target do. Each case failed before its fix: PDUs sent in the same segment as
//! the ICReq sat undecoded; a reused CID in flight was answered as a command error (and a
//! capsule with a bad data digest released the CID of the command still running under it);
//! a host that submits more commands than its SQ holds was served; Identify and Get Log Page
//! sent more data than the host's SGL described, and Get Log Page built its answer at the size
//! NUMD asked for (up to 16 GiB) before looking at anything else; Set Features Keep Alive Timer
//! after a Connect with KATO 0 never took effect.

// Test helpers fail the test by panicking; that is their job.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use lamina_integration::fixtures::TestTarget;
use lamina_integration::host::{Command, ConnectOptions, Controller, RawHost, Transfer};
use lamina_protocol::Pdu;
use lamina_protocol::fabrics::{ConnectCommand, ConnectData};
use lamina_protocol::nvme::features::FeatureId;
use lamina_protocol::nvme::identify::Cns;
use lamina_protocol::nvme::log_page::LogPageId;
use lamina_protocol::nvme::{
    GetLogPage, Identify, IoOpcode, ReadWrite, SglDescriptor, Sqe, Status, StatusCode,
};
use lamina_protocol::tcp::{CapsuleCmd, Digests, Fes, IcReq, Pda, TxParams};

fn write_sqe(cid: u16, slba: u64, dptr: SglDescriptor) -> Sqe {
    let mut sqe = ReadWrite {
        opcode: IoOpcode::WRITE,
        cid,
        nsid: 1,
        slba,
        nlb: 0,
        ..ReadWrite::default()
    }
    .to_sqe();
    sqe.dptr = dptr;
    sqe
}

/// An enabled controller with no I/O queue, and a raw I/O queue of `size` entries.
async fn raw_io_queue(t: &TestTarget, size: u16, digests: Digests) -> (Controller, RawHost) {
    let mut opts = t.options();
    opts.io_queues = 0;
    let ctrl = Controller::connect(t.addr(), opts.clone()).await.unwrap();
    ctrl.request_io_queues(1).await.unwrap();
    let mut raw = RawHost::connect(t.addr()).await.unwrap();
    raw.handshake(IcReq {
        digests,
        ..IcReq::default()
    })
    .await
    .unwrap();
    let cqe = raw
        .connect_queue(&opts, 1, size, ctrl.cntlid())
        .await
        .unwrap();
    assert_eq!(cqe.status, Status::SUCCESS);
    (ctrl, raw)
}

/// A write that stays in flight: its data is left to an R2T the host never answers.
async fn parked_write(raw: &mut RawHost, cid: u16) {
    let sqe = write_sqe(cid, u64::from(cid), SglDescriptor::transport(4096));
    raw.send_pdu(&Pdu::CapsuleCmd(CapsuleCmd {
        sqe,
        data: Bytes::new(),
    }))
    .await
    .unwrap();
    let Pdu::R2t(r2t) = raw.recv_pdu().await.unwrap() else {
        panic!("expected an R2T")
    };
    assert_eq!(r2t.cccid, cid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pdus_in_the_same_segment_as_the_icreq_are_answered() {
    let t = TestTarget::start().await;
    let opts = t.options();
    let mut burst = BytesMut::new();
    Pdu::IcReq(IcReq::default())
        .encode(TxParams::INITIAL, &mut burst)
        .unwrap();
    let sqe = ConnectCommand {
        cid: 1,
        qid: 0,
        sqsize: 31,
        kato_ms: 30_000,
        ..ConnectCommand::default()
    }
    .to_sqe();
    let mut data = BytesMut::new();
    ConnectData {
        hostid: opts.hostid,
        cntlid: 0xffff,
        subnqn: opts.subnqn.clone(),
        hostnqn: opts.hostnqn.clone(),
    }
    .encode(&mut data);
    let mut sqe = sqe;
    sqe.dptr = SglDescriptor::in_capsule(0, data.len() as u32);
    Pdu::CapsuleCmd(CapsuleCmd {
        sqe,
        data: data.freeze(),
    })
    .encode(TxParams::INITIAL, &mut burst)
    .unwrap();
    let mut raw = RawHost::connect(t.addr()).await.unwrap();
    raw.send_bytes(&burst).await.unwrap();
    assert!(matches!(raw.recv_pdu().await.unwrap(), Pdu::IcResp(_)));
    let Pdu::CapsuleResp(r) = raw.recv_pdu().await.unwrap() else {
        panic!("expected the Connect response")
    };
    assert_eq!(r.cqe.status, Status::SUCCESS, "{r:?}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cid_reused_while_in_flight_is_a_transport_error() {
    let t = TestTarget::start().await;
    let (_ctrl, mut raw) = raw_io_queue(&t, 32, Digests::NONE).await;
    parked_write(&mut raw, 5).await;
    let sqe = write_sqe(5, 9, SglDescriptor::in_capsule(0, 4096));
    raw.send_pdu(&Pdu::CapsuleCmd(CapsuleCmd {
        sqe,
        data: Bytes::from(vec![1; 4096]),
    }))
    .await
    .unwrap();
    let term = raw.expect_term_req().await.unwrap();
    assert_eq!(term.fes, Fes::INVALID_HEADER_FIELD);
    assert_eq!(term.fei, 10, "FEI points at the CID");
    raw.expect_closed().await.unwrap();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_digest_never_releases_the_cid_of_a_running_command() {
    let t = TestTarget::start().await;
    let digests = Digests {
        header: false,
        data: true,
    };
    let (_ctrl, mut raw) = raw_io_queue(&t, 32, digests).await;
    parked_write(&mut raw, 7).await;
    // The same CID in a capsule whose data digest is wrong: a duplicate all the same.
    let mut b = BytesMut::new();
    let sqe = write_sqe(7, 11, SglDescriptor::in_capsule(0, 4096));
    let cmd = Pdu::CapsuleCmd(CapsuleCmd {
        sqe,
        data: Bytes::from(vec![2; 4096]),
    });
    let tx = TxParams {
        digests,
        peer_pda: Pda(0),
    };
    cmd.encode(tx, &mut b).unwrap();
    let last = b.len() - 1;
    b[last] ^= 0xff;
    raw.send_bytes(&b).await.unwrap();
    let term = raw.expect_term_req().await.unwrap();
    assert_eq!(term.fes, Fes::INVALID_HEADER_FIELD);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_commands_than_the_sq_holds_is_a_transport_error() {
    let t = TestTarget::start().await;
    let (_ctrl, mut raw) = raw_io_queue(&t, 4, Digests::NONE).await;
    for cid in 0..4 {
        parked_write(&mut raw, cid).await;
    }
    let sqe = write_sqe(4, 4, SglDescriptor::transport(4096));
    raw.send_pdu(&Pdu::CapsuleCmd(CapsuleCmd {
        sqe,
        data: Bytes::new(),
    }))
    .await
    .unwrap();
    let term = raw.expect_term_req().await.unwrap();
    assert_eq!(term.fes, Fes::PDU_SEQUENCE_ERROR);
    t.stop().await;
}

/// Runs `sqe` on the admin queue with a host buffer of `len` bytes; the data it got.
async fn admin_read(ctrl: &Controller, sqe: Sqe, len: u32) -> Result<BytesMut, String> {
    let cmd = Command::with_transfer(sqe, Transfer::read(len));
    match ctrl.admin_command(cmd).await {
        Ok(mut done) => Ok(done.take_data()),
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_data_never_exceeds_the_host_buffer() {
    let t = TestTarget::start().await;
    let ctrl = t.connect().await.unwrap();
    let identify = Identify {
        cns: Cns::CONTROLLER,
        ..Identify::default()
    }
    .to_sqe();
    let got = admin_read(&ctrl, identify, 16).await.unwrap();
    assert_eq!(got.len(), 16, "Identify into a 16-byte buffer");
    let full = ctrl.identify_raw(Cns::CONTROLLER, 0, 0).await.unwrap();
    assert_eq!(&got[..], &full[..16]);
    let smart = GetLogPage {
        lid: LogPageId::SMART,
        numd: 127,
        nsid: 0xffff_ffff,
        ..GetLogPage::default()
    }
    .to_sqe();
    let got = admin_read(&ctrl, smart, 64).await.unwrap();
    assert_eq!(got.len(), 64, "Get Log Page into a 64-byte buffer");
    ctrl.shutdown().await.unwrap();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_16_gib_log_page_request_costs_nothing_on_the_discovery_controller() {
    let t = TestTarget::start().await;
    let opts = ConnectOptions::new(lamina_protocol::nvme::DISCOVERY_NQN).unwrap();
    let ctrl = Controller::connect(t.addr(), opts).await.unwrap();
    // NUMD at its maximum: (2^32) dwords, 16 GiB, into a 4 KiB buffer.
    let huge = GetLogPage {
        lid: LogPageId::DISCOVERY,
        numd: u32::MAX,
        ..GetLogPage::default()
    }
    .to_sqe();
    let got = admin_read(&ctrl, huge, 4096).await.unwrap();
    assert_eq!(got.len(), 4096);
    // A buffer past MDTS is refused before anything is built.
    let mut sqe = huge;
    sqe.dptr = SglDescriptor::transport(4 << 20);
    let cmd = Command {
        sqe,
        transfer: Transfer::Discard(4 << 20),
    };
    let err = ctrl.admin_command(cmd).await.unwrap_err();
    assert!(err.is_status(StatusCode::INVALID_FIELD), "{err}");
    ctrl.shutdown().await.unwrap();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_features_keep_alive_applies_at_once() {
    let t = TestTarget::start().await;
    let mut opts = t.options();
    opts.kato_ms = 0;
    opts.keep_alive = false;
    let ctrl = Controller::connect(t.addr(), opts).await.unwrap();
    ctrl.set_features(FeatureId::KEEP_ALIVE_TIMER, 1000, false)
        .await
        .unwrap();
    let started = Instant::now();
    // Silence: within a few seconds the controller must be torn down and its queues closed.
    loop {
        let gone = ctrl.admin().is_closed();
        if gone {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a KATO set after a Connect with KATO 0 never took effect"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(started.elapsed() >= Duration::from_millis(900));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cid_of_an_abandoned_aer_may_be_reused() {
    use lamina_protocol::fabrics::{Property, PropertySet, PropertySize};
    use lamina_protocol::nvme::{AdminOpcode, SimpleAdmin};
    // SPDK's initiator aborts its AERs locally when it detaches, then reuses their CIDs.
    let t = TestTarget::start().await;
    let opts = t.options();
    let mut raw = RawHost::connect(t.addr()).await.unwrap();
    raw.handshake(IcReq::default()).await.unwrap();
    let cqe = raw.connect_queue(&opts, 0, 32, 0xffff).await.unwrap();
    assert_eq!(cqe.status, Status::SUCCESS);
    let enable = PropertySet {
        cid: 2,
        size: PropertySize::Four,
        offset: Property::CC,
        value: 0x0046_0001,
    };
    let cqe = raw.command(enable.to_sqe(), Bytes::new()).await.unwrap();
    assert_eq!(cqe.status, Status::SUCCESS);
    let aer = SimpleAdmin {
        opcode: AdminOpcode::ASYNC_EVENT_REQUEST,
        cid: 9,
    };
    raw.send_pdu(&Pdu::CapsuleCmd(CapsuleCmd {
        sqe: aer.to_sqe(),
        data: Bytes::new(),
    }))
    .await
    .unwrap();
    let keep_alive = SimpleAdmin {
        opcode: AdminOpcode::KEEP_ALIVE,
        cid: 9,
    };
    let cqe = raw
        .command(keep_alive.to_sqe(), Bytes::new())
        .await
        .unwrap();
    assert_eq!(
        cqe.status,
        Status::SUCCESS,
        "the AER's CID passes to the new command"
    );
    t.stop().await;
}
