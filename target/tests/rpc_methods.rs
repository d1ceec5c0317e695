//! Every JSON-RPC method against an in-process target: result shapes as SPDK documents them,
//! missing and wrong parameters (-32602 naming the parameter), and each error code (-32601,
//! -ENODEV, -EEXIST, -EBUSY, -ENOSPC, -EINVAL, SPDK's -ENOENT for an unknown lvstore rename).
//! The main test records the methods it called and fails if `rpc_get_methods` lists one it
//! did not exercise.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; a panic is a failure

#[path = "rpc_methods_parts/daily.rs"]
mod daily;
#[path = "rpc_methods_parts/nvmf.rs"]
mod nvmf;
mod support;

use std::collections::BTreeSet;

use lamina_target::mgmt::rpc::client::RpcClient;
use lamina_target::mgmt::rpc::error::{
    EBUSY, EEXIST, EINVAL, ENODEV, ENOENT, ENOMEM, ENOSPC, INVALID_PARAMS, METHOD_NOT_FOUND,
};
use lamina_target::plane::subsystem::SubsystemEvent;
use serde_json::{Value, json};
use support::TestServer;

/// A client that remembers which methods it called.
struct Rpc {
    c: RpcClient,
    seen: BTreeSet<String>,
}

impl Rpc {
    async fn new(s: &TestServer) -> Self {
        Self {
            c: s.client().await,
            seen: BTreeSet::new(),
        }
    }

    async fn ok(&mut self, method: &str, params: Value) -> Value {
        self.seen.insert(method.to_owned());
        support::ok(&mut self.c, method, params).await
    }

    async fn err(&mut self, method: &str, params: Value, code: i32) -> String {
        self.seen.insert(method.to_owned());
        support::err(&mut self.c, method, params, code).await
    }
}

const NQN: &str = "nqn.2026-11.io.lamina:test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_with_its_errors() {
    let s = TestServer::start().await;
    let mut r = Rpc::new(&s).await;
    framework(&mut r).await;
    bdevs(&mut r, &s).await;
    lvstores(&mut r, &s).await;
    lvols(&mut r).await;
    family(&mut r).await;
    nvmf::nvmf(&mut r).await;
    nvmf::exported(&mut r).await;
    nvmf::settings(&mut r).await;
    daily::daily(&mut r).await;
    keyring(&mut r).await;
    let methods = r.ok("rpc_get_methods", Value::Null).await;
    let missing: Vec<&str> = methods
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .filter(|m| !r.seen.contains(*m))
        .collect();
    let unique: BTreeSet<&str> = methods
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(unique.len(), methods.as_array().unwrap().len(), "{methods}");
    assert!(missing.is_empty(), "methods without a test: {missing:?}");
    s.stop().await;
}

/// The keyring's and namespace masking's errors (the whole flows: tests/keyring.rs and
/// integration/tests/ns_masking.rs).
async fn keyring(r: &mut Rpc) {
    assert_eq!(r.ok("keyring_get_keys", Value::Null).await, json!([]));
    let msg = r
        .err(
            "keyring_file_add_key",
            json!({"name": "k", "path": "rel/key"}),
            -1,
        )
        .await;
    assert!(msg.contains("absolute"), "{msg}");
    r.err("keyring_file_add_key", json!({"name": "k"}), INVALID_PARAMS)
        .await;
    r.err("keyring_file_remove_key", json!({"name": "k"}), -2)
        .await;
    // Namespace masking's refusals (its behaviour with hosts is integration/tests/ns_masking.rs).
    for m in ["nvmf_ns_add_host", "nvmf_ns_remove_host"] {
        let msg = r
            .err(
                m,
                json!({"nqn": "nqn.2016-06.io.spdk:x", "nsid": 1, "host": "not an nqn"}),
                INVALID_PARAMS,
            )
            .await;
        assert!(msg.contains("host"), "{msg}");
    }
}

