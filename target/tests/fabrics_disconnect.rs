//! Fabrics Disconnect as NVMe-oF 1.1 defines it: served only with Record Format 0 (else
//! Incompatible Format), only on an I/O queue (on the Admin Queue: Invalid Queue Type), and
//! advertised in Identify Controller OFCS bit 0 where it is served. SPDK's nvme_fuzz sends
//! random Fabrics commands; one with FCTYPE 08h and random dwords closed its I/O queue, which
//! its host then took as a transport failure.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use lamina_integration::fixtures::TestTarget;
use lamina_integration::host::{Command, ConnectOptions, Controller};
use lamina_protocol::fabrics::FabricsCommandType;
use lamina_protocol::nvme::{AdminOpcode, DISCOVERY_NQN, Sqe, StatusCode};

/// OFCS bit 0: the Disconnect command and deleting single I/O queues are supported.
const OFCS_DISCONNECT: u16 = 1;

/// A Disconnect SQE with `cdw10` as it comes (RECFMT is its low 16 bits) and `nsid` bytes 5..8
/// (reserved for Fabrics commands) as a fuzzer fills them.
fn disconnect(cdw10: u32) -> Command {
    Command::new(Sqe {
        opcode: AdminOpcode::FABRICS.0,
        nsid: u32::from(FabricsCommandType::DISCONNECT.0) | 0x71c3_9a00,
        cdw: [cdw10, 0x5a5a_5a5a, 0, 0, 0, 0],
        ..Sqe::default()
    })
}

async fn still_serves(ctrl: &Controller, slba: u64) {
    let ns = ctrl.namespace(1).await.unwrap();
    let q = ctrl.io_queue(0).unwrap();
    let data = Bytes::from(vec![0xa5; 4096]);
    q.write(&ns, slba, data.clone(), false).await.unwrap();
    let back = q
        .read(&ns, slba, ns.blocks_of(4096).unwrap(), BytesMut::new())
        .await
        .unwrap();
    assert_eq!(back.freeze(), data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_with_another_record_format_is_refused_and_the_queue_stays() {
    let t = TestTarget::start().await;
    let ctrl = t.connect().await.unwrap();
    let q = ctrl.io_queue(0).unwrap();
    for cdw10 in [1, 0x1d3b_9e44, 0xffff] {
        let done = q.execute(disconnect(cdw10)).await.unwrap();
        assert_eq!(
            done.cqe.status.code,
            StatusCode::CONNECT_INCOMPATIBLE_FORMAT,
            "RECFMT {:#x}",
            cdw10 & 0xffff
        );
        assert!(
            done.cqe.status.dnr,
            "a format the target does not know stays unknown"
        );
    }
    assert!(!q.is_closed());
    still_serves(&ctrl, 8).await;
    ctrl.shutdown().await.unwrap();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_on_the_admin_queue_is_an_invalid_queue_type() {
    let t = TestTarget::start().await;
    let ctrl = t.connect().await.unwrap();
    // Record Format 0 (the upper half of CDW10 is reserved): only the queue is wrong.
    for cdw10 in [0, 0xabcd_0000] {
        let done = ctrl.admin().execute(disconnect(cdw10)).await.unwrap();
        assert_eq!(done.cqe.status.code, StatusCode::INVALID_QUEUE_TYPE);
    }
    assert!(!ctrl.admin().is_closed());
    ctrl.keep_alive().await.unwrap();
    still_serves(&ctrl, 16).await;
    ctrl.shutdown().await.unwrap();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_is_advertised_where_it_is_served() {
    let t = TestTarget::start().await;
    let ctrl = t.connect().await.unwrap();
    assert_eq!(ctrl.identity().ofcs & OFCS_DISCONNECT, OFCS_DISCONNECT);
    // Record Format 0 on an I/O queue (reserved bits set, as a fuzzer sends it): served.
    let q = ctrl.io_queue(0).unwrap();
    let done = q.execute(disconnect(0x0042_0000)).await.unwrap();
    assert_eq!(done.cqe.status.code, StatusCode::SUCCESS);
    tokio::time::timeout(Duration::from_secs(5), q.closed())
        .await
        .expect("the target closes a disconnected queue");
    ctrl.keep_alive().await.unwrap();
    ctrl.shutdown().await.unwrap();

    // A discovery controller has no I/O queue to disconnect.
    let opts = ConnectOptions::new(DISCOVERY_NQN).unwrap();
    let disc = Controller::connect(t.addr(), opts).await.unwrap();
    assert_eq!(disc.identity().ofcs & OFCS_DISCONNECT, 0);
    let done = disc.admin().execute(disconnect(0)).await.unwrap();
    assert_eq!(done.cqe.status.code, StatusCode::INVALID_QUEUE_TYPE);
    disc.shutdown().await.unwrap();
    t.stop().await;
}
