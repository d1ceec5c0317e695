//! The methods operators use daily, against an in-process target with the embedded default
//! and I/O from the Rust initiator: `bdev_get_iostat` counts exactly what the host did and
//! `bdev_reset_iostat` moves only the RPC view (the metrics stay monotonic), the SPDK-format
//! histogram counts what it was asked to, `bdev_null_resize`/`bdev_aio_rescan` reach the host's
//! Identify data and refuse to shrink a held bdev, the notification log reports bdevs coming
//! and going in order, `bdev_get_bdevs` carries SPDK's fields, and the runtime methods
//! describe real workers. The log methods need the binary's logging (the SPDK client suite
//! drives them); here they say why they cannot act.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; a panic is a failure
#![allow(clippy::float_cmp)] // counters are integers carried as f64: exact comparison is meant
#![allow(clippy::many_single_char_names)] // t(arget), c(lient), q(ueue), e(rror), s(tat): one each

mod metrics_support;

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use lamina_integration::host::{Namespace, Queue};
use lamina_protocol::nvme::DsmRange;
use lamina_target::mgmt::rpc::client::{ClientError, RpcClient};
use metrics_support::{Metered, NQN, call};
use serde_json::{Value, json};

/// Calls `method` expecting the JSON-RPC error `code`; returns its message.
async fn fails(c: &mut RpcClient, method: &str, params: Value, code: i32) -> String {
    match c.call(method, Some(params)).await {
        Err(ClientError::Rpc(e)) => {
            assert_eq!(e.code, code, "{method}: {}", e.message);
            e.message
        }
        other => panic!("{method}: expected error {code}, got {other:?}"),
    }
}

/// The `bdev_get_iostat` element of `name` (its bdev name) in `all`.
fn stat<'a>(all: &'a Value, name: &str) -> &'a Value {
    all["bdevs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {all}"))
}