async fn framework(r: &mut Rpc) {
    let methods = r.ok("rpc_get_methods", json!({})).await;
    for m in [
        "bdev_lvol_resize",
        "bdev_lvol_rename",
        "bdev_lvol_set_read_only",
        "bdev_lvol_snapshot",
        "bdev_lvol_clone",
        "bdev_lvol_inflate",
        "bdev_lvol_decouple_parent",
        "bdev_lvol_rename_lvstore",
        "bdev_lvol_grow_lvstore",
        "lamina_get_operations",
    ] {
        assert!(methods.as_array().unwrap().contains(&json!(m)), "{m}");
    }
    let v = r.ok("spdk_get_version", Value::Null).await;
    assert!(v["version"].as_str().unwrap().starts_with("Lamina v"));
    assert!(v["fields"]["major"].is_u64());
    r.err("spdk_get_version", json!({"x": 1}), INVALID_PARAMS)
        .await;
    assert_eq!(r.ok("framework_wait_init", Value::Null).await, json!(true));
    let cfg = r.ok("save_config", Value::Null).await;
    assert!(cfg["subsystems"].is_array());
    let msg = r
        .err("bdev_lvol_frobnicate", json!({}), METHOD_NOT_FOUND)
        .await;
    assert!(msg.contains("bdev_lvol_frobnicate"), "{msg}");
    assert_eq!(r.ok("lamina_get_operations", Value::Null).await, json!([]));
    r.err("lamina_get_operations", json!({"id": 999}), ENODEV)
        .await;
    // SPDK's rpc.py save_config is built from these two; pending entries (none here) have
    // their own methods, exercised with a missing device in tests/pending_config.rs.
    let subs = r.ok("framework_get_subsystems", Value::Null).await;
    assert_eq!(
        subs[3],
        json!({"subsystem": "nvmf", "depends_on": ["bdev", "sock", "keyring"]})
    );
    let nvmf = r.ok("framework_get_config", json!({"name": "nvmf"})).await;
    assert_eq!(nvmf, cfg["subsystems"][3]["config"]);
    r.err(
        "framework_get_config",
        json!({"name": "iscsi"}),
        INVALID_PARAMS,
    )
    .await;
    assert_eq!(
        r.ok("lamina_get_pending_config", Value::Null).await,
        json!([])
    );
    let retried = r.ok("lamina_retry_pending_config", Value::Null).await;
    assert_eq!(retried, json!({"applied": 0, "pending": []}));
    r.err("lamina_drop_pending_config", json!({"id": 1}), ENODEV)
        .await;
}

