//! The seed scenario at the metrics level: scrapes in a loop while RPC clients create, export,
//! snapshot, clone, unexport and delete lvols and a host keeps I/O running. Every scrape must
//! be well formed (strict parse, no duplicate series, consistent histograms), counters of the
//! namespace that stays must never go backwards, and at the end no series of a deleted object
//! is left.
//!
//! Size it with `LAMINA_METRICS_RACE_ITERS` (iterations per worker, default 12) and
//! `LAMINA_METRICS_RACE_WORKERS` (default 3).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; a panic is a failure
#![allow(clippy::float_cmp)] // counters are integers carried as f64: exact comparison is meant

mod metrics_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use metrics_support::{Exposition, Metered, NQN, call};
use serde_json::json;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One worker's churn: every object it makes is gone when it returns.
async fn churn(t: &Metered, worker: u64, iterations: u64) {
    let mut rpc = t.rpc().await;
    for i in 0..iterations {
        let base = format!("race{worker}_{i}");
        let (snap, clone) = (format!("{base}_snap"), format!("{base}_clone"));
        call(
            &mut rpc,
            "bdev_lvol_create",
            json!({"lvs_name": "lvs0", "lvol_name": base,
            "size_in_mib": 4, "thin_provision": true}),
        )
        .await;
        let nsid = call(
            &mut rpc,
            "nvmf_subsystem_add_ns",
            json!({"nqn": NQN,
            "namespace": {"bdev_name": format!("lvs0/{base}")}}),
        )
        .await;
        call(
            &mut rpc,
            "bdev_lvol_snapshot",
            json!({"lvol_name": format!("lvs0/{base}"),
            "snapshot_name": snap}),
        )
        .await;
        call(
            &mut rpc,
            "bdev_lvol_clone",
            json!({"snapshot_name": format!("lvs0/{snap}"),
            "clone_name": clone}),
        )
        .await;
        call(
            &mut rpc,
            "nvmf_subsystem_remove_ns",
            json!({"nqn": NQN, "nsid": nsid}),
        )
        .await;
        for name in [clone, base, snap] {
            call(
                &mut rpc,
                "bdev_lvol_delete",
                json!({"name": format!("lvs0/{name}")}),
            )
            .await;
        }
    }
}

/// Checks one scrape and returns namespace 1's command count (must never decrease).
fn check(e: &Exposition) -> f64 {
    for s in e.find("lamina_command_duration_seconds_count", &[]) {
        let labels: Vec<(&str, &str)> = s
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let inf = e.value(
            "lamina_command_duration_seconds_bucket",
            &[labels.as_slice(), &[("le", "+Inf")]].concat(),
        );
        assert!((inf - s.value).abs() < f64::EPSILON, "{labels:?}");
    }
    // Every namespace in the scrape has its full set of series, or none.
    for info in e.find("lamina_namespace_info", &[]) {
        let id = [
            ("subsystem", info.labels["subsystem"].as_str()),
            ("nsid", info.labels["nsid"].as_str()),
        ];
        assert_eq!(e.find("lamina_commands_total", &id).count(), 6, "{id:?}");
    }
    let lvols = e.find("lamina_lvol_size_bytes", &[]).count();
    assert_eq!(e.find("lamina_lvol_allocated_clusters", &[]).count(), lvols);
    e.sum(
        "lamina_commands_total",
        &[("subsystem", NQN), ("nsid", "1")],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scraping_races_lvol_and_namespace_churn() {
    let iterations = env_or("LAMINA_METRICS_RACE_ITERS", 12);
    let workers = env_or("LAMINA_METRICS_RACE_WORKERS", 3);
    let t = Arc::new(Metered::start().await);
    let host = t.host(1).await;
    let ns = host.namespace(1).await.unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let scrapes = Arc::new(AtomicU64::new(0));

    let scrapers: Vec<_> = (0..2)
        .map(|_| {
            let (t, done, scrapes) = (t.clone(), done.clone(), scrapes.clone());
            tokio::spawn(async move {
                let mut last = 0.0;
                while !done.load(Ordering::Relaxed) {
                    let n = check(&t.scrape().await);
                    assert!(n >= last, "a counter went backwards: {last} -> {n}");
                    last = n;
                    scrapes.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let io = async {
        let q = host.io_queue(0).unwrap();
        let block = Bytes::from(vec![1u8; usize::try_from(ns.block_size).unwrap()]);
        let mut n = 0u64;
        while !done.load(Ordering::Relaxed) {
            q.write(&ns, n % 256, block.clone(), false).await.unwrap();
            n += 1;
        }
        n
    };
    let churn_all = async {
        futures::future::join_all((0..workers).map(|w| churn(&t, w, iterations))).await;
        done.store(true, Ordering::Relaxed);
    };
    let (writes, ()) = tokio::join!(io, churn_all);
    for s in scrapers {
        s.await.unwrap();
    }
    let scrapes = scrapes.load(Ordering::Relaxed);
    eprintln!("{scrapes} scrapes and {writes} writes during the churn");
    assert!(scrapes >= 2, "scrapes ran during the churn");

    let e = t.scrape().await;
    check(&e);
    assert!(
        !e.samples
            .iter()
            .any(|s| s.labels.get("lvol").is_some_and(|l| l.starts_with("race"))),
        "series of deleted lvols are left"
    );
    assert_eq!(e.find("lamina_namespace_info", &[]).count(), 1);
    assert_eq!(e.value("lamina_lvstore_lvols", &[("lvstore", "lvs0")]), 1.0);
    let write = [("subsystem", NQN), ("nsid", "1"), ("opcode", "write")];
    assert_eq!(e.value("lamina_commands_total", &write), writes as f64);
    let created = (workers * iterations) as f64;
    let ok = |m: &'static str| [("method", m), ("result", "ok")];
    assert_eq!(
        e.value("lamina_rpc_requests_total", &ok("bdev_lvol_snapshot")),
        created
    );
    // Three deletes per iteration.
    assert_eq!(
        e.value("lamina_rpc_requests_total", &ok("bdev_lvol_delete")),
        3.0 * created
    );
    host.shutdown().await.unwrap();
    t.scrape_until(|e| e.value("lamina_connections", &[]) == 0.0)
        .await;
    let Ok(t) = Arc::try_unwrap(t) else {
        panic!("fixture still shared")
    };
    t.stop().await;
}