/// The default lvol's bdev name (its UUID) and its lvstore's base bdev.
async fn default_bdevs(c: &mut RpcClient) -> (String, String) {
    let bdevs = call(c, "bdev_get_bdevs", json!({})).await;
    let lvol = bdevs
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["product_name"] == "Logical Volume")
        .unwrap();
    (
        lvol["name"].as_str().unwrap().to_owned(),
        lvol["driver_specific"]["lvol"]["base_bdev"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

async fn writes(q: &Queue, ns: &Namespace, n: u64) {
    let block = Bytes::from(vec![0xa5; usize::try_from(ns.block_size).unwrap()]);
    for i in 0..n {
        q.write(ns, i, block.clone(), false).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iostat_counts_the_io_and_a_reset_moves_only_the_view() {
    let t = Metered::start().await;
    let mut c = t.rpc().await;
    let (lvol, base) = default_bdevs(&mut c).await;
    let host = t.host(1).await;
    let ns = host.namespace(1).await.unwrap();
    let q = host.io_queue(0).unwrap();
    let bs = u64::from(ns.block_size);
    writes(q, &ns, 12).await;
    for i in 0..7 {
        q.read(&ns, i, 2, BytesMut::new()).await.unwrap();
    }
    let range = DsmRange {
        context_attributes: 0,
        nlb: 8,
        slba: 64,
    };
    q.dataset_management(1, &[range], true).await.unwrap();
    assert!(q.read(&ns, ns.blocks, 1, BytesMut::new()).await.is_err());

    let all = call(&mut c, "bdev_get_iostat", json!({"per_channel": false})).await;
    assert_eq!(all["tick_rate"], 1_000_000_000u64);
    for name in [&lvol, &base] {
        let s = stat(&all, name);
        assert_eq!(s["num_write_ops"], 12, "{name}: {s}");
        assert_eq!(s["bytes_written"], 12 * bs);
        assert_eq!(
            s["num_read_ops"], 8,
            "the failed read is counted, and in io_error"
        );
        assert_eq!(s["bytes_read"], 14 * bs);
        assert_eq!(s["num_unmap_ops"], 1);
        assert_eq!(s["bytes_unmapped"], 8 * bs);
        assert_eq!(s["io_error"], json!({"lba_out_of_range": 1}));
        let (max, min, sum) = (
            s["max_write_latency_ticks"].as_u64().unwrap(),
            s["min_write_latency_ticks"].as_u64().unwrap(),
            s["write_latency_ticks"].as_u64().unwrap(),
        );
        assert!(0 < min && min <= max && max <= sum, "{s}");
        assert_eq!(s["queue_depth"], 0);
    }
    // By alias too, reported under its bdev name; an unknown name is ENODEV.
    let one = call(&mut c, "bdev_get_iostat", json!({"names": ["lvs0/vol0"]})).await;
    assert_eq!(one["bdevs"].as_array().unwrap().len(), 1);
    assert_eq!(one["bdevs"][0]["name"], lvol.as_str());
    let e = fails(&mut c, "bdev_get_iostat", json!({"names": ["nope"]}), -19).await;
    assert!(e.contains("nope"), "{e}");
    let e = fails(
        &mut c,
        "bdev_get_iostat",
        json!({"per_channel": true}),
        -32602,
    )
    .await;
    assert!(e.contains("per_channel"), "{e}");

    // Error reset: errors go, counts stay.
    call(
        &mut c,
        "bdev_reset_iostat",
        json!({"name": lvol, "mode": "error"}),
    )
    .await;
    let s = call(&mut c, "bdev_get_iostat", json!({"names": [lvol]})).await;
    assert_eq!(s["bdevs"][0]["io_error"], json!({}));
    assert_eq!(s["bdevs"][0]["num_write_ops"], 12);
    // Reading with reset_mode maxmin answers the old extremes, then clears them.
    let s = call(
        &mut c,
        "bdev_get_iostat",
        json!({"names": [lvol], "reset_mode": "maxmin"}),
    )
    .await;
    assert_ne!(s["bdevs"][0]["max_read_latency_ticks"], 0);
    let s = call(&mut c, "bdev_get_iostat", json!({"names": [lvol]})).await;
    assert_eq!(s["bdevs"][0]["max_read_latency_ticks"], 0);
    assert_eq!(s["bdevs"][0]["num_read_ops"], 8);
    // A full reset of every bdev; the metrics counters go on.
    assert_eq!(call(&mut c, "bdev_reset_iostat", json!({})).await, true);
    let s = call(&mut c, "bdev_get_iostat", json!({})).await;
    assert_eq!(stat(&s, &lvol)["num_write_ops"], 0);
    assert_eq!(stat(&s, &base)["bytes_read"], 0);
    writes(q, &ns, 3).await;
    let s = call(&mut c, "bdev_get_iostat", json!({"names": [lvol]})).await;
    assert_eq!(s["bdevs"][0]["num_write_ops"], 3);
    let e = t.scrape().await;
    let w = [("subsystem", NQN), ("nsid", "1"), ("opcode", "write")];
    assert_eq!(e.value("lamina_commands_total", &w), 15.0);
    let e = fails(&mut c, "bdev_reset_iostat", json!({"mode": "some"}), -32602).await;
    assert!(e.contains("some"), "{e}");
    host.shutdown().await.unwrap();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_histogram_counts_its_class_in_spdks_layout() {
    let t = Metered::start().await;
    let mut c = t.rpc().await;
    let (lvol, _) = default_bdevs(&mut c).await;
    let e = fails(&mut c, "bdev_get_histogram", json!({"name": lvol}), -22).await;
    assert!(e.contains("not enabled"), "{e}");
    let e = fails(
        &mut c,
        "bdev_enable_histogram",
        json!({"name": lvol, "enable": true, "opc": "zcopy"}),
        -32602,
    )
    .await;
    assert!(e.contains("zcopy"), "{e}");
    call(
        &mut c,
        "bdev_enable_histogram",
        json!({"name": "lvs0/vol0", "enable": true, "opc": "write"}),
    )
    .await;
    let host = t.host(1).await;
    let ns = host.namespace(1).await.unwrap();
    let q = host.io_queue(0).unwrap();
    writes(q, &ns, 9).await;
    q.read(&ns, 0, 1, BytesMut::new()).await.unwrap();
    let h = call(&mut c, "bdev_get_histogram", json!({"name": lvol})).await;
    assert_eq!(h["granularity"], 7);
    assert_eq!(
        (h["min_range"].as_u64(), h["max_range"].as_u64()),
        (Some(3), Some(30))
    );
    assert_eq!(h["tsc_rate"], 1_000_000_000u64);
    let raw = base64::engine::general_purpose::STANDARD
        .decode(h["histogram"].as_str().unwrap())
        .unwrap();
    assert_eq!(raw.len(), 28 * 128 * 8);
    let total: u64 = raw
        .chunks_exact(8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
        .sum();
    assert_eq!(total, 9, "the writes only");
    call(
        &mut c,
        "bdev_enable_histogram",
        json!({"name": lvol, "enable": false}),
    )
    .await;
    fails(&mut c, "bdev_get_histogram", json!({"name": lvol}), -22).await;
    // A bdev no namespace exports has no I/O to measure.
    call(
        &mut c,
        "bdev_malloc_create",
        json!({"name": "M0", "num_blocks": 2048, "block_size": 512}),
    )
    .await;
    let e = fails(
        &mut c,
        "bdev_enable_histogram",
        json!({"name": "M0", "enable": true}),
        -19,
    )
    .await;
    assert!(e.contains("namespace"), "{e}");
    host.shutdown().await.unwrap();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resizes_reach_the_host_and_a_held_bdev_does_not_shrink() {
    let t = Metered::start().await;
    let mut c = t.rpc().await;
    call(
        &mut c,
        "bdev_null_create",
        json!({"name": "N0", "num_blocks": 32768, "block_size": 512}),
    )
    .await;
    call(
        &mut c,
        "nvmf_subsystem_add_ns",
        json!({"nqn": NQN, "namespace": {"bdev_name": "N0", "nsid": 2}}),
    )
    .await;
    let host = t.host(1).await;
    assert_eq!(host.namespace(2).await.unwrap().blocks, 32768);
    call(
        &mut c,
        "bdev_null_resize",
        json!({"name": "N0", "new_size": 32}),
    )
    .await;
    assert_eq!(host.namespace(2).await.unwrap().blocks, 65536);
    let e = fails(
        &mut c,
        "bdev_null_resize",
        json!({"name": "N0", "new_size": 8}),
        -16,
    )
    .await;
    assert!(e.contains("shrink"), "{e}");
    let b = call(&mut c, "bdev_get_bdevs", json!({"name": "N0"})).await;
    assert_eq!(b[0]["num_blocks"], 65536);
    assert_eq!(b[0]["assigned_rate_limits"]["rw_ios_per_sec"], 0);
    assert_eq!(b[0]["supported_io_types"]["unmap"], true);
    assert_eq!(b[0]["supported_io_types"]["zcopy"], false);
    fails(
        &mut c,
        "bdev_null_resize",
        json!({"name": "lvs0/vol0", "new_size": 8}),
        -19,
    )
    .await;

    // aio: the file grows, a rescan adopts it; an lvstore on it holds it against shrinking.
    let path = t.dir.path().join("data").join("aio0.img");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(8 << 20).unwrap();
    call(
        &mut c,
        "bdev_aio_create",
        json!({"name": "A0", "filename": path, "block_size": 4096}),
    )
    .await;
    f.set_len(16 << 20).unwrap();
    call(&mut c, "bdev_aio_rescan", json!({"name": "A0"})).await;
    let b = call(&mut c, "bdev_get_bdevs", json!({"name": "A0"})).await;
    assert_eq!(b[0]["num_blocks"], 4096);
    call(
        &mut c,
        "bdev_lvol_create_lvstore",
        json!({"bdev_name": "A0", "lvs_name": "small", "cluster_sz": 1_048_576}),
    )
    .await;
    f.set_len(4 << 20).unwrap();
    let e = fails(&mut c, "bdev_aio_rescan", json!({"name": "A0"}), -16).await;
    assert!(e.contains("lvstore"), "{e}");
    let b = call(&mut c, "bdev_get_bdevs", json!({"name": "A0"})).await;
    assert_eq!(b[0]["num_blocks"], 4096, "the size stays");
    fails(&mut c, "bdev_aio_rescan", json!({"name": "N0"}), -19).await;
    host.shutdown().await.unwrap();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_report_bdevs_coming_and_going_in_order() {
    let t = Metered::start().await;
    let mut c = t.rpc().await;
    assert_eq!(
        call(&mut c, "notify_get_types", json!({})).await,
        json!(["bdev_register", "bdev_unregister"])
    );
    let before = call(&mut c, "notify_get_notifications", json!({})).await;
    let before = before.as_array().unwrap();
    assert!(
        before.iter().all(|e| e["type"] == "bdev_register"),
        "the embedded default's bdevs: {before:?}"
    );
    let next = before.len() as u64;
    call(
        &mut c,
        "bdev_malloc_create",
        json!({"name": "M1", "num_blocks": 2048, "block_size": 512}),
    )
    .await;
    call(&mut c, "bdev_malloc_delete", json!({"name": "M1"})).await;
    let after = call(&mut c, "notify_get_notifications", json!({"id": next})).await;
    assert_eq!(
        after,
        json!([
            {"id": next, "type": "bdev_register", "ctx": "M1"},
            {"id": next + 1, "type": "bdev_unregister", "ctx": "M1"},
        ])
    );
    let one = call(
        &mut c,
        "notify_get_notifications",
        json!({"id": 0, "max": 1}),
    )
    .await;
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["id"], 0);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_methods_describe_the_workers_and_the_log_methods_say_why_not() {
    let t = Metered::start().await;
    let mut c = t.rpc().await;
    let r = call(&mut c, "framework_get_reactors", json!({})).await;
    let reactors = r["reactors"].as_array().unwrap();
    assert_eq!(reactors.len(), 2, "one per worker thread: {r}");
    assert_eq!(r["pid"], std::process::id());
    for w in reactors {
        let alive = w["busy"].as_u64().unwrap() + w["idle"].as_u64().unwrap();
        assert!(alive > 0, "{w}");
        assert_eq!(w["in_interrupt"], true);
    }
    let s = call(&mut c, "thread_get_stats", json!({})).await;
    let threads = s["threads"].as_array().unwrap();
    assert_eq!(threads.len(), 2);
    assert_eq!(threads[0]["name"], "lamina-worker-0");
    assert_eq!(threads[1]["active_pollers_count"], 0);
    // This test process did not set up Lamina's logging: the log methods refuse, saying so.
    let e = fails(&mut c, "log_get_level", json!({}), -95).await;
    assert!(e.contains("not set up by Lamina"), "{e}");
    fails(&mut c, "log_set_level", json!({"level": "DEBUG"}), -95).await;
    t.stop().await;
}