async fn bdevs(r: &mut Rpc, s: &TestServer) {
    let name = r
        .ok(
            "bdev_malloc_create",
            json!({"name": "m0", "num_blocks": 16384, "block_size": 4096}),
        )
        .await;
    assert_eq!(name, "m0");
    let msg = r
        .err(
            "bdev_malloc_create",
            json!({"name": "m0", "num_blocks": 1}),
            INVALID_PARAMS,
        )
        .await;
    assert!(msg.contains("block_size"), "{msg}");
    r.err(
        "bdev_malloc_create",
        json!({"name": "m0", "num_blocks": 16, "block_size": 4096}),
        EEXIST,
    )
    .await;
    // Sized past the machine's memory: refused, the target unharmed.
    for blocks in [1u64 << 40, u64::MAX / 4096] {
        let msg = r
            .err(
                "bdev_malloc_create",
                json!({"name": "huge", "num_blocks": blocks, "block_size": 4096}),
                ENOMEM,
            )
            .await;
        assert!(msg.contains("bytes available"), "{msg}");
        let msg = r
            .err(
                "bdev_malloc_create",
                json!({"name": "huge", "num_blocks": blocks, "block_size": 4096, "sparse": true}),
                ENOMEM,
            )
            .await;
        assert!(msg.contains("chunk table"), "{msg}");
    }
    r.ok(
        "bdev_null_create",
        json!({"name": "n0", "num_blocks": 1024, "block_size": 512}),
    )
    .await;
    let file = s.dir.path().join("disk.img");
    std::fs::File::create(&file)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let p = json!({"name": "a0", "filename": file, "block_size": 4096});
    r.ok("bdev_aio_create", p.clone()).await;
    r.err("bdev_aio_create", p, EEXIST).await;
    let missing = json!({"name": "a1", "filename": s.dir.path().join("nope.img")});
    r.err("bdev_aio_create", missing, ENOENT).await;
    let all = r.ok("bdev_get_bdevs", Value::Null).await;
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a0", "m0", "n0"]);
    let one = r.ok("bdev_get_bdevs", json!({"name": "a0"})).await;
    assert_eq!(one[0]["num_blocks"], 16384);
    assert_eq!(one[0]["product_name"], "AIO disk");
    r.err("bdev_get_bdevs", json!({"name": "zz"}), ENODEV).await;
    r.ok("bdev_null_delete", json!({"name": "n0"})).await;
    r.err("bdev_null_delete", json!({"name": "n0"}), ENODEV)
        .await;
    r.ok("bdev_aio_delete", json!({"name": "a0"})).await;
    let msg = r.err("bdev_aio_delete", json!({}), INVALID_PARAMS).await;
    assert!(msg.contains("name"), "{msg}");
}

async fn lvstores(r: &mut Rpc, s: &TestServer) {
    let p = json!({"bdev_name": "m0", "lvs_name": "lvs0", "cluster_sz": 1 << 20});
    let uuid = r.ok("bdev_lvol_create_lvstore", p).await;
    let uuid = uuid.as_str().unwrap().to_owned();
    let again = json!({"bdev_name": "m0", "lvs_name": "lvs9"});
    r.err("bdev_lvol_create_lvstore", again, EBUSY).await;
    let nobdev = json!({"bdev_name": "zz", "lvs_name": "lvs9"});
    r.err("bdev_lvol_create_lvstore", nobdev, ENODEV).await;
    let msg = r
        .err(
            "bdev_lvol_create_lvstore",
            json!({"bdev_name": "m0"}),
            INVALID_PARAMS,
        )
        .await;
    assert!(msg.contains("lvs_name"), "{msg}");
    r.err("bdev_malloc_delete", json!({"name": "m0"}), EBUSY)
        .await;
    let list = r.ok("bdev_lvol_get_lvstores", Value::Null).await;
    let store = &list[0];
    assert_eq!(store["uuid"], uuid.as_str());
    assert_eq!(store["name"], "lvs0");
    assert_eq!(store["base_bdev"], "m0");
    assert_eq!(store["block_size"], 4096);
    assert_eq!(store["cluster_size"], 1 << 20);
    assert!(store["total_data_clusters"].as_u64().unwrap() > 40);
    assert_eq!(store["free_clusters"], store["total_data_clusters"]);
    let by_uuid = r.ok("bdev_lvol_get_lvstores", json!({"uuid": uuid})).await;
    assert_eq!(by_uuid, list);
    r.err(
        "bdev_lvol_get_lvstores",
        json!({"uuid": uuid, "lvs_name": "lvs0"}),
        INVALID_PARAMS,
    )
    .await;
    r.err("bdev_lvol_get_lvstores", json!({"lvs_name": "zz"}), ENODEV)
        .await;
    let check = r.ok("bdev_lvol_check_lvstore", json!({"uuid": uuid})).await;
    assert_eq!(check[0]["consistent"], true, "{check}");
    assert_eq!(check[0]["name"], "lvs0");
    assert_eq!(check[0]["free_clusters"], store["free_clusters"]);
    assert_eq!(check[0]["problems"], json!([]));
    let all = r.ok("bdev_lvol_check_lvstore", Value::Null).await;
    assert_eq!(all, check);
    r.err("bdev_lvol_check_lvstore", json!({"lvs_name": "zz"}), ENODEV)
        .await;
    let msg = r
        .err(
            "bdev_lvol_check_lvstore",
            json!({"repair": true}),
            INVALID_PARAMS,
        )
        .await;
    assert!(msg.contains("repair"), "{msg}");
    rename_and_grow(r, s).await;
}

