//! The reconnect fence (issue 14 §1, SPDK's `dup_host_policy`): a host whose controller was
//! torn down while one of its writes is still running in a stuck device must not get a new
//! controller (and run I/O racing that stale write) until the write has completed. Under the
//! default `restrict_per_listener` its Connect gets Controller Busy without Do Not Retry, and
//! succeeds once the old write has finished and the old controller is gone; under `allow`
//! (SPDK's default) nothing is fenced. The device is the fault-injecting one, holding writes.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; a panic is a failure

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use lamina_integration::host::{ConnectOptions, Controller};
use lamina_lvol::device::{Device, FaultDevice};
use lamina_protocol::nvme::StatusCode;
use lamina_target::plane::bdev::BdevKind;
use serde_json::json;
use support::TestServer;

const NQN: &str = "nqn.2026-12.io.lamina:fence";
const HOSTID: [u8; 16] = [0x42; 16];

/// A target exporting a fault device as namespace 1 of [`NQN`] on a fresh port.
async fn setup() -> (TestServer, FaultDevice, std::net::SocketAddr) {
    let s = TestServer::start().await;
    let mut c = s.client().await;
    let dev = FaultDevice::new(16 << 20, 512).unwrap();
    s.running
        .target
        .bdevs
        .insert("F0", None, BdevKind::Malloc, Device::Fault(dev.clone()))
        .unwrap();
    let port = support::free_port();
    support::ok(
        &mut c,
        "nvmf_create_subsystem",
        json!({"nqn": NQN, "allow_any_host": true}),
    )
    .await;
    support::ok(
        &mut c,
        "nvmf_subsystem_add_ns",
        json!({"nqn": NQN, "namespace": {"bdev_name": "F0"}}),
    )
    .await;
    support::ok(
        &mut c,
        "nvmf_subsystem_add_listener",
        json!({"nqn": NQN, "listen_address":
            {"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": port.to_string()}}),
    )
    .await;
    (s, dev, format!("127.0.0.1:{port}").parse().unwrap())
}

fn options() -> ConnectOptions {
    let mut o = ConnectOptions::new(NQN).unwrap();
    o.hostid = HOSTID;
    o.hostnqn = lamina_protocol::nvme::Nqn::new(
        "nqn.2014-08.org.nvmexpress:uuid:42424242-4242-4242-4242-424242424242",
    )
    .unwrap();
    o
}

/// Host A writes into the held device, then its controller is torn down (as a keep-alive
/// expiry does); returns A's pending write.
async fn stale_write(
    s: &TestServer,
    dev: &FaultDevice,
    addr: std::net::SocketAddr,
) -> tokio::task::JoinHandle<()> {
    let a = Arc::new(Controller::connect(addr, options()).await.unwrap());
    let ns = a.namespace(1).await.unwrap();
    dev.set_write_hold(true);
    let writer = {
        let a = a.clone();
        tokio::spawn(async move {
            let q = a.io_queue(0).unwrap();
            // Its completion never comes: the controller is gone by then.
            let _ = q.write(&ns, 8, Bytes::from(vec![0xee; 512]), false).await;
        })
    };
    tokio::time::timeout(Duration::from_secs(10), async {
        while dev.held_writes() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the write never reached the device");
    s.running
        .target
        .controllers
        .get(a.cntlid())
        .unwrap()
        .tear_down();
    writer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_host_waits_for_its_stale_write() {
    let (s, dev, addr) = setup().await;
    let writer = stale_write(&s, &dev, addr).await;
    // The old write is still in the device: a new controller for this host is refused, for
    // now (no DNR: the Linux host keeps retrying).
    for _ in 0..3 {
        let Err(e) = Controller::connect(addr, options()).await else {
            panic!("a new controller for the host while its old write is still running");
        };
        assert!(e.is_status(StatusCode::CONNECT_CONTROLLER_BUSY), "{e}");
        assert!(!e.status().unwrap().dnr, "{e}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(dev.held_writes(), 1);
    // Another host is not fenced.
    let other = Controller::connect(addr, ConnectOptions::new(NQN).unwrap())
        .await
        .unwrap();
    other.shutdown().await.unwrap();
    // The device lets the write through: the old controller goes, the host gets in.
    dev.set_write_hold(false);
    let b = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match Controller::connect(addr, options()).await {
                Ok(b) => break b,
                Err(e) => assert!(e.is_status(StatusCode::CONNECT_CONTROLLER_BUSY), "{e}"),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the host never got back in");
    let ns = b.namespace(1).await.unwrap();
    b.io_queue(0)
        .unwrap()
        .write(&ns, 8, Bytes::from(vec![0x11; 512]), false)
        .await
        .unwrap();
    b.shutdown().await.unwrap();
    writer.abort();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_fences_nothing_and_the_policy_is_saved() {
    let (s, dev, addr) = setup().await;
    let mut c = s.client().await;
    let e = support::err(
        &mut c,
        "nvmf_set_config",
        json!({"dup_host_policy": "never"}),
        -32602,
    )
    .await;
    assert!(e.contains("dup_host_policy"), "{e}");
    support::ok(
        &mut c,
        "nvmf_set_config",
        json!({"dup_host_policy": "allow"}),
    )
    .await;
    let writer = stale_write(&s, &dev, addr).await;
    let b = Controller::connect(addr, options()).await.unwrap();
    assert_eq!(
        dev.held_writes(),
        1,
        "connected while the old write is still held"
    );
    dev.set_write_hold(false);
    b.shutdown().await.unwrap();
    writer.abort();
    let saved = support::ok(&mut c, "save_config", json!({})).await;
    let text = saved.to_string();
    assert!(
        text.contains(r#""dup_host_policy":"allow""#),
        "the policy is in the saved configuration: {text}"
    );
    s.stop().await;
}
