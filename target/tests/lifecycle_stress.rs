//! End-to-end lifecycle stress (issue 14 §3): three hosts write and verify their own data on
//! the default thin lvol while RPC clients create, export, snapshot, clone, unexport and
//! delete lvols, and create and destroy whole lvstores (on malloc bdevs) with lvols in them;
//! a lister validates every `bdev_get_bdevs` and `bdev_lvol_get_lvols` answer against the
//! lifecycle invariants, and a scraper parses every metrics scrape strictly.
//!
//! Invariants checked on every listing: no name twice; every `base_snapshot` and clone a
//! listing names is in the same listing, and the two directions agree; no lvol whose delete
//! (or whose lvstore's destroy) had returned appears again. At the end: every host's data
//! reads back, nothing of the churn is left, and the lvstore checks consistent.
//!
//! Bounded in time: `LAMINA_STRESS_SECS` (default 30) of churn, then the counts are printed;
//! a run that did fewer than `LAMINA_STRESS_MIN_OPS` (default 200) RPC operations fails (a
//! deadlock shows as that, or as a step timeout naming the actor).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; a panic is a failure

mod metrics_support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use lamina_integration::host::Controller;
use metrics_support::{Exposition, Metered, NQN, STEP_TIMEOUT, call};
use parking_lot::Mutex;
use serde_json::{Value, json};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Default)]
struct Counts {
    rpc_ops: AtomicU64,
    lvstores_destroyed: AtomicU64,
    listings: AtomicU64,
    scrapes: AtomicU64,
    host_ios: AtomicU64,
}

/// Names whose delete (or whose lvstore's destroy) returned: never listed again.
type Gone = Mutex<HashSet<String>>;

async fn step<T>(who: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(STEP_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| panic!("{who} hung for {STEP_TIMEOUT:?}"))
}

