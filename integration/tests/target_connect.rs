//! Fabrics Connect and discovery against Lamina's real target: every refusal carries the status
//! NVMe-oF gives it and the offset of the bad field; the discovery log page lists what this host
//! may reach, respects allow-lists, and its generation and change notice follow configuration
//! changes.

// Test helpers fail the test by panicking; that is their job.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use bytes::{Bytes, BytesMut};
use lamina_integration::fixtures::{DEFAULT_NQN, TestTarget};
use lamina_integration::host::{ConnectOptions, Controller, RawHost};
use lamina_protocol::fabrics::discovery::{DiscoveryLogPage, SubType};
use lamina_protocol::fabrics::{ConnectCommand, ConnectData, Property};
use lamina_protocol::nvme::features::{AsyncEventConfig, FeatureId};
use lamina_protocol::nvme::log_page::LogPageId;
use lamina_protocol::nvme::{AsyncEvent, Cqe, DISCOVERY_NQN, Nqn, Status, StatusCode};
use lamina_protocol::tcp::IcReq;
use serde_json::json;

const IATTR_DATA: u32 = 1 << 16;

async fn raw(t: &TestTarget) -> RawHost {
    let mut r = RawHost::connect(t.addr()).await.unwrap();
    r.handshake(IcReq::default()).await.unwrap();
    r
}

/// Sends a Connect with full control over its fields.
async fn connect_raw(
    r: &mut RawHost,
    opts: &ConnectOptions,
    qid: u16,
    sqsize: u16,
    cntlid: u16,
) -> Cqe {
    let sqe = ConnectCommand {
        cid: 1,
        qid,
        sqsize,
        kato_ms: 0,
        ..ConnectCommand::default()
    }
    .to_sqe();
    let data = ConnectData {
        hostid: opts.hostid,
        cntlid,
        subnqn: opts.subnqn.clone(),
        hostnqn: opts.hostnqn.clone(),
    };
    let mut b = BytesMut::new();
    data.encode(&mut b);
    r.command(sqe, b.freeze()).await.unwrap()
}

fn refused(cqe: &Cqe, code: StatusCode) {
    assert_eq!(cqe.status.code, code, "{cqe:?}");
    assert!(cqe.status.dnr, "Connect refusals carry DNR");
}

