//! Namespace masking against Lamina's real target: a namespace added with `no_auto_visible` is
//! inactive to every host until `nvmf_ns_add_host` lists it (absent from the active list,
//! Identify Namespace all zeros, the descriptor list refused), the listed host's controller
//! hears of each change by AEN and the Changed Namespace List while other hosts hear nothing,
//! `nvmf_ns_remove_host` hides it again, and the configuration keeps the list.

// Test helpers fail the test by panicking; that is their job.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use lamina_integration::fixtures::{DEFAULT_NQN, TestTarget};
use lamina_integration::host::{ConnectOptions, Controller};
use lamina_protocol::nvme::features::{AsyncEventConfig, FeatureId};
use lamina_protocol::nvme::identify::Cns;
use lamina_protocol::nvme::log_page::LogPageId;
use lamina_protocol::nvme::{AsyncEvent, Nqn, StatusCode};
use serde_json::{Value, json};

const HOST_A: &str = "nqn.2014-08.org.nvmexpress:uuid:0a0a0a0a-0000-4000-8000-00000000000a";
const HOST_B: &str = "nqn.2014-08.org.nvmexpress:uuid:0b0b0b0b-0000-4000-8000-00000000000b";

async fn connect_as(t: &TestTarget, host: &str) -> Controller {
    let mut opts: ConnectOptions = t.options();
    opts.hostnqn = Nqn::new(host).unwrap();
    let ctrl = Controller::connect(t.addr(), opts).await.unwrap();
    ctrl.set_features(
        FeatureId::ASYNC_EVENT_CONFIG,
        AsyncEventConfig::NS_ATTRIBUTE,
        false,
    )
    .await
    .unwrap();
    ctrl
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("in time")
}

/// What a host sees of NSID 2: whether it is active, its size, whether its descriptors answer.
async fn view(c: &Controller) -> (Vec<u32>, u64, Option<StatusCode>) {
    let active = c.active_namespaces(0).await.unwrap();
    let nsze = c.identify_namespace(2).await.unwrap().nsze;
    let desc = c
        .identify_raw(Cns::NS_ID_DESCRIPTORS, 2, 0)
        .await
        .err()
        .map(|e| e.status().unwrap().code);
    (active, nsze, desc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masked_namespaces_are_seen_only_by_listed_hosts() {
    let t = TestTarget::start().await;
    t.call(
        "bdev_lvol_create",
        json!({"lvs_name": "lvs0", "lvol_name": "vol1", "size_in_mib": 64, "thin_provision": true}),
    )
    .await
    .unwrap();
    let a = connect_as(&t, HOST_A).await;
    let b = connect_as(&t, HOST_B).await;
    let aen_a = a.async_event_request().await.unwrap();
    let nsid = t
        .call(
            "nvmf_subsystem_add_ns",
            json!({"nqn": DEFAULT_NQN,
                "namespace": {"bdev_name": "lvs0/vol1", "no_auto_visible": true}}),
        )
        .await
        .unwrap();
    assert_eq!(nsid, json!(2));
    let hidden = (vec![1], 0, Some(StatusCode::INVALID_NAMESPACE_OR_FORMAT));
    assert_eq!(view(&a).await, hidden);
    assert_eq!(view(&b).await, hidden);

    // Listed for A: A is told and sees it; B still does not.
    let listed = json!({"nqn": DEFAULT_NQN, "nsid": 2, "host": HOST_A});
    t.call("nvmf_ns_add_host", listed.clone()).await.unwrap();
    assert_eq!(within(aen_a).await.unwrap(), AsyncEvent::NS_CHANGED);
    let changed = a
        .get_log_page(LogPageId::CHANGED_NS_LIST, 0, 0, 4096, 0, false)
        .await
        .unwrap();
    assert_eq!(u32::from_le_bytes(changed[0..4].try_into().unwrap()), 2);
    assert_eq!(view(&a).await, (vec![1, 2], 16_384, None));
    assert_eq!(view(&b).await, hidden);
    // Idempotent, as SPDK.
    t.call("nvmf_ns_add_host", listed.clone()).await.unwrap();
    let subs = t.call("nvmf_get_subsystems", Value::Null).await.unwrap();
    let ns = subs
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["nqn"] == DEFAULT_NQN)
        .unwrap()["namespaces"][1]
        .clone();
    assert_eq!(
        (ns["no_auto_visible"].clone(), ns["hosts"].clone()),
        (json!(true), json!([HOST_A]))
    );
    let saved = t
        .call("save_config", Value::Null)
        .await
        .unwrap()
        .to_string();
    assert!(saved.contains(r#""no_auto_visible":true"#), "{saved}");
    assert!(saved.contains(r#""method":"nvmf_ns_add_host""#), "{saved}");

    // A namespace every host sees has no host list.
    let err = t
        .call(
            "nvmf_ns_add_host",
            json!({"nqn": DEFAULT_NQN, "nsid": 1, "host": HOST_A}),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("visible to every host"), "{err}");

    // Hidden again: A is told, and it is gone for A too.
    let aen_a = a.async_event_request().await.unwrap();
    t.call("nvmf_ns_remove_host", listed).await.unwrap();
    assert_eq!(within(aen_a).await.unwrap(), AsyncEvent::NS_CHANGED);
    assert_eq!(view(&a).await, hidden);

    // After a restart the list is back.
    t.call(
        "nvmf_ns_add_host",
        json!({"nqn": DEFAULT_NQN, "nsid": 2, "host": HOST_B}),
    )
    .await
    .unwrap();
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    let t = t.restart().await;
    let b = connect_as(&t, HOST_B).await;
    let a = connect_as(&t, HOST_A).await;
    assert_eq!(view(&b).await, (vec![1, 2], 16_384, None));
    assert_eq!(view(&a).await, hidden);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    t.stop().await;
}