async fn rename_and_grow(r: &mut Rpc, s: &TestServer) {
    let file = s.dir.path().join("grow.img");
    std::fs::File::create(&file)
        .unwrap()
        .set_len(32 << 20)
        .unwrap();
    let p = json!({"name": "g0", "filename": file, "block_size": 4096});
    r.ok("bdev_aio_create", p).await;
    let p = json!({"bdev_name": "g0", "lvs_name": "lvsg", "cluster_sz": 1 << 20});
    r.ok("bdev_lvol_create_lvstore", p).await;
    let rn = json!({"old_name": "lvsg", "new_name": "lvs0"});
    r.err("bdev_lvol_rename_lvstore", rn, EEXIST).await;
    let rn = json!({"old_name": "zz", "new_name": "lvsx"});
    let msg = r.err("bdev_lvol_rename_lvstore", rn, ENOENT).await;
    assert!(msg.contains("zz"), "{msg}");
    let rn = json!({"old_name": "lvsg", "new_name": "lvsgrow"});
    assert_eq!(r.ok("bdev_lvol_rename_lvstore", rn).await, true);
    let before = r
        .ok("bdev_lvol_get_lvstores", json!({"lvs_name": "lvsgrow"}))
        .await;
    let before = before[0]["total_data_clusters"].as_u64().unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let grow = json!({"lvs_name": "lvsgrow"});
    assert_eq!(r.ok("bdev_lvol_grow_lvstore", grow).await, true);
    let after = r
        .ok("bdev_lvol_get_lvstores", json!({"lvs_name": "lvsgrow"}))
        .await;
    assert_eq!(
        after[0]["total_data_clusters"].as_u64().unwrap(),
        before + 32
    );
    r.err("bdev_lvol_grow_lvstore", json!({}), INVALID_PARAMS)
        .await;
    r.err("bdev_lvol_grow_lvstore", json!({"lvs_name": "zz"}), ENODEV)
        .await;
    let del = json!({"lvs_name": "lvsgrow"});
    assert_eq!(r.ok("bdev_lvol_delete_lvstore", del.clone()).await, true);
    r.err("bdev_lvol_delete_lvstore", del, ENODEV).await;
    r.ok("bdev_aio_delete", json!({"name": "g0"})).await;
}

/// The SPDK `bdev_lvol_get_lvols` keys, no more, no fewer.
fn check_lvol_shape(l: &Value) {
    let keys: BTreeSet<&str> = l.as_object().unwrap().keys().map(String::as_str).collect();
    let want: BTreeSet<&str> = [
        "alias",
        "uuid",
        "name",
        "is_thin_provisioned",
        "is_snapshot",
        "is_clone",
        "is_esnap_clone",
        "is_degraded",
        "num_allocated_clusters",
        "lvs",
    ]
    .into();
    assert_eq!(keys, want, "{l}");
}

