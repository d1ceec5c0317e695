//! The seed scenario of issue 5 §2 at the JSON-RPC level: `bdev_lvol_delete` racing
//! `bdev_lvol_get_lvols`, `bdev_lvol_get_lvstores`, `bdev_get_bdevs` and `nvmf_get_subsystems`
//! from many concurrent clients, while snapshots and clones are created and deleted.
//!
//! Checked: the server never stalls (every call answers within a timeout), every response is
//! well-formed, every listed lvol is complete (all SPDK keys, consistent alias, valid UUIDs),
//! expected refusals carry the right code (-EBUSY for the exported lvol and for a snapshot
//! with two clones), and at the end nothing the mutators created is left.
//!
//! `LAMINA_SEED_ITERATIONS` sets the mutator rounds (default 2,000: 4 mutators x 500 rounds,
//! 20,000 mutating calls racing tens of thousands of listings, a few seconds);
//! `LAMINA_SEED_CLIENTS` the number of listing clients (default 4).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; a panic is a failure

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use lamina_target::mgmt::rpc::client::RpcClient;
use lamina_target::mgmt::rpc::error::EBUSY;
use serde_json::{Value, json};
use support::TestServer;
use uuid::Uuid;

const NQN: &str = "nqn.2026-11.io.lamina:seed";
const MUTATORS: u64 = 4;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_races_listings_snapshots_and_clones() {
    let rounds = env_u64("LAMINA_SEED_ITERATIONS", 2000).div_ceil(MUTATORS);
    let readers = env_u64("LAMINA_SEED_CLIENTS", 4);
    let s = TestServer::start().await;
    let mut c = s.client().await;
    support::malloc_lvstore(&mut c, "m0", "lvs0", 512).await;
    let p = json!({"lvs_name": "lvs0", "lvol_name": "pinned", "size_in_mib": 4, "thin_provision": true});
    support::ok(&mut c, "bdev_lvol_create", p).await;
    support::ok(
        &mut c,
        "nvmf_create_subsystem",
        json!({"nqn": NQN, "allow_any_host": true}),
    )
    .await;
    let ns = json!({"nqn": NQN, "namespace": {"bdev_name": "lvs0/pinned", "nsid": 1}});
    support::ok(&mut c, "nvmf_subsystem_add_ns", ns).await;

    let started = std::time::Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let listed = Arc::new(AtomicU64::new(0));
    let mut listeners = Vec::new();
    for r in 0..readers {
        let client = s.client().await;
        let (stop, listed) = (stop.clone(), listed.clone());
        listeners.push(tokio::spawn(async move {
            list_until(client, r, &stop, &listed).await;
        }));
    }
    let mut mutators = Vec::new();
    for w in 0..MUTATORS {
        let client = s.client().await;
        mutators.push(tokio::spawn(async move { mutate(client, w, rounds).await }));
    }
    let mut mutations = 0;
    for m in mutators {
        mutations += m.await.expect("a mutator failed");
    }
    stop.store(true, Ordering::Release);
    for l in listeners {
        l.await.expect("a listing client failed");
    }
    let left = support::ok(&mut c, "bdev_lvol_get_lvols", Value::Null).await;
    let names: Vec<&str> = left
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["alias"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lvs0/pinned"], "mutators left lvols behind");
    let store = support::ok(&mut c, "bdev_lvol_get_lvstores", Value::Null).await;
    let (total, free) = (
        store[0]["total_data_clusters"].as_u64().unwrap(),
        store[0]["free_clusters"].as_u64().unwrap(),
    );
    assert!(
        free <= total && free + 64 >= total,
        "clusters leaked: {free} of {total} free"
    );
    eprintln!(
        "seed: {mutations} mutating calls and {} listings in {:?}",
        listed.load(Ordering::Relaxed),
        started.elapsed()
    );
    s.stop().await;
}

/// One mutator: each round creates an lvol, snapshots it, clones the snapshot twice, checks
/// the refusals, then deletes everything (the snapshot last, merging into its last clone).
async fn mutate(mut c: RpcClient, w: u64, rounds: u64) -> u64 {
    let mut calls = 0;
    for i in 0..rounds {
        let v = format!("w{w}r{i}");
        let (snap, c1, c2) = (format!("{v}s"), format!("{v}c1"), format!("{v}c2"));
        let p =
            json!({"lvs_name": "lvs0", "lvol_name": v, "size_in_mib": 2, "thin_provision": true});
        support::ok(&mut c, "bdev_lvol_create", p).await;
        let p = json!({"lvol_name": format!("lvs0/{v}"), "snapshot_name": snap});
        support::ok(&mut c, "bdev_lvol_snapshot", p).await;
        for clone in [&c1, &c2] {
            let p = json!({"snapshot_name": format!("lvs0/{snap}"), "clone_name": clone});
            support::ok(&mut c, "bdev_lvol_clone", p).await;
        }
        // Three clones (v, c1, c2): the snapshot cannot be deleted; nor can the exported lvol.
        let p = json!({"name": format!("lvs0/{snap}")});
        support::err(&mut c, "bdev_lvol_delete", p, EBUSY).await;
        support::err(
            &mut c,
            "bdev_lvol_delete",
            json!({"name": "lvs0/pinned"}),
            EBUSY,
        )
        .await;
        // Delete in an order that varies by round: clones, then the snapshot merges into v.
        let order = if i % 2 == 0 { [&c1, &c2] } else { [&c2, &c1] };
        for n in order {
            support::ok(
                &mut c,
                "bdev_lvol_delete",
                json!({"name": format!("lvs0/{n}")}),
            )
            .await;
        }
        if i % 3 == 0 {
            support::ok(
                &mut c,
                "bdev_lvol_delete",
                json!({"name": format!("lvs0/{v}")}),
            )
            .await;
            support::ok(
                &mut c,
                "bdev_lvol_delete",
                json!({"name": format!("lvs0/{snap}")}),
            )
            .await;
        } else {
            support::ok(
                &mut c,
                "bdev_lvol_delete",
                json!({"name": format!("lvs0/{snap}")}),
            )
            .await;
            support::ok(
                &mut c,
                "bdev_lvol_delete",
                json!({"name": format!("lvs0/{v}")}),
            )
            .await;
        }
        calls += 10;
    }
    calls
}

/// One listing client: rotates through the four listings until told to stop.
async fn list_until(mut c: RpcClient, r: u64, stop: &AtomicBool, listed: &AtomicU64) {
    let mut k = r;
    while !stop.load(Ordering::Acquire) {
        match k % 4 {
            0 => {
                let v = support::ok(&mut c, "bdev_lvol_get_lvols", Value::Null).await;
                v.as_array().unwrap().iter().for_each(check_lvol);
            }
            1 => {
                let v = support::ok(&mut c, "bdev_lvol_get_lvstores", Value::Null).await;
                v.as_array().unwrap().iter().for_each(check_lvstore);
            }
            2 => {
                let v = support::ok(&mut c, "bdev_get_bdevs", Value::Null).await;
                v.as_array().unwrap().iter().for_each(check_bdev);
            }
            _ => {
                let v = support::ok(&mut c, "nvmf_get_subsystems", Value::Null).await;
                v.as_array().unwrap().iter().for_each(check_subsystem);
            }
        }
        listed.fetch_add(1, Ordering::Relaxed);
        k += 1;
    }
}

fn is_uuid(v: &Value) -> bool {
    v.as_str().is_some_and(|s| Uuid::parse_str(s).is_ok())
}

fn check_lvol(l: &Value) {
    let o = l
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {l}"));
    assert_eq!(o.len(), 10, "{l}");
    let name = l["name"].as_str().unwrap();
    let lvs = l["lvs"]["name"].as_str().unwrap();
    assert_eq!(l["alias"], format!("{lvs}/{name}"), "{l}");
    assert!(is_uuid(&l["uuid"]) && is_uuid(&l["lvs"]["uuid"]), "{l}");
    for k in [
        "is_thin_provisioned",
        "is_snapshot",
        "is_clone",
        "is_esnap_clone",
        "is_degraded",
    ] {
        assert!(l[k].is_boolean(), "{k}: {l}");
    }
    assert!(l["num_allocated_clusters"].is_u64(), "{l}");
    if l["is_snapshot"] == true {
        assert!(name.ends_with('s') && l["is_clone"] == false, "{l}");
    }
}

fn check_lvstore(l: &Value) {
    assert_eq!(l["name"], "lvs0", "{l}");
    assert!(is_uuid(&l["uuid"]), "{l}");
    let (t, f) = (
        l["total_data_clusters"].as_u64(),
        l["free_clusters"].as_u64(),
    );
    assert!(f.unwrap() <= t.unwrap(), "{l}");
    assert_eq!(l["cluster_size"], 1 << 20, "{l}");
}

fn check_bdev(b: &Value) {
    assert!(
        b["name"].is_string() && b["num_blocks"].is_u64() && b["block_size"].is_u64(),
        "{b}"
    );
    if b["product_name"] == "Logical Volume" {
        assert!(is_uuid(&b["name"]), "{b}");
        assert!(
            b["aliases"][0].as_str().unwrap().starts_with("lvs0/"),
            "{b}"
        );
        let lvol = &b["driver_specific"]["lvol"];
        assert!(is_uuid(&lvol["lvol_store_uuid"]), "{b}");
        assert!(
            lvol["snapshot"].is_boolean() && lvol["clones"].is_array(),
            "{b}"
        );
        assert!(b["num_blocks"].as_u64().unwrap() > 0, "{b}");
    }
}

fn check_subsystem(s: &Value) {
    assert!(
        s["nqn"].is_string() && s["listen_addresses"].is_array(),
        "{s}"
    );
    if s["nqn"] == NQN {
        let ns = &s["namespaces"][0];
        assert_eq!(ns["nsid"], 1, "{s}");
        assert!(is_uuid(&ns["bdev_name"]) && is_uuid(&ns["uuid"]), "{s}");
    }
}