/// A refusal the host may retry on a new association: no DNR, or Linux stops reconnecting.
fn refused_retryable(cqe: &Cqe, code: StatusCode) {
    assert_eq!(cqe.status.code, code, "{cqe:?}");
    assert!(
        !cqe.status.dnr,
        "a controller that went away is no reason to give up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_connect_refusals() {
    let t = TestTarget::start().await;
    let opts = t.options();

    let mut bad = opts.clone();
    bad.subnqn = Nqn::new("nqn.2026-11.io.lamina:nowhere").unwrap();
    let cqe = connect_raw(&mut raw(&t).await, &bad, 0, 31, 0xFFFF).await;
    refused(&cqe, StatusCode::CONNECT_INVALID_PARAMETERS);
    assert_eq!(cqe.dw0, IATTR_DATA | 256, "IPO: SUBNQN in the Connect data");

    let cqe = connect_raw(&mut raw(&t).await, &opts, 0, 31, 5).await;
    refused(&cqe, StatusCode::CONNECT_INVALID_PARAMETERS);
    assert_eq!(
        cqe.dw0,
        IATTR_DATA | 16,
        "IPO: CNTLID (dynamic model needs FFFFh)"
    );

    for sqsize in [0u16, 128, 4000] {
        let cqe = connect_raw(&mut raw(&t).await, &opts, 0, sqsize, 0xFFFF).await;
        refused(&cqe, StatusCode::CONNECT_INVALID_PARAMETERS);
        assert_eq!(
            cqe.dw0,
            u32::from(ConnectCommand::SQSIZE_OFFSET),
            "sqsize {sqsize}"
        );
    }

    // Nothing but Connect before Connect.
    let mut r = raw(&t).await;
    let sqe = lamina_integration::host::identify_command(
        lamina_protocol::nvme::identify::Cns::CONTROLLER,
        0,
        0,
    )
    .sqe;
    let cqe = r.command(sqe, Bytes::new()).await.unwrap();
    assert_eq!(cqe.status.code, StatusCode::COMMAND_SEQUENCE_ERROR);

    // A second Connect on a connected queue.
    let mut r = raw(&t).await;
    assert_eq!(
        connect_raw(&mut r, &opts, 0, 31, 0xFFFF).await.status,
        Status::SUCCESS
    );
    let cqe = connect_raw(&mut r, &opts, 0, 31, 0xFFFF).await;
    assert_eq!(cqe.status.code, StatusCode::COMMAND_SEQUENCE_ERROR);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_list_and_listeners_are_enforced() {
    let t = TestTarget::start().await;
    let nqn = "nqn.2026-11.io.lamina:private";
    t.call("nvmf_create_subsystem", json!({"nqn": nqn}))
        .await
        .unwrap();
    let port = t.addr().port().to_string();
    let listen = json!({"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": port});
    t.call(
        "nvmf_subsystem_add_listener",
        json!({"nqn": nqn, "listen_address": listen}),
    )
    .await
    .unwrap();
    let mut opts = ConnectOptions::new(nqn).unwrap();
    opts.hostnqn = Nqn::new("nqn.2014-08.org.nvmexpress:uuid:host-a").unwrap();

    let cqe = connect_raw(&mut raw(&t).await, &opts, 0, 31, 0xFFFF).await;
    refused(&cqe, StatusCode::CONNECT_INVALID_HOST);
    t.call(
        "nvmf_subsystem_add_host",
        json!({"nqn": nqn, "host": opts.hostnqn.as_str()}),
    )
    .await
    .unwrap();
    let ctrl = Controller::connect(t.addr(), opts.clone()).await.unwrap();
    // Removing the host drops its controller.
    t.call(
        "nvmf_subsystem_remove_host",
        json!({"nqn": nqn, "host": opts.hostnqn.as_str()}),
    )
    .await
    .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), ctrl.admin().closed())
        .await
        .expect("the controller of a removed host is torn down");

    // A subsystem that does not listen on the address the host used is not reachable there.
    t.call(
        "nvmf_subsystem_allow_any_host",
        json!({"nqn": nqn, "allow_any_host": true}),
    )
    .await
    .unwrap();
    t.call(
        "nvmf_subsystem_remove_listener",
        json!({"nqn": nqn, "listen_address": listen}),
    )
    .await
    .unwrap();
    let cqe = connect_raw(&mut raw(&t).await, &opts, 0, 31, 0xFFFF).await;
    refused(&cqe, StatusCode::CONNECT_INVALID_PARAMETERS);
    assert_eq!(cqe.dw0, IATTR_DATA | 256);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn io_connect_refusals() {
    let t = TestTarget::start().await;
    let mut opts = t.options();
    opts.io_queues = 1;
    let ctrl = Controller::connect(t.addr(), opts.clone()).await.unwrap();
    let cntlid = ctrl.cntlid();

    // Unknown CNTLID, and another host's controller: Invalid Parameters naming CNTLID, without
    // DNR (the host's own controller may have gone away with a restart; a new association
    // gets in, as with SPDK).
    let cqe = connect_raw(&mut raw(&t).await, &opts, 1, 31, cntlid.wrapping_add(100)).await;
    refused_retryable(&cqe, StatusCode::CONNECT_INVALID_PARAMETERS);
    assert_eq!(cqe.dw0, IATTR_DATA | 16);
    let mut other = opts.clone();
    other.hostnqn = Nqn::new("nqn.2014-08.org.nvmexpress:uuid:someone-else").unwrap();
    let cqe = connect_raw(&mut raw(&t).await, &other, 1, 31, cntlid).await;
    refused_retryable(&cqe, StatusCode::CONNECT_INVALID_PARAMETERS);
    assert_eq!(cqe.dw0, IATTR_DATA | 16);

    // QID 1 is taken by the controller's own queue; QID 2 was not granted.
    let cqe = connect_raw(&mut raw(&t).await, &opts, 1, 31, cntlid).await;
    refused(&cqe, StatusCode::COMMAND_SEQUENCE_ERROR);
    let cqe = connect_raw(&mut raw(&t).await, &opts, 2, 31, cntlid).await;
    refused(&cqe, StatusCode::CONNECT_INVALID_PARAMETERS);
    assert_eq!(cqe.dw0, u32::from(ConnectCommand::QID_OFFSET));
    let cqe = connect_raw(&mut raw(&t).await, &opts, 1, 200, cntlid).await;
    refused(&cqe, StatusCode::CONNECT_INVALID_PARAMETERS);
    assert_eq!(cqe.dw0, u32::from(ConnectCommand::SQSIZE_OFFSET));

    // An I/O queue may not join a controller the host has not enabled. (A second host: the
    // first still holds its controller on this listener, and dup_host_policy
    // restrict_per_listener would refuse that host a second one.)
    let mut second = opts.clone();
    second.hostid = [7; 16];
    let mut admin = raw(&t).await;
    let cqe = connect_raw(&mut admin, &second, 0, 31, 0xFFFF).await;
    assert_eq!(cqe.status, Status::SUCCESS);
    let cqe = connect_raw(
        &mut raw(&t).await,
        &second,
        1,
        31,
        u16::try_from(cqe.dw0 & 0xffff).unwrap(),
    )
    .await;
    refused(&cqe, StatusCode::COMMAND_SEQUENCE_ERROR);
    // And nothing but Fabrics commands runs on an admin queue before CC.EN.
    let sqe = lamina_integration::host::identify_command(
        lamina_protocol::nvme::identify::Cns::CONTROLLER,
        0,
        0,
    )
    .sqe;
    let mut sqe = sqe;
    sqe.cid = 2;
    assert_eq!(
        admin.command(sqe, Bytes::new()).await.unwrap().status.code,
        StatusCode::COMMAND_SEQUENCE_ERROR
    );
    ctrl.shutdown().await.unwrap();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_properties_and_shutdown() {
    let t = TestTarget::start().await;
    let ctrl = t.connect().await.unwrap();
    let cap = lamina_protocol::fabrics::Cap(ctrl.admin_property(Property::CAP).await);
    assert_eq!(cap.mqes(), 127);
    assert_eq!(cap.mpsmin(), 0, "MPSMIN 4 KiB");
    assert!(cap.timeout() > 0);
    // NVM, and I/O command set selection (CC.CSS 110b); CRWMS as NVMe 2.0 requires.
    assert_eq!(cap.css(), 0x41);
    assert!(cap.crwms());
    assert_eq!(ctrl.vs().0, 0x0002_0000);
    ctrl.shutdown().await.unwrap();
    t.stop().await;
}

trait PropertyExt {
    async fn admin_property(&self, p: Property) -> u64;
}

impl PropertyExt for Controller {
    async fn admin_property(&self, p: Property) -> u64 {
        self.property_get(p).await.unwrap()
    }
}

fn discovery_opts() -> ConnectOptions {
    ConnectOptions::new(DISCOVERY_NQN).unwrap()
}

async fn discovery_log(ctrl: &Controller) -> DiscoveryLogPage {
    let head = ctrl
        .get_log_page(LogPageId::DISCOVERY, 0, 0, 1024, 0, false)
        .await
        .unwrap();
    let numrec = u64::from_le_bytes(head[8..16].try_into().unwrap());
    let len = 1024 + 1024 * u32::try_from(numrec).unwrap();
    let page = ctrl
        .get_log_page(LogPageId::DISCOVERY, 0, 0, len, 0, false)
        .await
        .unwrap();
    DiscoveryLogPage::decode(&page).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_lists_what_this_host_may_reach() {
    let t = TestTarget::start().await;
    let disc = Controller::connect(t.addr(), discovery_opts())
        .await
        .unwrap();
    assert!(disc.is_discovery());
    assert_eq!(disc.identity().cntrltype, 2);
    assert_eq!(disc.identity().oaes & (1 << 31), 1 << 31);
    let page = discovery_log(&disc).await;
    assert_eq!(page.entries.len(), 2);
    assert_eq!(page.entries[0].subtype, SubType::CURRENT_DISCOVERY);
    let e = &page.entries[1];
    assert_eq!(e.subtype, SubType::NVME);
    assert_eq!(e.subnqn.as_str(), DEFAULT_NQN);
    assert_eq!(e.traddr, "127.0.0.1");
    assert_eq!(e.trsvcid, t.addr().port().to_string());
    assert_eq!(e.cntlid, 0xFFFF);
    let g0 = page.genctr;

    // Arm the discovery change notice, then change the configuration.
    disc.set_features(
        FeatureId::ASYNC_EVENT_CONFIG,
        AsyncEventConfig::DISCOVERY_LOG_CHANGE,
        false,
    )
    .await
    .unwrap();
    let aen = disc.async_event_request().await.unwrap();
    let nqn = "nqn.2026-11.io.lamina:hidden";
    t.call("nvmf_create_subsystem", json!({"nqn": nqn}))
        .await
        .unwrap();
    let port = t.addr().port().to_string();
    t.call(
        "nvmf_subsystem_add_listener",
        json!({"nqn": nqn, "listen_address":
        {"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": port}}),
    )
    .await
    .unwrap();
    let event = tokio::time::timeout(std::time::Duration::from_secs(5), aen)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event, AsyncEvent::DISCOVERY_CHANGED);
    // The new subsystem allows no host: not listed; the generation moved.
    let page = discovery_log(&disc).await;
    assert!(page.genctr > g0);
    assert!(page.entries.iter().all(|e| e.subnqn.as_str() != nqn));
    t.call(
        "nvmf_subsystem_allow_any_host",
        json!({"nqn": nqn, "allow_any_host": true}),
    )
    .await
    .unwrap();
    let page = discovery_log(&disc).await;
    assert!(page.entries.iter().any(|e| e.subnqn.as_str() == nqn));
    // Discovery controllers have no I/O commands or namespaces.
    let err = disc.identify_namespace(1).await.unwrap_err();
    assert!(err.is_status(StatusCode::INVALID_FIELD), "{err}");
    disc.shutdown().await.unwrap();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_listener_is_reported_as_the_address_the_host_used() {
    let t = TestTarget::start().await;
    let nqn = "nqn.2026-11.io.lamina:wild";
    t.call(
        "nvmf_create_subsystem",
        json!({"nqn": nqn, "allow_any_host": true}),
    )
    .await
    .unwrap();
    // A wildcard listener on a fresh port, reached through 127.0.0.1.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    t.call(
        "nvmf_subsystem_add_listener",
        json!({"nqn": nqn, "listen_address":
        {"trtype": "TCP", "adrfam": "IPv4", "traddr": "0.0.0.0", "trsvcid": port.to_string()}}),
    )
    .await
    .unwrap();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let disc = Controller::connect(addr, discovery_opts()).await.unwrap();
    let page = discovery_log(&disc).await;
    let e = page
        .entries
        .iter()
        .find(|e| e.subnqn.as_str() == nqn)
        .expect("listed");
    assert_eq!(
        (e.traddr.as_str(), e.trsvcid.as_str()),
        ("127.0.0.1", port.to_string().as_str())
    );
    let ctrl = Controller::connect(addr, ConnectOptions::new(nqn).unwrap())
        .await
        .unwrap();
    ctrl.shutdown().await.unwrap();
    disc.shutdown().await.unwrap();
    t.stop().await;
}

/// SPDK's spdk_nvme_perf sends an empty HOSTNQN by default: accepted where any host may
/// connect (SPDK's target does too), refused where an allow-list applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_host_nqn_connects_only_where_any_host_may() {
    use lamina_integration::host::RawHost;
    use lamina_protocol::nvme::{Nqn, Status, StatusCode};
    use lamina_protocol::tcp::IcReq;
    let t = TestTarget::start().await;
    let mut opts = t.options();
    opts.hostnqn = Nqn::empty();
    let mut raw = RawHost::connect(t.addr()).await.unwrap();
    raw.handshake(IcReq::default()).await.unwrap();
    let cqe = raw.connect_queue(&opts, 0, 32, 0xffff).await.unwrap();
    assert_eq!(cqe.status, Status::SUCCESS);
    let nqn = "nqn.2026-11.io.lamina:listed";
    t.call("nvmf_create_subsystem", serde_json::json!({"nqn": nqn}))
        .await
        .unwrap();
    let la = serde_json::json!({"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1",
        "trsvcid": t.addr().port().to_string()});
    t.call(
        "nvmf_subsystem_add_listener",
        serde_json::json!({"nqn": nqn, "listen_address": la}),
    )
    .await
    .unwrap();
    opts.subnqn = Nqn::new(nqn).unwrap();
    let mut raw = RawHost::connect(t.addr()).await.unwrap();
    raw.handshake(IcReq::default()).await.unwrap();
    let cqe = raw.connect_queue(&opts, 0, 32, 0xffff).await.unwrap();
    assert_eq!(cqe.status.code, StatusCode::CONNECT_INVALID_HOST);
    t.stop().await;
}

/// A host reconnecting in a tight loop across restarts (issue 13 §1): the listener used to
/// accept before the persisted configuration was restored, so a Connect in that window got
/// Invalid Parameters with DNR, which kernels from 6.10 on take as final. Now connections wait
/// in the accept queue until the configuration is applied: every attempt either fails at the
/// TCP level (the target is down) or connects; none is refused with DNR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_reconnecting_across_restarts_is_never_refused_for_good() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let mut t = TestTarget::start().await;
    // Enough configuration that restoring it takes a while: lvols exported as namespaces.
    for i in 0..31 {
        let p = serde_json::json!({"lvs_name": "lvs0", "lvol_name": format!("v{i}"),
            "size_in_mib": 4, "thin_provision": true});
        t.call("bdev_lvol_create", p).await.unwrap();
        let p = serde_json::json!({"nqn": lamina_integration::fixtures::DEFAULT_NQN,
            "namespace": {"bdev_name": format!("lvs0/v{i}")}});
        t.call("nvmf_subsystem_add_ns", p).await.unwrap();
    }
    let addr = t.addr();
    let opts = t.options();
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, dnr) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let looper = {
        let (stop, ok, dnr) = (stop.clone(), ok.clone(), dnr.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match Controller::connect(addr, opts.clone()).await {
                    Ok(c) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        c.close();
                    }
                    Err(e) => {
                        if e.status().is_some_and(|s| s.dnr) {
                            dnr.fetch_add(1, Ordering::Relaxed);
                            eprintln!("refused for good: {e}");
                        }
                        tokio::task::yield_now().await;
                    }
                }
            }
        })
    };
    for _ in 0..3 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        t = t.restart().await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    looper.await.unwrap();
    assert!(ok.load(Ordering::Relaxed) > 0, "the host never got in");
    assert_eq!(
        dnr.load(Ordering::Relaxed),
        0,
        "Connects refused with DNR across restarts"
    );
    t.stop().await;
}