async fn lvols(r: &mut Rpc) {
    let p = json!({"lvs_name": "lvs0", "lvol_name": "thick", "size_in_mib": 8});
    let uuid = r.ok("bdev_lvol_create", p.clone()).await;
    r.err("bdev_lvol_create", p, EEXIST).await;
    let p = json!({"lvs_name": "lvs0", "lvol_name": "huge", "size_in_mib": 100_000});
    r.err("bdev_lvol_create", p, ENOSPC).await;
    let p = json!({"lvs_name": "zz", "lvol_name": "x", "size_in_mib": 1});
    r.err("bdev_lvol_create", p, ENODEV).await;
    let msg = r
        .err(
            "bdev_lvol_create",
            json!({"lvs_name": "lvs0", "lvol_name": "x", "size_in_mib": "8"}),
            INVALID_PARAMS,
        )
        .await;
    assert!(msg.contains("invalid type"), "{msg}");
    let p = json!({"lvs_name": "lvs0", "lvol_name": "x", "size_in_mib": 1, "bogus": 1});
    let msg = r.err("bdev_lvol_create", p, INVALID_PARAMS).await;
    assert!(msg.contains("bogus"), "{msg}");
    let p = json!({"lvs_name": "lvs0", "lvol_name": "thin", "size_in_mib": 16,
        "thin_provision": true, "clear_method": "write_zeroes"});
    r.ok("bdev_lvol_create", p).await;
    let list = r
        .ok("bdev_lvol_get_lvols", json!({"lvs_name": "lvs0"}))
        .await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    list.as_array().unwrap().iter().for_each(check_lvol_shape);
    let thick = &list[0];
    assert_eq!(thick["alias"], "lvs0/thick");
    assert_eq!(thick["uuid"], uuid);
    assert_eq!(thick["is_thin_provisioned"], false);
    assert_eq!(thick["num_allocated_clusters"], 8);
    assert_eq!(thick["lvs"]["name"], "lvs0");
    assert_eq!(list[1]["num_allocated_clusters"], 0);
    r.err("bdev_lvol_get_lvols", json!({"lvs_uuid": "zz"}), ENODEV)
        .await;
    // resize: grow, shrink, zero, unknown
    let p = json!({"name": "lvs0/thick", "size_in_mib": 12});
    assert_eq!(r.ok("bdev_lvol_resize", p).await, true);
    let b = r.ok("bdev_get_bdevs", json!({"name": "lvs0/thick"})).await;
    assert_eq!(b[0]["num_blocks"], 12 * 256);
    let p = json!({"name": uuid, "size_in_mib": 4});
    r.ok("bdev_lvol_resize", p).await;
    let p = json!({"name": "lvs0/thick", "size_in_mib": 0});
    r.err("bdev_lvol_resize", p, EINVAL).await;
    let p = json!({"name": "lvs0/zz", "size_in_mib": 4});
    r.err("bdev_lvol_resize", p, ENODEV).await;
    let msg = r
        .err(
            "bdev_lvol_resize",
            json!({"name": "lvs0/thick"}),
            INVALID_PARAMS,
        )
        .await;
    assert!(msg.contains("size_in_mib"), "{msg}");
    // rename
    let p = json!({"old_name": "lvs0/thick", "new_name": "thin"});
    r.err("bdev_lvol_rename", p, EEXIST).await;
    let p = json!({"old_name": "lvs0/thick", "new_name": "lvs1/x"});
    r.err("bdev_lvol_rename", p, EINVAL).await;
    let p = json!({"old_name": "lvs0/thick", "new_name": "fat"});
    assert_eq!(r.ok("bdev_lvol_rename", p).await, true);
    assert_eq!(
        support::lvol(&mut r.c, "lvs0/fat").await.unwrap()["uuid"],
        uuid
    );
    let p = json!({"old_name": "lvs0/thick", "new_name": "x"});
    r.err("bdev_lvol_rename", p, ENODEV).await;
    assert_eq!(
        r.ok("bdev_lvol_delete", json!({"name": "lvs0/fat"})).await,
        true
    );
    r.err("bdev_lvol_delete", json!({"name": "lvs0/fat"}), ENODEV)
        .await;
    let msg = r.err("bdev_lvol_delete", json!({}), INVALID_PARAMS).await;
    assert!(msg.contains("name"), "{msg}");
}