/// One RPC worker: lvol churn on lvs0, and every fifth round a whole lvstore on a malloc
/// bdev, with lvols, snapshot and clone in it, destroyed while they exist.
async fn rpc_worker(
    t: Arc<Metered>,
    w: u64,
    stop: Arc<AtomicBool>,
    gone: Arc<Gone>,
    n: Arc<Counts>,
) {
    let mut rpc = t.rpc().await;
    let mut round = 0u64;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let who = format!("rpc worker {w} round {round}");
        let base = format!("st{w}_{round}");
        let (snap, clone) = (format!("{base}_s"), format!("{base}_c"));
        let lvol = |name: &str| format!("lvs0/{name}");
        step(&who, async {
            call(
                &mut rpc,
                "bdev_lvol_create",
                json!({"lvs_name": "lvs0",
                "lvol_name": base, "size_in_mib": 4, "thin_provision": true}),
            )
            .await;
            let nsid = call(
                &mut rpc,
                "nvmf_subsystem_add_ns",
                json!({"nqn": NQN, "namespace": {"bdev_name": lvol(&base)}}),
            )
            .await;
            call(
                &mut rpc,
                "bdev_lvol_snapshot",
                json!({"lvol_name": lvol(&base), "snapshot_name": snap}),
            )
            .await;
            call(
                &mut rpc,
                "bdev_lvol_clone",
                json!({"snapshot_name": lvol(&snap), "clone_name": clone}),
            )
            .await;
            if round.is_multiple_of(3) {
                call(&mut rpc, "bdev_lvol_inflate", json!({"name": lvol(&clone)})).await;
            }
            call(
                &mut rpc,
                "nvmf_subsystem_remove_ns",
                json!({"nqn": NQN, "nsid": nsid}),
            )
            .await;
            for name in [&clone, &base, &snap] {
                call(&mut rpc, "bdev_lvol_delete", json!({"name": lvol(name)})).await;
                gone.lock().insert(lvol(name));
            }
        })
        .await;
        n.rpc_ops.fetch_add(9, Ordering::Relaxed);
        if round.is_multiple_of(5) {
            let (bdev, lvs) = (format!("m{w}_{round}"), format!("lvs{w}_{round}"));
            step(&who, async {
                call(
                    &mut rpc,
                    "bdev_malloc_create",
                    json!({"name": bdev, "num_blocks": 16384, "block_size": 4096}),
                )
                .await;
                call(
                    &mut rpc,
                    "bdev_lvol_create_lvstore",
                    json!({"bdev_name": bdev, "lvs_name": lvs, "cluster_sz": 1_048_576}),
                )
                .await;
                let mut names = Vec::new();
                for i in 0..3 {
                    let v = format!("x{i}");
                    call(
                        &mut rpc,
                        "bdev_lvol_create",
                        json!({"lvs_name": lvs,
                        "lvol_name": v, "size_in_mib": 4, "thin_provision": i % 2 == 0}),
                    )
                    .await;
                    names.push(format!("{lvs}/{v}"));
                }
                call(
                    &mut rpc,
                    "bdev_lvol_snapshot",
                    json!({"lvol_name": format!("{lvs}/x0"), "snapshot_name": "xs"}),
                )
                .await;
                call(
                    &mut rpc,
                    "bdev_lvol_clone",
                    json!({"snapshot_name": format!("{lvs}/xs"), "clone_name": "xc"}),
                )
                .await;
                names.extend([format!("{lvs}/xs"), format!("{lvs}/xc")]);
                call(
                    &mut rpc,
                    "bdev_lvol_delete_lvstore",
                    json!({"lvs_name": lvs}),
                )
                .await;
                gone.lock().extend(names);
                call(&mut rpc, "bdev_malloc_delete", json!({"name": bdev})).await;
            })
            .await;
            n.rpc_ops.fetch_add(11, Ordering::Relaxed);
            n.lvstores_destroyed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Validates one `bdev_get_bdevs` answer (lvol entries) against the invariants.
fn check_bdevs(bdevs: &Value, gone_before: &HashSet<String>) {
    let mut by_alias: HashMap<String, &Value> = HashMap::new();
    let mut store_of: HashMap<String, String> = HashMap::new();
    for b in bdevs.as_array().unwrap() {
        let Some(l) = b["driver_specific"].get("lvol") else {
            continue;
        };
        let alias = b["aliases"][0].as_str().unwrap().to_owned();
        assert!(
            !gone_before.contains(&alias),
            "{alias} is listed after its delete returned"
        );
        let lvs = alias.split('/').next().unwrap().to_owned();
        store_of.insert(
            alias.clone(),
            l["lvol_store_uuid"].as_str().unwrap().to_owned(),
        );
        assert!(
            by_alias.insert(alias.clone(), l).is_none(),
            "{alias} listed twice"
        );
        let _ = lvs;
    }
    for (alias, l) in &by_alias {
        let lvs = alias.split('/').next().unwrap();
        if let Some(parent) = l["base_snapshot"].as_str() {
            let p = format!("{lvs}/{parent}");
            let pl = by_alias
                .get(&p)
                .unwrap_or_else(|| panic!("{alias} names parent {p}, not in the same listing"));
            assert!(
                pl["clones"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c.as_str() == alias.split('/').nth(1)),
                "{p} does not list its clone {alias}"
            );
            assert_eq!(
                store_of[alias], store_of[&p],
                "{alias}: parent in another lvstore"
            );
        }
        for c in l["clones"].as_array().unwrap() {
            let c = format!("{lvs}/{}", c.as_str().unwrap());
            assert!(
                by_alias.contains_key(&c),
                "{alias} names clone {c}, not listed"
            );
        }
    }
}

async fn lister(t: Arc<Metered>, stop: Arc<AtomicBool>, gone: Arc<Gone>, n: Arc<Counts>) {
    let mut rpc = t.rpc().await;
    while !stop.load(Ordering::Relaxed) {
        let gone_before = gone.lock().clone();
        let bdevs = step("lister", call(&mut rpc, "bdev_get_bdevs", json!({}))).await;
        check_bdevs(&bdevs, &gone_before);
        let lvols = step("lister", call(&mut rpc, "bdev_lvol_get_lvols", json!({}))).await;
        let mut seen = HashSet::new();
        for l in lvols.as_array().unwrap() {
            let alias = l["alias"].as_str().unwrap().to_owned();
            assert!(
                !gone_before.contains(&alias),
                "{alias} listed after its delete"
            );
            assert!(seen.insert(alias.clone()), "{alias} listed twice");
        }
        let _ = step(
            "lister",
            call(&mut rpc, "bdev_lvol_get_lvstores", json!({})),
        )
        .await;
        n.listings.fetch_add(3, Ordering::Relaxed);
    }
}

async fn scraper(t: Arc<Metered>, stop: Arc<AtomicBool>, n: Arc<Counts>) {
    while !stop.load(Ordering::Relaxed) {
        let e: Exposition = step("scraper", t.scrape()).await;
        let lvols = e.find("lamina_lvol_size_bytes", &[]).count();
        assert_eq!(e.find("lamina_lvol_allocated_clusters", &[]).count(), lvols);
        n.scrapes.fetch_add(1, Ordering::Relaxed);
    }
}

/// One host: writes its own 64-block region of namespace 1 and reads each write back.
async fn host_io(host: &Controller, id: u64, stop: &AtomicBool, n: &Counts) -> HashMap<u64, u8> {
    let ns = host.namespace(1).await.unwrap();
    let q = host.io_queue(0).unwrap();
    let bs = usize::try_from(ns.block_size).unwrap();
    let mut model = HashMap::new();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let lba = id * 1024 + (i * 7) % 64;
        let v = u8::try_from((i % 250) + 1).unwrap();
        step(
            "host write",
            q.write(&ns, lba, Bytes::from(vec![v; bs]), false),
        )
        .await
        .unwrap();
        model.insert(lba, v);
        let back = step("host read", q.read(&ns, lba, 1, bytes::BytesMut::new()))
            .await
            .unwrap();
        assert!(
            back.iter().all(|b| *b == v),
            "host {id}: lba {lba} lost its write"
        );
        n.host_ios.fetch_add(2, Ordering::Relaxed);
        i += 1;
    }
    model
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hosts_io_while_rpc_churns_lvols_and_lvstores() {
    let secs = env_or("LAMINA_STRESS_SECS", 30);
    let min_ops = env_or("LAMINA_STRESS_MIN_OPS", 200);
    let t = Arc::new(Metered::start().await);
    let hosts = vec![t.host(1).await, t.host(1).await, t.host(1).await];
    let stop = Arc::new(AtomicBool::new(false));
    let gone = Arc::new(Gone::default());
    let n = Arc::new(Counts::default());
    let mut tasks = Vec::new();
    for w in 0..2 {
        tasks.push(tokio::spawn(rpc_worker(
            t.clone(),
            w,
            stop.clone(),
            gone.clone(),
            n.clone(),
        )));
    }
    tasks.push(tokio::spawn(lister(
        t.clone(),
        stop.clone(),
        gone.clone(),
        n.clone(),
    )));
    tasks.push(tokio::spawn(scraper(t.clone(), stop.clone(), n.clone())));
    let started = Instant::now();
    let io = futures::future::join_all(
        hosts
            .iter()
            .enumerate()
            .map(|(i, h)| host_io(h, i as u64, &stop, &n)),
    );
    let timer = async {
        tokio::time::sleep(Duration::from_secs(secs)).await;
        stop.store(true, Ordering::Relaxed);
    };
    let (models, ()) = tokio::join!(io, timer);
    for task in tasks {
        step("joining the actors", task).await.unwrap();
    }
    let ops = n.rpc_ops.load(Ordering::Relaxed);
    eprintln!(
        "lifecycle stress, {:.0?}: {ops} RPC operations ({} lvstores created and destroyed), \
         {} listings validated, {} scrapes, {} host I/Os",
        started.elapsed(),
        n.lvstores_destroyed.load(Ordering::Relaxed),
        n.listings.load(Ordering::Relaxed),
        n.scrapes.load(Ordering::Relaxed),
        n.host_ios.load(Ordering::Relaxed),
    );
    assert!(
        ops >= min_ops,
        "only {ops} RPC operations in {secs} s: something stalled"
    );
    // Every host's data reads back after the churn.
    for (i, (h, model)) in hosts.iter().zip(&models).enumerate() {
        let ns = h.namespace(1).await.unwrap();
        let q = h.io_queue(0).unwrap();
        for (lba, v) in model {
            let back = q.read(&ns, *lba, 1, bytes::BytesMut::new()).await.unwrap();
            assert!(
                back.iter().all(|b| b == v),
                "host {i}: lba {lba} after the churn"
            );
        }
    }
    // Nothing of the churn is left, and the store is consistent.
    let mut rpc = t.rpc().await;
    let lvols = call(&mut rpc, "bdev_lvol_get_lvols", json!({})).await;
    assert_eq!(lvols.as_array().unwrap().len(), 1, "{lvols}");
    let stores = call(&mut rpc, "bdev_lvol_get_lvstores", json!({})).await;
    assert_eq!(stores.as_array().unwrap().len(), 1, "{stores}");
    let check = call(
        &mut rpc,
        "bdev_lvol_check_lvstore",
        json!({"lvs_name": "lvs0"}),
    )
    .await;
    assert_eq!(check[0]["consistent"], json!(true), "{check}");
    for h in hosts {
        h.shutdown().await.unwrap();
    }
    let Ok(t) = Arc::try_unwrap(t) else {
        panic!("fixture still shared")
    };
    t.stop().await;
}

/// Namespaces added at once without an NSID each get their own: choosing a free NSID and
/// publishing the namespace are one step (two additions used to pick the same NSID, and one
/// failed with "already in use").
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_namespace_additions_get_distinct_nsids() {
    let t = Arc::new(Metered::start().await);
    let mut rpc = t.rpc().await;
    for i in 0..16 {
        call(
            &mut rpc,
            "bdev_lvol_create",
            json!({"lvs_name": "lvs0",
            "lvol_name": format!("par{i}"), "size_in_mib": 1, "thin_provision": true}),
        )
        .await;
    }
    let adds = (0..16).map(|i| {
        let t = t.clone();
        tokio::spawn(async move {
            let mut rpc = t.rpc().await;
            call(
                &mut rpc,
                "nvmf_subsystem_add_ns",
                json!({"nqn": NQN,
                "namespace": {"bdev_name": format!("lvs0/par{i}")}}),
            )
            .await
        })
    });
    let mut nsids = HashSet::new();
    for a in futures::future::join_all(adds).await {
        assert!(
            nsids.insert(a.unwrap().as_u64().unwrap()),
            "an NSID was given twice"
        );
    }
    assert_eq!(nsids.len(), 16);
    let Ok(t) = Arc::try_unwrap(t) else {
        panic!("fixture still shared")
    };
    t.stop().await;
}
