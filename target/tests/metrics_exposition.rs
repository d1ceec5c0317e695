//! The exposition against a real in-process target: every declared metric is exposed with its
//! type and labels, nothing undeclared is, and the values match the I/O, connections and
//! management calls done through the Rust initiator and the RPC socket; TermReqs and keep-alive
//! expiries are counted. Series of deleted objects disappear; `/readyz` follows the lifecycle.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; a panic is a failure
#![allow(clippy::float_cmp)] // counters are integers carried as f64: exact comparison is meant

mod metrics_support;

use std::collections::BTreeSet;

use bytes::{Bytes, BytesMut};
use lamina_integration::host::{ConnectOptions, Controller, Namespace, Queue, RawHost};
use lamina_protocol::nvme::{DsmRange, StatusCode};
use lamina_protocol::tcp::{Fes, IcReq};
use lamina_target::observe::metrics::catalog::{CATALOG, Kind};
use metrics_support::{Exposition, Metered, NQN, call, http_get};
use serde_json::json;

const WRITES: u64 = 40;
const READS: u64 = 25;

/// Checks every family against the catalog: declared, right type, exactly its labels.
fn check_against_catalog(e: &Exposition) {
    for def in CATALOG {
        let kind = e.types.get(def.name);
        assert_eq!(
            kind.map(String::as_str),
            Some(def.kind.as_str()),
            "{} not exposed as a {}",
            def.name,
            def.kind.as_str()
        );
        let want: BTreeSet<&str> = def.labels.iter().copied().collect();
        let samples: Vec<_> = e
            .samples
            .iter()
            .filter(|s| {
                s.name.strip_prefix(def.name).is_some_and(|r| {
                    r.is_empty() || r.starts_with("_b") || r == "_sum" || r == "_count"
                })
            })
            .collect();
        assert!(!samples.is_empty(), "{} has no samples", def.name);
        for s in samples {
            let mut got: BTreeSet<&str> = s.labels.keys().map(String::as_str).collect();
            if def.kind == Kind::Histogram && s.name.ends_with("_bucket") {
                assert!(got.remove("le"), "{s:?}");
            }
            assert_eq!(got, want, "{s:?}");
        }
    }
    for name in e.types.keys() {
        assert!(
            name.starts_with("process_") || CATALOG.iter().any(|d| d.name == name),
            "{name} is exposed but not declared in the catalog"
        );
    }
}

