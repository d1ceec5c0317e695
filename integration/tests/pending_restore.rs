//! A host's view of a restore that partly failed: the base device of the default lvstore is
//! missing at start-up (twice), so its namespaces are pending and the subsystem serves none;
//! once the file is back, the retry brings the lvstore, its lvols and both namespaces back
//! while a host is connected, the host is told with a namespace-attribute-changed AEN, and it
//! reads the data it wrote before; a last restart finds everything in place.

// Test helpers fail the test by panicking; that is their job.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use lamina_integration::fixtures::{DEFAULT_NQN, TestTarget, pattern};
use lamina_integration::host::Controller;
use lamina_protocol::nvme::AsyncEvent;
use lamina_protocol::nvme::features::{AsyncEventConfig, FeatureId};
use serde_json::{Value, json};

async fn pending(t: &TestTarget) -> Vec<Value> {
    let v = t
        .call("lamina_get_pending_config", json!({}))
        .await
        .unwrap();
    v.as_array().unwrap().clone()
}

async fn read(ctrl: &Controller, nsid: u32, len: usize) -> Bytes {
    let ns = ctrl.namespace(nsid).await.unwrap();
    let q = ctrl.io_queue(0).unwrap();
    let blocks = ns.blocks_of(len).unwrap();
    q.read(&ns, 0, blocks, BytesMut::new())
        .await
        .unwrap()
        .freeze()
}

fn take_away(dir: &Path) {
    std::fs::rename(dir.join("lvs0.img"), dir.join("lvs0.img.away")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_of_a_device_that_comes_back_reach_connected_hosts_with_their_data() {
    let t = TestTarget::start_with(|a| a.pending_retry_interval = Duration::from_millis(200)).await;
    let p =
        json!({"lvs_name": "lvs0", "lvol_name": "vol1", "size_in_mib": 64, "thin_provision": true});
    t.call("bdev_lvol_create", p).await.unwrap();
    let ns = json!({"nqn": DEFAULT_NQN, "namespace": {"bdev_name": "lvs0/vol1"}});
    assert_eq!(t.call("nvmf_subsystem_add_ns", ns).await.unwrap(), json!(2));
    let data = [pattern(1, 64 << 10), pattern(2, 64 << 10)];
    let ctrl = t.connect().await.unwrap();
    for (nsid, d) in [(1, &data[0]), (2, &data[1])] {
        let ns = ctrl.namespace(nsid).await.unwrap();
        ctrl.io_queue(0)
            .unwrap()
            .write(&ns, 0, d.clone(), true)
            .await
            .unwrap();
    }
    ctrl.shutdown().await.unwrap();

    // Missing at start-up, and still missing at the next one: pending both times.
    let t = t.restart_after(take_away).await;
    assert_eq!(pending(&t).await.len(), 3);
    let t = t.restart().await;
    let left = pending(&t).await;
    let what: Vec<&str> = left.iter().map(|e| e["method"].as_str().unwrap()).collect();
    assert_eq!(
        what,
        [
            "bdev_aio_create",
            "nvmf_subsystem_add_ns",
            "nvmf_subsystem_add_ns"
        ]
    );

    // A host connected meanwhile sees no namespace, then is told when they come back.
    let ctrl = t.connect().await.unwrap();
    assert!(ctrl.active_namespaces(0).await.unwrap().is_empty());
    ctrl.set_features(
        FeatureId::ASYNC_EVENT_CONFIG,
        AsyncEventConfig::NS_ATTRIBUTE,
        false,
    )
    .await
    .unwrap();
    let aen = ctrl.async_event_request().await.unwrap();
    let dir = t.data_dir();
    std::fs::rename(dir.join("lvs0.img.away"), dir.join("lvs0.img")).unwrap();
    let event = tokio::time::timeout(Duration::from_secs(10), aen)
        .await
        .expect("an AEN within the retry interval")
        .unwrap();
    assert_eq!(event, AsyncEvent::NS_CHANGED);
    let deadline = Instant::now() + Duration::from_secs(10);
    while ctrl.active_namespaces(0).await.unwrap() != [1, 2] {
        assert!(Instant::now() < deadline, "namespaces did not come back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(pending(&t).await.is_empty());
    assert_eq!(read(&ctrl, 1, 64 << 10).await, data[0]);
    assert_eq!(read(&ctrl, 2, 64 << 10).await, data[1]);
    ctrl.shutdown().await.unwrap();

    // A restart finds it all in place.
    let t = t.restart().await;
    assert!(pending(&t).await.is_empty());
    let ctrl = t.connect().await.unwrap();
    assert_eq!(ctrl.active_namespaces(0).await.unwrap(), [1, 2]);
    assert_eq!(read(&ctrl, 2, 64 << 10).await, data[1]);
    ctrl.shutdown().await.unwrap();
    t.stop().await;
}