async fn family(r: &mut Rpc) {
    let p =
        json!({"lvs_name": "lvs0", "lvol_name": "base", "size_in_mib": 8, "thin_provision": true});
    let base = r.ok("bdev_lvol_create", p).await;
    let p = json!({"lvol_name": "lvs0/base", "snapshot_name": "snap"});
    let snap = r.ok("bdev_lvol_snapshot", p.clone()).await;
    assert_ne!(snap, base);
    r.err("bdev_lvol_snapshot", p, EEXIST).await;
    let p = json!({"lvol_name": "lvs0/snap", "snapshot_name": "snap2"});
    r.err("bdev_lvol_snapshot", p, EINVAL).await;
    let snap_info = support::lvol(&mut r.c, "lvs0/snap").await.unwrap();
    assert_eq!(
        (snap_info["uuid"].clone(), snap_info["is_snapshot"].clone()),
        (snap, json!(true))
    );
    let base_info = support::lvol(&mut r.c, "lvs0/base").await.unwrap();
    assert_eq!(
        (base_info["uuid"].clone(), base_info["is_clone"].clone()),
        (base, json!(true))
    );
    // A writable lvol cannot be cloned until it is read-only.
    let p = json!({"snapshot_name": "lvs0/thin", "clone_name": "c0"});
    r.err("bdev_lvol_clone", p.clone(), EINVAL).await;
    let ro = json!({"name": "lvs0/thin"});
    assert_eq!(r.ok("bdev_lvol_set_read_only", ro).await, true);
    r.ok("bdev_lvol_clone", p).await;
    r.err("bdev_lvol_set_read_only", json!({"name": "zz"}), ENODEV)
        .await;
    let p = json!({"snapshot_name": "lvs0/snap", "clone_name": "c1"});
    let c1 = r.ok("bdev_lvol_clone", p.clone()).await;
    r.err("bdev_lvol_clone", p, EEXIST).await;
    let msg = r
        .err(
            "bdev_lvol_clone",
            json!({"snapshot_name": "lvs0/snap"}),
            INVALID_PARAMS,
        )
        .await;
    assert!(msg.contains("clone_name"), "{msg}");
    // Two clones: the snapshot cannot go.
    r.err("bdev_lvol_delete", json!({"name": "lvs0/snap"}), EBUSY)
        .await;
    assert_eq!(r.ok("bdev_lvol_inflate", json!({"name": c1})).await, true);
    let c = support::lvol(&mut r.c, "lvs0/c1").await.unwrap();
    assert_eq!(c["is_clone"], false);
    assert_eq!(c["is_thin_provisioned"], false);
    assert_eq!(c["num_allocated_clusters"], 8);
    let ops = r.ok("lamina_get_operations", Value::Null).await;
    let op = ops.as_array().unwrap().last().unwrap().clone();
    assert_eq!(op["method"], "bdev_lvol_inflate");
    assert_eq!(op["lvol"], "lvs0/c1");
    assert_eq!(op["state"], "complete");
    assert_eq!(
        (op["done"].clone(), op["total"].clone()),
        (json!(8), json!(8))
    );
    let one = r.ok("lamina_get_operations", json!({"id": op["id"]})).await;
    assert_eq!(one, json!([op]));
    assert_eq!(
        r.ok("bdev_lvol_decouple_parent", json!({"name": "lvs0/base"}))
            .await,
        true
    );
    let b = support::lvol(&mut r.c, "lvs0/base").await.unwrap();
    assert_eq!(
        (b["is_clone"].clone(), b["is_thin_provisioned"].clone()),
        (json!(false), json!(true))
    );
    r.err(
        "bdev_lvol_decouple_parent",
        json!({"name": "lvs0/base"}),
        EINVAL,
    )
    .await;
    r.err("bdev_lvol_inflate", json!({"name": "lvs0/zz"}), ENODEV)
        .await;
    r.err("bdev_lvol_inflate", json!({"nam": "x"}), INVALID_PARAMS)
        .await;
    for n in ["lvs0/snap", "lvs0/c1", "lvs0/base", "lvs0/c0", "lvs0/thin"] {
        r.ok("bdev_lvol_delete", json!({"name": n})).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resize_and_read_only_notify_the_exporting_subsystem() {
    let s = TestServer::start().await;
    let mut c = s.client().await;
    support::malloc_lvstore(&mut c, "m0", "lvs0", 64).await;
    let p = json!({"lvs_name": "lvs0", "lvol_name": "v", "size_in_mib": 4, "thin_provision": true});
    support::ok(&mut c, "bdev_lvol_create", p).await;
    support::ok(&mut c, "nvmf_create_subsystem", json!({"nqn": NQN})).await;
    let ns = json!({"nqn": NQN, "namespace": {"bdev_name": "lvs0/v", "nsid": 5}});
    support::ok(&mut c, "nvmf_subsystem_add_ns", ns).await;
    let sub = s.running.target.subsystems.get(NQN).unwrap();
    let mut events = sub.subscribe();
    let p = json!({"name": "lvs0/v", "size_in_mib": 8});
    support::ok(&mut c, "bdev_lvol_resize", p).await;
    let ev = tokio::time::timeout(support::CALL_TIMEOUT, events.recv()).await;
    assert_eq!(ev.unwrap().unwrap(), SubsystemEvent::NamespaceChanged(5));
    assert_eq!(sub.namespace(5).unwrap().backend().size_bytes(), 8 << 20);
    support::ok(&mut c, "bdev_lvol_set_read_only", json!({"name": "lvs0/v"})).await;
    let ev = tokio::time::timeout(support::CALL_TIMEOUT, events.recv()).await;
    assert_eq!(ev.unwrap().unwrap(), SubsystemEvent::NamespaceChanged(5));
    assert!(sub.namespace(5).unwrap().backend().is_read_only());
    s.stop().await;
}

/// An inflate runs in its caller's connection task: other connections are answered meanwhile
/// and can follow its progress. 64 Ki clusters of zero-fill take tens of milliseconds, during
/// which the watcher polls every couple of milliseconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_operation_is_followed_from_another_connection() {
    const MIB: u64 = 65536;
    let s = TestServer::start().await;
    let mut c = s.client().await;
    support::malloc_lvstore(&mut c, "m0", "lvs0", MIB + 256).await;
    let p =
        json!({"lvs_name": "lvs0", "lvol_name": "v", "size_in_mib": MIB, "thin_provision": true});
    support::ok(&mut c, "bdev_lvol_create", p).await;
    let p = json!({"lvol_name": "lvs0/v", "snapshot_name": "s"});
    support::ok(&mut c, "bdev_lvol_snapshot", p).await;
    let mut watcher = s.client().await;
    let inflate = tokio::spawn(async move {
        support::ok(&mut c, "bdev_lvol_inflate", json!({"name": "lvs0/v"})).await
    });
    // A listing answered between two polls that both saw the inflate running was answered
    // while it ran.
    let mut answered_while_running = 0;
    let mut was_running = false;
    let final_op = loop {
        let ops = support::ok(&mut watcher, "lamina_get_operations", Value::Null).await;
        let running = match ops.as_array().unwrap().first() {
            Some(op) => {
                assert_eq!(op["method"], "bdev_lvol_inflate");
                assert_eq!(op["lvol"], "lvs0/v");
                assert!(op["done"].as_u64() <= op["total"].as_u64(), "{op}");
                if op["state"] != "running" {
                    break op.clone();
                }
                true
            }
            None => false,
        };
        if running && was_running {
            answered_while_running += 1;
        }
        was_running = running;
        support::ok(&mut watcher, "bdev_lvol_get_lvols", Value::Null).await;
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    };
    assert_eq!(inflate.await.unwrap(), true);
    assert_eq!(final_op["state"], "complete");
    assert_eq!(final_op["done"], MIB);
    assert_eq!(final_op["total"], MIB);
    assert!(
        answered_while_running > 0,
        "no listing was answered while the inflate ran"
    );
    s.stop().await;
}