/// Histogram invariants: cumulative buckets never decrease, `+Inf` equals `_count`.
fn check_histograms(e: &Exposition, family: &str) {
    let count_name = format!("{family}_count");
    let bucket_name = format!("{family}_bucket");
    let counts: Vec<_> = e.find(&count_name, &[]).collect();
    assert!(!counts.is_empty());
    for c in counts {
        let base: Vec<(&str, &str)> = c
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut buckets: Vec<(f64, f64)> = e
            .find(&bucket_name, &base)
            .map(|b| {
                let le = &b.labels["le"];
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                (le, b.value)
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{buckets:?}");
        let inf = buckets.last().unwrap();
        assert!(inf.0.is_infinite());
        assert!((inf.1 - c.value).abs() < f64::EPSILON, "{family}{base:?}");
    }
}

/// Every I/O opcode class once or more, and one failure (a read past the end).
async fn do_io(q: &Queue, ns: &Namespace) {
    let block = Bytes::from(vec![0x5a; usize::try_from(ns.block_size).unwrap()]);
    for i in 0..WRITES {
        q.write(ns, i, block.clone(), false).await.unwrap();
    }
    for i in 0..READS {
        let data = q.read(ns, i, 1, BytesMut::new()).await.unwrap();
        assert_eq!(data.len(), block.len());
    }
    q.flush(1).await.unwrap();
    q.write_zeroes(ns, 100, 2, false, false).await.unwrap();
    let range = DsmRange {
        context_attributes: 0,
        nlb: 1,
        slba: 200,
    };
    q.dataset_management(1, &[range], true).await.unwrap();
    assert!(q.compare(ns, 0, block).await.unwrap());
    let err = q.read(ns, ns.blocks, 1, BytesMut::new()).await.unwrap_err();
    assert!(err.is_status(StatusCode::LBA_OUT_OF_RANGE), "{err}");
}

/// The namespace series count exactly what [`do_io`] did.
fn check_namespace(e: &Exposition, ns: &Namespace) {
    let bs = u64::from(ns.block_size);
    let ns1 = [("subsystem", NQN), ("nsid", "1")];
    let op = |o: &'static str| [("subsystem", NQN), ("nsid", "1"), ("opcode", o)];
    let v = |name: &str, l: &[(&str, &str)]| e.value(name, l);
    assert_eq!(v("lamina_commands_total", &op("write")), WRITES as f64);
    assert_eq!(v("lamina_commands_total", &op("read")), (READS + 1) as f64);
    for one in ["flush", "write_zeroes", "dsm", "other"] {
        assert_eq!(v("lamina_commands_total", &op(one)), 1.0, "{one}");
    }
    let count = v("lamina_command_duration_seconds_count", &op("write"));
    assert_eq!(count, WRITES as f64);
    assert!(v("lamina_command_duration_seconds_sum", &op("write")) > 0.0);
    assert_eq!(v("lamina_written_bytes_total", &ns1), (WRITES * bs) as f64);
    assert_eq!(v("lamina_read_bytes_total", &ns1), (READS * bs) as f64);
    let status = [
        ("subsystem", NQN),
        ("nsid", "1"),
        ("status", "lba_out_of_range"),
    ];
    assert_eq!(v("lamina_command_errors_total", &status), 1.0);
    assert_eq!(e.sum("lamina_command_errors_total", &ns1), 1.0);
    assert_eq!(v("lamina_commands_in_flight", &ns1), 0.0);
    let size = (ns.blocks * bs) as f64;
    assert_eq!(v("lamina_namespace_size_bytes", &ns1), size);
    assert_eq!(v("lamina_subsystem_namespaces", &[("subsystem", NQN)]), 1.0);
}

/// One admin queue and one I/O queue, each its own connection, and no transport error.
fn check_transport(e: &Exposition) {
    let v = |name: &str, l: &[(&str, &str)]| e.value(name, l);
    assert_eq!(v("lamina_connections", &[]), 2.0);
    assert_eq!(v("lamina_connections_accepted_total", &[]), 2.0);
    assert_eq!(v("lamina_queues", &[("type", "admin")]), 1.0);
    assert_eq!(v("lamina_queues", &[("type", "io")]), 1.0);
    assert_eq!(v("lamina_controllers", &[("subsystem", NQN)]), 1.0);
    let admin = v("lamina_admin_commands_total", &[("subsystem", NQN)]);
    assert!(admin >= 3.0, "identify, features: {admin}");
    assert_eq!(v("lamina_pdus_received_total", &[("type", "ic_req")]), 2.0);
    assert_eq!(v("lamina_pdus_sent_total", &[("type", "ic_resp")]), 2.0);
    let capsules = v("lamina_pdus_received_total", &[("type", "capsule_cmd")]);
    assert!(capsules >= (WRITES + READS + 6) as f64);
    assert!(v("lamina_pdus_sent_total", &[("type", "c2h_data")]) >= READS as f64);
    assert_eq!(e.sum("lamina_term_reqs_sent_total", &[]), 0.0);
    assert_eq!(e.sum("lamina_digest_errors_total", &[]), 0.0);
}

/// The namespace joins its lvol through the uuid label; the thin lvol owns what was written,
/// and the lvstore's numbers add up.
fn check_volumes(e: &Exposition, ns: &Namespace) {
    let v = |name: &str, l: &[(&str, &str)]| e.value(name, l);
    let info: Vec<_> = e
        .find(
            "lamina_namespace_info",
            &[("subsystem", NQN), ("nsid", "1")],
        )
        .collect();
    assert_eq!(info.len(), 1);
    let uuid = info[0].labels["uuid"].as_str();
    let bdev = info[0].labels["bdev"].as_str();
    assert!(
        bdev == "lvs0/vol0" || bdev == uuid,
        "the lvol as management named it: {bdev}"
    );
    let vol = [("lvstore", "lvs0"), ("lvol", "vol0"), ("uuid", uuid)];
    assert_eq!(v("lamina_lvol_thin_provisioned", &vol), 1.0);
    for flag in [
        "lamina_lvol_snapshot",
        "lamina_lvol_clone",
        "lamina_lvol_read_only",
    ] {
        assert_eq!(v(flag, &vol), 0.0, "{flag}");
    }
    let size = (ns.blocks * u64::from(ns.block_size)) as f64;
    assert_eq!(v("lamina_lvol_size_bytes", &vol), size);
    let clusters = v("lamina_lvol_allocated_clusters", &vol);
    assert!(clusters >= 1.0, "writes allocate clusters of a thin lvol");
    let lvs = [("lvstore", "lvs0")];
    let cluster = v("lamina_lvstore_cluster_size_bytes", &lvs);
    assert_eq!(v("lamina_lvol_allocated_bytes", &vol), clusters * cluster);
    let total = v("lamina_lvstore_data_clusters", &lvs);
    let free = v("lamina_lvstore_free_clusters", &lvs);
    assert!(free <= total - clusters);
    assert_eq!(v("lamina_lvstore_size_bytes", &lvs), total * cluster);
    assert_eq!(v("lamina_lvstore_free_bytes", &lvs), free * cluster);
    assert_eq!(v("lamina_lvstore_lvols", &lvs), 1.0);
    assert_eq!(e.find("lamina_lvstore_info", &lvs).count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exposition_matches_the_io_done() {
    let t = Metered::start().await;
    let host = t.host(1).await;
    let ns = host.namespace(1).await.unwrap();
    do_io(host.io_queue(0).unwrap(), &ns).await;

    let e = t.scrape().await;
    check_against_catalog(&e);
    check_histograms(&e, "lamina_command_duration_seconds");
    check_histograms(&e, "lamina_rpc_request_duration_seconds");
    check_namespace(&e, &ns);
    check_transport(&e);
    check_volumes(&e, &ns);
    // The embedded default was built through RPC; those calls are counted.
    let ok = [("method", "bdev_lvol_create"), ("result", "ok")];
    assert_eq!(e.value("lamina_rpc_requests_total", &ok), 1.0);
    let version = [("version", lamina_target::VERSION)];
    assert_eq!(e.value("lamina_build_info", &version), 1.0);
    assert_eq!(e.value("lamina_io_stats_enabled", &[]), 1.0);
    assert!(e.has("process_resident_memory_bytes", &[]));

    host.shutdown().await.unwrap();
    let e = t
        .scrape_until(|e| e.value("lamina_connections", &[]) == 0.0)
        .await;
    assert_eq!(e.sum("lamina_queues", &[]), 0.0);
    assert_eq!(e.value("lamina_controllers", &[("subsystem", NQN)]), 0.0);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_of_deleted_objects_disappear() {
    let t = Metered::start().await;
    let mut rpc = t.rpc().await;
    let nqn2 = "nqn.2026-11.io.lamina:metrics-gone";
    call(
        &mut rpc,
        "bdev_lvol_create",
        json!({"lvs_name": "lvs0", "lvol_name": "gone",
        "size_in_mib": 8, "thin_provision": true}),
    )
    .await;
    call(
        &mut rpc,
        "nvmf_create_subsystem",
        json!({"nqn": nqn2, "allow_any_host": true}),
    )
    .await;
    call(
        &mut rpc,
        "nvmf_subsystem_add_ns",
        json!({"nqn": nqn2,
        "namespace": {"bdev_name": "lvs0/gone", "nsid": 7}}),
    )
    .await;
    let e = t.scrape().await;
    let ns7 = [("subsystem", nqn2), ("nsid", "7")];
    assert_eq!(e.find("lamina_commands_total", &ns7).count(), 6);
    assert!(e.has("lamina_lvol_size_bytes", &[("lvol", "gone")]));
    assert!(e.has("lamina_controllers", &[("subsystem", nqn2)]));
    assert_eq!(e.value("lamina_lvstore_lvols", &[("lvstore", "lvs0")]), 2.0);

    call(
        &mut rpc,
        "nvmf_subsystem_remove_ns",
        json!({"nqn": nqn2, "nsid": 7}),
    )
    .await;
    let e = t.scrape().await;
    assert!(!e.has("lamina_commands_total", &ns7));
    assert!(!e.has("lamina_namespace_info", &ns7));
    assert_eq!(
        e.value("lamina_subsystem_namespaces", &[("subsystem", nqn2)]),
        0.0
    );

    call(&mut rpc, "bdev_lvol_delete", json!({"name": "lvs0/gone"})).await;
    call(&mut rpc, "nvmf_delete_subsystem", json!({"nqn": nqn2})).await;
    let e = t.scrape().await;
    assert!(!e.has("lamina_lvol_size_bytes", &[("lvol", "gone")]));
    assert!(
        !e.samples
            .iter()
            .any(|s| s.labels.get("subsystem").is_some_and(|v| v == nqn2))
    );
    assert_eq!(e.value("lamina_lvstore_lvols", &[("lvstore", "lvs0")]), 1.0);
    // The calls above are counted, including a failed one.
    assert!(
        rpc.call("bdev_lvol_delete", Some(json!({"name": "lvs0/gone"})))
            .await
            .is_err()
    );
    let e = t.scrape().await;
    let del = |r: &'static str| [("method", "bdev_lvol_delete"), ("result", r)];
    assert_eq!(e.value("lamina_rpc_requests_total", &del("ok")), 1.0);
    assert_eq!(e.value("lamina_rpc_requests_total", &del("error")), 1.0);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_failures_are_counted() {
    let t = Metered::start().await;
    // A PDU with a bad header length: C2HTermReq with Invalid Header Field, connection closed.
    let mut raw = RawHost::connect(t.nvme_addr()).await.unwrap();
    raw.handshake(IcReq::default()).await.unwrap();
    raw.send_bytes(&[4, 0, 71, 0, 72, 0, 0, 0]).await.unwrap();
    assert_eq!(
        raw.expect_term_req().await.unwrap().fes,
        Fes::INVALID_HEADER_FIELD
    );
    raw.expect_closed().await.unwrap();
    // A host that stops its keep-alives: the controller is torn down after KATO.
    let mut opts = ConnectOptions::new(NQN).unwrap();
    opts.kato_ms = 1_000;
    opts.io_queues = 0;
    let host = Controller::connect(t.nvme_addr(), opts).await.unwrap();
    host.set_keep_alive(false);
    let e = t
        .scrape_until(|e| e.value("lamina_keep_alive_expiries_total", &[]) == 1.0)
        .await;
    let fes = [("fes", "invalid_header_field")];
    assert_eq!(e.value("lamina_term_reqs_sent_total", &fes), 1.0);
    assert_eq!(e.sum("lamina_term_reqs_sent_total", &[]), 1.0);
    let term = [("type", "c2h_term_req")];
    assert_eq!(e.value("lamina_pdus_sent_total", &term), 1.0);
    let e = t
        .scrape_until(|e| e.value("lamina_connections", &[]) == 0.0)
        .await;
    assert_eq!(e.value("lamina_controllers", &[("subsystem", NQN)]), 0.0);
    assert_eq!(e.value("lamina_connections_accepted_total", &[]), 2.0);
    host.close();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_lifecycle() {
    let t = Metered::start().await;
    let addr = t.metrics_addr();
    assert_eq!(http_get(addr, "/healthz").await.0, 200);
    assert_eq!(http_get(addr, "/readyz").await.0, 200);
    assert_eq!(http_get(addr, "/nope").await.0, 404);
    let running = t.running;
    let stopping = tokio::spawn(async move {
        lamina_target::server::shutdown(&running).await;
        running
    });
    // While shutdown runs: ready goes 200 -> 503 and never back; health stays 200.
    let mut last = 200;
    while !stopping.is_finished() {
        let Ok((status, _)) = metrics_support::try_http_get(addr, "/readyz").await else {
            break; // the endpoint closed: shutdown is at its very end
        };
        assert!(status == 200 || status == 503, "{status}");
        assert!(
            !(last == 503 && status == 200),
            "ready again during shutdown"
        );
        last = status;
        tokio::task::yield_now().await;
    }
    let running = stopping.await.unwrap();
    assert!(!running.ready.is_ready());
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the endpoint stops once shutdown completes"
    );
}
