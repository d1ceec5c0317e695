//! The admin command set and controller lifecycle against Lamina's real target: Identify as
//! the Linux host checks it, log pages with offsets, features, AENs for namespace changes,
//! keep-alive expiry, namespace removal draining in-flight I/O, and restart with data and
//! configuration intact.

// Test helpers fail the test by panicking; that is their job.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use lamina_integration::fixtures::TestTarget;
use lamina_integration::host::Controller;
use lamina_protocol::nvme::features::{AsyncEventConfig, FeatureId, NumberOfQueues};
use lamina_protocol::nvme::identify::{Cns, NsIdDescriptor};
use lamina_protocol::nvme::log_page::{ErrorInfoEntry, FirmwareSlotInfo, LogPageId, SmartLog};
use lamina_protocol::nvme::{AsyncEvent, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identify_controller_and_namespace() {
    let t = TestTarget::start().await;
    let ctrl = t.connect().await.unwrap();
    let id = ctrl.identify_controller().await.unwrap();
    assert_eq!(
        id.cntlid,
        ctrl.cntlid(),
        "Linux drops a controller whose CNTLID differs"
    );
    assert!(id.kas > 0, "Linux drops a controller with KAS 0");
    assert!(id.ioccsz >= 4);
    assert_eq!((id.iorcsz, id.icdoff, id.msdbd, id.cntrltype), (1, 0, 1, 1));
    assert_eq!(
        id.oaes & (1 << 8),
        1 << 8,
        "Namespace Attribute Notices advertised"
    );
    assert_eq!(id.oncs & 0b1101, 0b1101, "Compare, DSM, Write Zeroes");
    assert_eq!(id.vwc & 1, 1);
    assert!(id.ver >= 0x10300);
    assert_eq!((id.sqes, id.cqes), (0x66, 0x44));
    assert_eq!(
        id.subnqn.as_ref().unwrap().as_str(),
        lamina_integration::fixtures::DEFAULT_NQN
    );
    assert!(!id.serial_number.trim().is_empty() && !id.model_number.trim().is_empty());
    assert_eq!(id.firmware_revision.trim(), env!("CARGO_PKG_VERSION"));
    assert_eq!(id.sgls & 1, 1);
    assert!(id.nn >= 1 && id.maxcmd > 0 && id.mdts > 0);

    let ns = ctrl.identify_namespace(1).await.unwrap();
    assert_eq!(ns.nsze, 262_144, "1 GiB of 4 KiB blocks");
    assert_eq!(ns.ncap, ns.nsze);
    assert_eq!(ns.nuse, 0, "a fresh thin lvol uses nothing");
    assert_eq!(ns.nsfeat & 1, 1, "thin provisioning");
    assert_eq!(ns.current_format().unwrap().block_size(), Some(4096));
    assert_eq!(ns.dlfeat & 0b111, 1, "deallocated blocks read as zeros");
    let lvols = t.call("bdev_lvol_get_lvols", json!({})).await.unwrap();
    let uuid = uuid::Uuid::parse_str(lvols[0]["uuid"].as_str().unwrap()).unwrap();
    assert_eq!(
        ns.nguid,
        *uuid.as_bytes(),
        "NGUID derived from the lvol UUID"
    );

    // NUSE follows thin allocation (one 4 MiB cluster = 1024 blocks).
    let q = ctrl.io_queue(0).unwrap();
    let n = ctrl.namespace(1).await.unwrap();
    q.write(&n, 5000, Bytes::from(vec![1u8; 4096]), false)
        .await
        .unwrap();
    assert_eq!(ctrl.identify_namespace(1).await.unwrap().nuse, 1024);

    let descs = ctrl.namespace_descriptors(1).await.unwrap();
    assert!(descs.contains(&NsIdDescriptor::Nguid(*uuid.as_bytes())));
    assert!(descs.contains(&NsIdDescriptor::Uuid(*uuid.as_bytes())));
    assert!(descs.contains(&NsIdDescriptor::Csi(0)));
    assert_eq!(ctrl.active_namespaces(0).await.unwrap(), vec![1]);
    assert_eq!(ctrl.active_namespaces(1).await.unwrap(), Vec::<u32>::new());
    ctrl.identify_controller_nvm().await.unwrap();
    // An inactive NSID reads as zeros; an invalid one and an unknown CNS are errors.
    assert_eq!(ctrl.identify_namespace(7).await.unwrap().nsze, 0);
    assert!(
        ctrl.namespace_descriptors(7)
            .await
            .unwrap_err()
            .is_status(StatusCode::INVALID_NAMESPACE_OR_FORMAT)
    );
    assert!(
        ctrl.identify_raw(Cns::NAMESPACE, 0, 0)
            .await
            .unwrap_err()
            .is_status(StatusCode::INVALID_NAMESPACE_OR_FORMAT)
    );
    assert!(
        ctrl.identify_raw(Cns(0x15), 0, 0)
            .await
            .unwrap_err()
            .is_status(StatusCode::INVALID_FIELD)
    );
    ctrl.shutdown().await.unwrap();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_pages_honour_offset_and_length() {
    let t = TestTarget::start().await;
    let ctrl = t.connect().await.unwrap();
    let q = ctrl.io_queue(0).unwrap();
    let ns = ctrl.namespace(1).await.unwrap();
    for i in 0..3u64 {
        q.write(&ns, i, Bytes::from(vec![3u8; 4096]), false)
            .await
            .unwrap();
    }
    q.read(&ns, 0, 2, BytesMut::new()).await.unwrap();
    let err = q.read(&ns, 1 << 40, 1, BytesMut::new()).await.unwrap_err();
    assert!(err.is_status(StatusCode::LBA_OUT_OF_RANGE));

    let smart = SmartLog::decode(
        &ctrl
            .get_log_page(LogPageId::SMART, 0xFFFF_FFFF, 0, 512, 0, false)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(smart.host_write_commands, 3);
    assert_eq!(smart.host_read_commands, 1);
    assert_eq!(
        smart.data_units_written, 1,
        "3 x 4 KiB rounds up to one unit of 512,000 bytes"
    );

    let errors = ctrl
        .get_log_page(LogPageId::ERROR_INFO, 0, 0, 64, 0, false)
        .await
        .unwrap();
    let newest = ErrorInfoEntry::decode(&errors).unwrap();
    assert_eq!(newest.error_count, 1);
    assert_eq!(newest.nsid, 1);
    assert_eq!(newest.lba, 1 << 40);

    let fw = FirmwareSlotInfo::decode(
        &ctrl
            .get_log_page(LogPageId::FIRMWARE_SLOT, 0, 0, 512, 0, false)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(fw.afi & 7, 1);
    assert_eq!(fw.frs[0].trim(), env!("CARGO_PKG_VERSION"));

    // Commands Supported and Effects: bytes of the I/O table at an offset.
    let whole = ctrl
        .get_log_page(LogPageId::COMMANDS_EFFECTS, 0, 0, 4096, 0, false)
        .await
        .unwrap();
    let part = ctrl
        .get_log_page(LogPageId::COMMANDS_EFFECTS, 0, 1024, 16, 0, false)
        .await
        .unwrap();
    assert_eq!(&part[..], &whole[1024..1040]);
    assert_eq!(
        u32::from_le_bytes(whole[1024 + 4..1024 + 8].try_into().unwrap()) & 3,
        3,
        "Write: CSUPP|LBCC"
    );
    // Past the end, and unknown pages.
    let err = ctrl
        .get_log_page(LogPageId::SMART, 0, 4096, 4, 0, false)
        .await
        .unwrap_err();
    assert!(err.is_status(StatusCode::INVALID_FIELD), "{err}");
    // NVMe 2.0: an unsupported Log Identifier is Invalid Field in Command (nvmet, SPDK).
    let err = ctrl
        .get_log_page(LogPageId::DISCOVERY, 0, 0, 1024, 0, false)
        .await
        .unwrap_err();
    assert!(err.is_status(StatusCode::INVALID_FIELD), "{err}");
    ctrl.shutdown().await.unwrap();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn features() {
    let t = TestTarget::start().await;
    let mut opts = t.options();
    opts.io_queues = 3;
    let ctrl = Controller::connect(t.addr(), opts).await.unwrap();
    let nq = NumberOfQueues::from_dword(
        ctrl.get_features(FeatureId::NUMBER_OF_QUEUES, 0, 0)
            .await
            .unwrap(),
    );
    assert_eq!((nq.nsq, nq.ncq), (2, 2), "3 queues granted, 0's based");
    ctrl.set_features(FeatureId::KEEP_ALIVE_TIMER, 15_000, false)
        .await
        .unwrap();
    assert_eq!(
        ctrl.get_features(FeatureId::KEEP_ALIVE_TIMER, 0, 0)
            .await
            .unwrap(),
        15_000
    );
    ctrl.set_features(
        FeatureId::ASYNC_EVENT_CONFIG,
        AsyncEventConfig::NS_ATTRIBUTE,
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        ctrl.get_features(FeatureId::ASYNC_EVENT_CONFIG, 0, 0)
            .await
            .unwrap(),
        AsyncEventConfig::NS_ATTRIBUTE
    );
    assert_eq!(
        ctrl.get_features(FeatureId::VOLATILE_WRITE_CACHE, 0, 0)
            .await
            .unwrap(),
        1
    );
    ctrl.set_features(FeatureId::VOLATILE_WRITE_CACHE, 0, false)
        .await
        .unwrap();
    assert_eq!(
        ctrl.get_features(FeatureId::VOLATILE_WRITE_CACHE, 0, 0)
            .await
            .unwrap(),
        0
    );
    // Timestamp: what the host set, plus the time since.
    let mut ts = BytesMut::new();
    lamina_protocol::nvme::features::Timestamp {
        millis: 1_000_000,
        synch: false,
        origin: 0,
    }
    .encode(&mut ts);
    ctrl.set_features_data(FeatureId::TIMESTAMP, 0, false, ts.freeze())
        .await
        .unwrap();
    let (_, data) = ctrl
        .get_features_data(FeatureId::TIMESTAMP, 0, 8)
        .await
        .unwrap();
    let got = lamina_protocol::nvme::features::Timestamp::decode(&data).unwrap();
    assert!((1_000_000..1_060_000).contains(&got.millis) && got.origin == 1);
    // Host Identifier: the 128-bit one from Connect.
    let (_, hostid) = ctrl
        .get_features_data(FeatureId::HOST_IDENTIFIER, 1, 16)
        .await
        .unwrap();
    assert_eq!(&hostid[..], &ctrl.options().hostid[..]);
    // Unknown feature, saving, changing queues after I/O queues exist.
    assert!(
        ctrl.get_features(FeatureId::HOST_BEHAVIOR, 0, 0)
            .await
            .unwrap_err()
            .is_status(StatusCode::INVALID_FIELD)
    );
    assert!(
        ctrl.set_features(FeatureId::KEEP_ALIVE_TIMER, 1000, true)
            .await
            .unwrap_err()
            .is_status(StatusCode::FEATURE_NOT_SAVEABLE)
    );
    assert!(
        ctrl.set_features(FeatureId::NUMBER_OF_QUEUES, 0x0001_0001, false)
            .await
            .unwrap_err()
            .is_status(StatusCode::COMMAND_SEQUENCE_ERROR)
    );
    // Abort answers honestly: not aborted.
    assert_eq!(ctrl.abort(1, 0x123).await.unwrap() & 1, 1);
    ctrl.shutdown().await.unwrap();
    t.stop().await;
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_changes_raise_aens_and_the_changed_list() {
    let t = TestTarget::start().await;
    let ctrl = t.connect().await.unwrap();
    ctrl.set_features(
        FeatureId::ASYNC_EVENT_CONFIG,
        AsyncEventConfig::NS_ATTRIBUTE,
        false,
    )
    .await
    .unwrap();
    let aen = ctrl.async_event_request().await.unwrap();
    t.call(
        "bdev_lvol_create",
        json!({"lvs_name": "lvs0", "lvol_name": "vol1", "size_in_mib": 64, "thin_provision": true}),
    )
    .await
    .unwrap();
    let nsid = t
        .call("nvmf_subsystem_add_ns", json!({"nqn": lamina_integration::fixtures::DEFAULT_NQN, "namespace": {"bdev_name": "lvs0/vol1"}}))
        .await
        .unwrap();
    assert_eq!(nsid, json!(2));
    assert_eq!(within(aen).await.unwrap(), AsyncEvent::NS_CHANGED);
    // Further changes are masked until the host reads the list; reading it clears it.
    let aen = ctrl.async_event_request().await.unwrap();
    let list = ctrl
        .get_log_page(LogPageId::CHANGED_NS_LIST, 0, 0, 4096, 0, false)
        .await
        .unwrap();
    assert_eq!(u32::from_le_bytes(list[0..4].try_into().unwrap()), 2);
    assert_eq!(u32::from_le_bytes(list[4..8].try_into().unwrap()), 0);
    assert_eq!(ctrl.active_namespaces(0).await.unwrap(), vec![1, 2]);

    // Resize of an exported lvol, then removal: one notice, both NSIDs in the list.
    t.call(
        "bdev_lvol_resize",
        json!({"name": "lvs0/vol1", "size_in_mib": 128}),
    )
    .await
    .unwrap();
    assert_eq!(within(aen).await.unwrap(), AsyncEvent::NS_CHANGED);
    assert_eq!(ctrl.identify_namespace(2).await.unwrap().nsze, 32_768);
    let lvol_delete = t
        .call("bdev_lvol_delete", json!({"name": "lvs0/vol1"}))
        .await
        .unwrap_err();
    assert!(
        lvol_delete.to_string().contains("namespace"),
        "an exported lvol cannot be deleted: {lvol_delete}"
    );
    let aen = ctrl.async_event_request().await.unwrap();
    ctrl.get_log_page(LogPageId::CHANGED_NS_LIST, 0, 0, 4096, 0, false)
        .await
        .unwrap();
    t.call(
        "nvmf_subsystem_remove_ns",
        json!({"nqn": lamina_integration::fixtures::DEFAULT_NQN, "nsid": 2}),
    )
    .await
    .unwrap();
    assert_eq!(within(aen).await.unwrap(), AsyncEvent::NS_CHANGED);
    assert_eq!(ctrl.active_namespaces(0).await.unwrap(), vec![1]);
    t.call("bdev_lvol_delete", json!({"name": "lvs0/vol1"}))
        .await
        .unwrap();
    ctrl.shutdown().await.unwrap();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_removal_waits_for_in_flight_io() {
    let t = TestTarget::start().await;
    let mut opts = t.options();
    opts.io_queue_size = 128;
    let ctrl = Controller::connect(t.addr(), opts).await.unwrap();
    let ns = ctrl.namespace(1).await.unwrap();
    let q = ctrl.io_queue(0).unwrap().clone();
    // Keep a stream of 128 KiB writes in flight while the namespace is removed.
    let done = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let writer = tokio::spawn({
        let done = Arc::clone(&done);
        async move {
            let mut ok = 0u32;
            let mut refused = 0u32;
            for i in 0..400u64 {
                match q
                    .write(&ns, (i % 64) * 32, Bytes::from(vec![9u8; 131_072]), false)
                    .await
                {
                    Ok(()) => ok += 1,
                    Err(e) if e.is_status(StatusCode::INVALID_NAMESPACE_OR_FORMAT) => refused += 1,
                    Err(e) => panic!("unexpected failure: {e}"),
                }
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            (ok, refused)
        }
    });
    // Remove once the stream is flowing (some writes completed, the rest in flight).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while done.load(std::sync::atomic::Ordering::SeqCst) < 8 {
        assert!(
            std::time::Instant::now() < deadline,
            "the writes never started"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    t.call(
        "nvmf_subsystem_remove_ns",
        json!({"nqn": lamina_integration::fixtures::DEFAULT_NQN, "nsid": 1}),
    )
    .await
    .unwrap();
    let (ok, refused) = writer.await.unwrap();
    assert_eq!(ok + refused, 400);
    assert!(refused > 0, "commands after removal are refused");
    // Removed and drained: the lvol can go now.
    t.call("bdev_lvol_delete", json!({"name": "lvs0/vol0"}))
        .await
        .unwrap();
    ctrl.shutdown().await.unwrap();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_expiry_tears_the_controller_down_and_the_host_reconnects() {
    let t = TestTarget::start().await;
    let mut opts = t.options();
    opts.kato_ms = 1000;
    let ctrl = Controller::connect(t.addr(), opts.clone()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    ctrl.keep_alive()
        .await
        .expect("keep-alives keep the controller");
    ctrl.set_keep_alive(false);
    tokio::time::timeout(Duration::from_secs(5), ctrl.admin().closed())
        .await
        .expect("the target closes the admin queue after KATO");
    tokio::time::timeout(Duration::from_secs(5), ctrl.io_queue(0).unwrap().closed())
        .await
        .expect("and every I/O queue of the controller");
    let stats = &t.running().target.transport_stats;
    assert_eq!(
        stats
            .kato_expiries
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let again = Controller::connect(t.addr(), opts).await.unwrap();
    assert_ne!(again.cntlid(), ctrl.cntlid());
    again.shutdown().await.unwrap();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_data_and_configuration() {
    let t = TestTarget::start().await;
    t.call(
        "bdev_lvol_create",
        json!({"lvs_name": "lvs0", "lvol_name": "vol1", "size_in_mib": 16}),
    )
    .await
    .unwrap();
    t.call("nvmf_subsystem_add_ns", json!({"nqn": lamina_integration::fixtures::DEFAULT_NQN, "namespace": {"bdev_name": "lvs0/vol1", "nsid": 5}})).await.unwrap();
    let ctrl = t.connect().await.unwrap();
    let ns1 = ctrl.namespace(1).await.unwrap();
    let ns5 = ctrl.namespace(5).await.unwrap();
    let q = ctrl.io_queue(0).unwrap();
    let a = Bytes::from((0..65_536u32).map(|i| (i % 251) as u8).collect::<Vec<_>>());
    let b = Bytes::from(vec![0x77u8; 8192]);
    q.write(&ns1, 100, a.clone(), false).await.unwrap();
    q.write(&ns5, 7, b.clone(), true).await.unwrap();
    q.flush(1).await.unwrap();
    let nguid = ctrl.identify_namespace(1).await.unwrap().nguid;
    ctrl.shutdown().await.unwrap();

    let t = t.restart().await;
    let ctrl = t.connect().await.unwrap();
    assert_eq!(ctrl.active_namespaces(0).await.unwrap(), vec![1, 5]);
    assert_eq!(
        ctrl.identify_namespace(1).await.unwrap().nguid,
        nguid,
        "stable across restarts"
    );
    let ns1 = ctrl.namespace(1).await.unwrap();
    let ns5 = ctrl.namespace(5).await.unwrap();
    let q = ctrl.io_queue(0).unwrap();
    assert_eq!(
        q.read(&ns1, 100, 16, BytesMut::new())
            .await
            .unwrap()
            .freeze(),
        a
    );
    assert_eq!(
        q.read(&ns5, 7, 2, BytesMut::new()).await.unwrap().freeze(),
        b
    );
    ctrl.shutdown().await.unwrap();
    t.stop().await;
}

/// What each controller type advertises, it serves (issue 13 §1): the log pages its LPA and
/// OAES promise, and the Identify CNS values it answers; a Compare miscompare is the
/// command's answer and never counts as a media error in the SMART log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advertised_log_pages_are_served_on_every_controller_type() {
    use lamina_integration::host::ConnectOptions;
    let pattern = |seed: u8, len: usize| Bytes::from(vec![seed; len]);
    let t = TestTarget::start().await;
    let nvm = t.connect().await.unwrap();
    let disc = Controller::connect(
        t.addr(),
        ConnectOptions::new(lamina_protocol::nvme::DISCOVERY_NQN).unwrap(),
    )
    .await
    .unwrap();
    for (what, ctrl) in [("nvm", &nvm), ("discovery", &disc)] {
        let id = ctrl.identity().clone();
        let mut pages = vec![LogPageId::ERROR_INFO];
        if id.lpa & (1 << 1) != 0 {
            pages.push(LogPageId::COMMANDS_EFFECTS);
        }
        if id.oaes & (1 << 8) != 0 {
            pages.push(LogPageId::CHANGED_NS_LIST);
        }
        if id.oaes & (1 << 31) != 0 {
            pages.push(LogPageId::DISCOVERY);
        }
        if what == "nvm" {
            pages.extend([LogPageId::SMART, LogPageId::FIRMWARE_SLOT]);
        }
        for lid in pages {
            ctrl.get_log_page(lid, 0xffff_ffff, 0, 512, 0, true)
                .await
                .unwrap_or_else(|e| panic!("{what}: log page {lid:?} is advertised: {e}"));
        }
    }
    // A miscompare is not a media error.
    let ns = nvm.namespace(1).await.unwrap();
    let q = nvm.io_queue(0).unwrap();
    q.write(&ns, 8, pattern(3, 4096), false).await.unwrap();
    assert!(!q.compare(&ns, 8, pattern(4, 4096)).await.unwrap());
    let raw = nvm
        .get_log_page(LogPageId::SMART, 0xffff_ffff, 0, 512, 0, false)
        .await
        .unwrap();
    let smart = SmartLog::decode(&raw).unwrap();
    assert_eq!(
        smart.media_errors, 0,
        "a miscompare counted as a media error"
    );
    disc.shutdown().await.unwrap();
    nvm.shutdown().await.unwrap();
    t.stop().await;
}
