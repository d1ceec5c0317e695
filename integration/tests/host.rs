//! The host end to end against the in-process mock target (`support/mock`): controller
//! bring-up, the admin and I/O APIs, in-capsule and R2T writes, digests, pipelining, AEN,
//! keep-alive and KATO expiry, shutdown, and the host's reaction to a misbehaving target.

mod support;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use lamina_integration::host::{
    Command, ConnectOptions, Controller, HostError, RawEvent, RawHost, Transfer, Violation,
};
use lamina_protocol::fabrics::Property;
use lamina_protocol::nvme::features::FeatureId;
use lamina_protocol::nvme::log_page::LogPageId;
use lamina_protocol::nvme::{AsyncEvent, DsmRange, StatusCode};
use lamina_protocol::tcp::{Fes, IcReq};
use support::mock::{Fault, MOCK_NQN, MockConfig, MockTarget};

fn opts() -> ConnectOptions {
    let mut o = ConnectOptions::new(MOCK_NQN).expect("valid NQN");
    o.command_timeout = Duration::from_secs(10);
    o
}

fn pattern(len: usize, seed: u32) -> Bytes {
    let mut x = u64::from(seed) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect::<Vec<_>>()
        .into()
}

async fn connect(target: &MockTarget, o: ConnectOptions) -> Controller {
    Controller::connect(target.addr(), o)
        .await
        .expect("connect to the mock target")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bring_up_and_identify() {
    let target = MockTarget::start(MockConfig::default()).await;
    let mut o = opts();
    o.io_queues = 3;
    let ctrl = connect(&target, o).await;
    assert_eq!(ctrl.io_queues().len(), 3);
    assert_eq!(ctrl.identity().cntlid, ctrl.cntlid());
    assert_eq!(ctrl.cap().mqes(), 127);
    assert_eq!(ctrl.vs().minor(), 4);
    assert_eq!(ctrl.max_transfer(), 4096 << 8);
    let ns = ctrl.namespace(1).await.unwrap();
    assert_eq!((ns.block_size, ns.blocks), (4096, 4096));
    assert_eq!(ctrl.active_namespaces(0).await.unwrap(), vec![1]);
    assert_eq!(ctrl.namespace_descriptors(1).await.unwrap().len(), 1);
    ctrl.identify_controller_nvm().await.unwrap();
    let err = ctrl.identify_namespace(7).await.unwrap_err();
    assert!(err.is_status(StatusCode::INVALID_FIELD), "{err}");
    for (i, q) in ctrl.io_queues().iter().enumerate() {
        assert_eq!(usize::from(q.qid()), i + 1);
    }
    ctrl.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_capsule_and_r2t_writes_read_back_with_and_without_digests() {
    for digests in [false, true] {
        let target = MockTarget::start(MockConfig::default()).await;
        let ctrl = connect(&target, opts().with_digests(digests, digests)).await;
        let ns = ctrl.namespace(1).await.unwrap();
        let q = ctrl.io_queue(0).unwrap();
        // 4 KiB: in the capsule (IOCCSZ gives 8 KiB); 256 KiB: four R2Ts of 64 KiB, each
        // answered with two 32 KiB H2CData PDUs.
        for (slba, len) in [(0u64, 4096usize), (8, 256 * 1024), (100, 12 * 1024)] {
            let data = pattern(len, u32::try_from(slba).unwrap() + 1);
            q.write(&ns, slba, data.clone(), slba == 8).await.unwrap();
            let back = q
                .read(
                    &ns,
                    slba,
                    u32::try_from(len / 4096).unwrap(),
                    BytesMut::new(),
                )
                .await
                .unwrap();
            assert_eq!(back.freeze(), data);
            let off = usize::try_from(slba).unwrap() * 4096;
            assert_eq!(target.peek(off, len), data.to_vec());
        }
        ctrl.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_io_commands() {
    let target = MockTarget::start(MockConfig::default()).await;
    let ctrl = connect(&target, opts()).await;
    let ns = ctrl.namespace(1).await.unwrap();
    let q = ctrl.io_queue(0).unwrap();
    let data = pattern(8192, 9);
    q.write(&ns, 10, data.clone(), false).await.unwrap();
    assert!(q.compare(&ns, 10, data.clone()).await.unwrap());
    assert!(!q.compare(&ns, 10, pattern(8192, 10)).await.unwrap());
    q.flush(1).await.unwrap();
    q.write_zeroes(&ns, 10, 1, false, false).await.unwrap();
    assert_eq!(target.peek(10 * 4096, 4096), vec![0; 4096]);
    q.write(&ns, 20, data, false).await.unwrap();
    let range = DsmRange {
        context_attributes: 0,
        nlb: 2,
        slba: 20,
    };
    q.dataset_management(1, &[range], true).await.unwrap();
    assert_eq!(target.peek(20 * 4096, 8192), vec![0; 8192]);
    let err = q.read(&ns, 4096, 1, BytesMut::new()).await.unwrap_err();
    assert!(err.is_status(StatusCode::LBA_OUT_OF_RANGE), "{err}");
    let err = q.write(&ns, 0, Bytes::from_static(b"short"), false).await;
    assert!(matches!(err, Err(HostError::InvalidRequest(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_pipeline_on_small_queues() {
    let target = MockTarget::start(MockConfig::default()).await;
    let mut o = opts();
    o.io_queues = 2;
    o.io_queue_size = 4;
    let ctrl = connect(&target, o).await;
    let ns = ctrl.namespace(1).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..64u32 {
        let q = ctrl
            .io_queue(usize::try_from(i % 2).unwrap())
            .unwrap()
            .clone();
        let ns = ns.clone();
        tasks.push(tokio::spawn(async move {
            let data = pattern(4096 * 3, i);
            let slba = u64::from(i) * 3;
            q.write(&ns, slba, data.clone(), false).await?;
            let back = q.read(&ns, slba, 3, BytesMut::new()).await?;
            assert_eq!(back.freeze(), data);
            Ok::<_, HostError>(())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(ctrl.io_queue(0).unwrap().in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_flag_when_sq_flow_control_is_disabled() {
    let target = MockTarget::start(MockConfig::default()).await;
    for disabled in [false, true] {
        let mut o = opts();
        o.disable_sq_flow_control = disabled;
        let ctrl = connect(&target, o).await;
        let ns = ctrl.namespace(1).await.unwrap();
        let cmd = ns.read_command(0, 16, BytesMut::new()).unwrap();
        let done = ctrl.io_queue(0).unwrap().execute(cmd).await.unwrap();
        assert!(done.is_success());
        assert_eq!(done.by_success_flag, disabled);
        assert_eq!(done.received, 65536);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api() {
    let target = MockTarget::start(MockConfig::default()).await;
    let ctrl = connect(&target, opts()).await;
    let log = ctrl
        .get_log_page(LogPageId::SMART, 0xffff_ffff, 510, 8, 0, false)
        .await
        .unwrap();
    assert_eq!(&log[..], &[254, 255, 0, 1, 2, 3, 4, 5]);
    assert!(
        ctrl.get_log_page(LogPageId::SMART, 0, 0, 6, 0, false)
            .await
            .is_err()
    );
    ctrl.set_features(FeatureId::ASYNC_EVENT_CONFIG, 0x100, false)
        .await
        .unwrap();
    let aec = ctrl
        .get_features(FeatureId::ASYNC_EVENT_CONFIG, 0, 0)
        .await
        .unwrap();
    assert_eq!(aec, 0x100);
    let err = ctrl
        .set_features(FeatureId::ARBITRATION, 0, false)
        .await
        .unwrap_err();
    assert!(err.is_status(StatusCode::INVALID_FIELD));
    ctrl.keep_alive().await.unwrap();
    let csts = ctrl.property_get(Property::CSTS).await.unwrap();
    assert_eq!(csts & 1, 1, "CSTS.RDY");
    // A raw command with an unknown opcode is a status, not a failure of the queue.
    let sqe = lamina_protocol::nvme::Sqe {
        opcode: 0xc1,
        ..Default::default()
    };
    let done = ctrl.admin().execute(Command::new(sqe)).await.unwrap();
    assert_eq!(done.cqe.status.code, StatusCode::INVALID_OPCODE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_event_request_resolves_on_namespace_change() {
    let target = MockTarget::start(MockConfig::default()).await;
    let ctrl = connect(&target, opts()).await;
    let aen = ctrl.async_event_request().await.unwrap();
    let waiter = tokio::spawn(aen);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiter.is_finished());
    target.notify_ns_changed();
    let event = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(event, AsyncEvent::NS_CHANGED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_runs_and_stopping_it_lets_kato_expire() {
    let target = MockTarget::start(MockConfig::default()).await;
    let mut o = opts();
    o.kato_ms = 400;
    let ctrl = connect(&target, o).await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(
        target.keep_alives() >= 2,
        "{} keep alives",
        target.keep_alives()
    );
    assert!(!ctrl.admin().is_closed());
    ctrl.set_keep_alive(false);
    let why = tokio::time::timeout(Duration::from_secs(5), ctrl.admin().closed())
        .await
        .expect("the target tears the controller down after KATO");
    assert!(matches!(why, HostError::ConnectionClosed), "{why}");
    let err = ctrl.keep_alive().await.unwrap_err();
    assert!(err.is_fatal());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_target_is_caught() {
    let target = MockTarget::start(MockConfig {
        fault: Fault::BadDatao,
        ..MockConfig::default()
    })
    .await;
    let ctrl = connect(&target, opts()).await;
    let ns = ctrl.namespace(1).await.unwrap();
    let q = ctrl.io_queue(0).unwrap();
    let err = q.read(&ns, 0, 1, BytesMut::new()).await.unwrap_err();
    assert!(
        matches!(
            err,
            HostError::Protocol(Violation::DataOffset { got: 512, .. })
        ),
        "{err}"
    );
    assert!(matches!(q.closed().await, HostError::Protocol(_)));
    assert!(q.read(&ns, 0, 1, BytesMut::new()).await.is_err());

    let target = MockTarget::start(MockConfig {
        fault: Fault::WrongCntlid,
        ..MockConfig::default()
    })
    .await;
    let err = Controller::connect(target.addr(), opts())
        .await
        .unwrap_err();
    assert!(
        matches!(err, HostError::Protocol(Violation::Identify(_))),
        "{err}"
    );

    let target = MockTarget::start(MockConfig {
        fault: Fault::TermAfter(2),
        ..MockConfig::default()
    })
    .await;
    let ctrl = connect(&target, opts()).await;
    let q = ctrl.io_queue(0).unwrap();
    q.flush(1).await.unwrap();
    q.flush(1).await.unwrap();
    let err = q.flush(1).await.unwrap_err();
    assert!(
        matches!(
            err,
            HostError::Terminated {
                fes: Fes::PDU_SEQUENCE_ERROR,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_abandon_commands_and_the_queue_goes_on() {
    let target = MockTarget::start(MockConfig {
        fault: Fault::IgnoreReads,
        ..MockConfig::default()
    })
    .await;
    let ctrl = connect(&target, opts()).await;
    let ns = ctrl.namespace(1).await.unwrap();
    let q = ctrl.io_queue(0).unwrap();
    let cmd = ns.read_command(0, 1, BytesMut::new()).unwrap();
    let err = q
        .execute_within(cmd, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(err, HostError::Timeout { .. }), "{err}");
    // The abandoned read keeps its CID reserved; writes still work.
    assert_eq!(q.in_flight(), 1);
    q.write(&ns, 0, pattern(4096, 1), false).await.unwrap();
    // A dropped future abandons its command too.
    let fut = q
        .start(ns.read_command(1, 1, BytesMut::new()).unwrap())
        .await
        .unwrap();
    drop(fut);
    assert_eq!(q.in_flight(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mdts_and_transfer_limits_are_enforced_by_the_host() {
    let target = MockTarget::start(MockConfig {
        mdts: 2,
        ..MockConfig::default()
    })
    .await;
    let ctrl = connect(&target, opts()).await;
    assert_eq!(ctrl.max_transfer(), 16384);
    let ns = ctrl.namespace(1).await.unwrap();
    let q = ctrl.io_queue(0).unwrap();
    q.write(&ns, 0, pattern(16384, 1), false).await.unwrap();
    let err = q.write(&ns, 0, pattern(32768, 1), false).await.unwrap_err();
    assert!(matches!(err, HostError::InvalidRequest(_)), "{err}");
    let raw = Command::with_transfer(
        ns.read_command(0, 8, BytesMut::new()).unwrap().sqe,
        Transfer::Discard(32768),
    );
    assert!(matches!(
        q.execute(raw).await,
        Err(HostError::InvalidRequest(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_host_sees_term_req_for_a_malformed_pdu() {
    let target = MockTarget::start(MockConfig::default()).await;
    let mut raw = RawHost::connect(target.addr()).await.unwrap();
    let resp = raw.handshake(IcReq::default()).await.unwrap();
    assert_eq!(resp.maxh2cdata, 32 * 1024);
    // CapsuleCmd with HLEN 71.
    raw.send_bytes(&[4, 0, 71, 0, 72, 0, 0, 0]).await.unwrap();
    let term = raw.expect_term_req().await.unwrap();
    assert_eq!((term.fes, term.fei), (Fes::INVALID_HEADER_FIELD, 2));
    raw.expect_closed().await.unwrap();
    assert_eq!(raw.recv().await.unwrap(), RawEvent::Closed);

    let mut raw = RawHost::connect(target.addr()).await.unwrap();
    raw.handshake(IcReq::default()).await.unwrap();
    let cqe = raw.connect_queue(&opts(), 0, 32, 0xffff).await.unwrap();
    assert!(cqe.status.code.is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_to_a_wrong_subsystem_fails_with_its_status() {
    let target = MockTarget::start(MockConfig::default()).await;
    let o = ConnectOptions::new("nqn.2026-11.io.lamina:nope").unwrap();
    let err = Controller::connect(target.addr(), o).await.unwrap_err();
    assert!(
        err.is_status(StatusCode::CONNECT_INVALID_PARAMETERS),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_fails_in_flight_commands() {
    let target = MockTarget::start(MockConfig {
        fault: Fault::IgnoreReads,
        ..MockConfig::default()
    })
    .await;
    let ctrl = connect(&target, opts()).await;
    let ns = ctrl.namespace(1).await.unwrap();
    let q = ctrl.io_queue(0).unwrap().clone();
    let fut = q
        .start(ns.read_command(0, 1, BytesMut::new()).unwrap())
        .await
        .unwrap();
    q.close();
    let err = tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, HostError::QueueClosed), "{err}");
    assert!(q.is_closed());
}
