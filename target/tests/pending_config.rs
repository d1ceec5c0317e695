//! A restore that partly fails keeps what it could not apply: a base device missing at
//! start-up stays in `lamina.json` with its namespaces (through any number of restarts), is
//! reported on `/readyz`, the log, the RPC and a metric, is retried until the device is back,
//! and then everything that depended on it follows. Conflicting changes are refused and an
//! entry leaves only when dropped on purpose.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; a panic is a failure

mod support;

use std::time::Duration;

use lamina_target::server;
use serde_json::{Value, json};
use support::pending::{
    Dirs, NQN, calls, configure, http_get, kept, metric, objects, pending, start, state_file,
    wait_applied,
};
use support::{client, err, ok};

const EBUSY: i32 = -16;
const ENODEV: i32 = -19;

/// Waits (up to 10 s) for `lamina.json` to hold `expected`, then checks that it does.
async fn wait_state_file(data: &std::path::Path, expected: &Value) {
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while state_file(data) != *expected && std::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(state_file(data), *expected);
}

/// The UUID of lvol `alias`.
async fn uuid_of(c: &mut lamina_target::mgmt::rpc::client::RpcClient, alias: &str) -> String {
    let l = support::lvol(c, alias).await.unwrap();
    l["uuid"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_device_is_kept_reported_retried_and_comes_back() {
    let d = Dirs::new();
    let r = start(&d.data, &d.cfg).await;
    let mut c = client(&r.rpc_socket).await;
    let before = configure(&mut c, &d.image).await;
    let (u1, u2) = (
        uuid_of(&mut c, "lvs0/v1").await,
        uuid_of(&mut c, "lvs0/v2").await,
    );
    assert_eq!(http_get(&r, "/readyz").await.0, 200);
    assert_eq!(kept(&before).len(), 3);
    drop(c);
    server::shutdown(&r).await;
    std::fs::rename(&d.image, d.away()).unwrap();

    // Twice: a restart with the device still missing must keep it as well.
    for round in 0..2 {
        let r = start(&d.data, &d.cfg).await;
        let mut c = client(&r.rpc_socket).await;
        let list = pending(&mut c).await;
        let image = d.image.display();
        assert_eq!(
            objects(&list),
            vec![
                format!("bdev base0 ({image})"),
                format!("namespace 1 of {NQN} (bdev {u1})"),
                format!("namespace 2 of {NQN} (bdev {u2})"),
            ],
            "round {round}"
        );
        let why = list[0]["reason"].as_str().unwrap();
        assert!(why.contains("No such file"), "{why}");
        let why = list[1]["reason"].as_str().unwrap();
        assert!(
            why.contains("base0"),
            "a namespace says what it waits for: {why}"
        );
        // The configuration, and the file, still hold the very same entries.
        let now = ok(&mut c, "save_config", Value::Null).await;
        assert_eq!(kept(&now), kept(&before), "round {round}");
        assert_eq!(kept(&state_file(&d.data)), kept(&before), "round {round}");
        // Reported: /readyz says 503 and why; the process is alive; the gauge counts.
        let (code, body) = http_get(&r, "/readyz").await;
        assert_eq!(code, 503, "{body}");
        assert!(body.contains("3 configuration entries pending"), "{body}");
        assert!(body.contains(&format!("bdev base0 ({image}): ")), "{body}");
        assert!(body.contains("No such file"), "{body}");
        assert!(body.contains(&format!("namespace 2 of {NQN}")), "{body}");
        assert_eq!(http_get(&r, "/healthz").await.0, 200);
        assert!((metric(&r, "lamina_config_pending_entries").await - 3.0).abs() < f64::EPSILON);
        // Not live: no bdev, the subsystem is there without namespaces.
        let bdevs = ok(&mut c, "bdev_get_bdevs", Value::Null).await;
        assert!(bdevs.as_array().unwrap().is_empty(), "{bdevs}");
        let sub = ok(&mut c, "nvmf_get_subsystems", json!({"nqn": NQN})).await;
        assert_eq!(sub[0]["namespaces"], json!([]));
        drop(c);
        server::shutdown(&r).await;
    }

    // The device comes back while the target runs: the retry brings everything back.
    let r = start(&d.data, &d.cfg).await;
    let mut c = client(&r.rpc_socket).await;
    assert_eq!(pending(&mut c).await.len(), 3);
    std::fs::rename(d.away(), &d.image).unwrap();
    wait_applied(&mut c, Duration::from_secs(10)).await;
    assert_eq!(ok(&mut c, "save_config", Value::Null).await, before);
    // The pass writes the file once it is done, just after the last entry leaves the list.
    wait_state_file(&d.data, &before).await;
    assert_eq!(uuid_of(&mut c, "lvs0/v1").await, u1);
    let sub = ok(&mut c, "nvmf_get_subsystems", json!({"nqn": NQN})).await;
    let ns: Vec<(u64, String)> = sub[0]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["nsid"].as_u64().unwrap(),
                n["bdev_name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(ns, vec![(1, u1), (2, u2)]);
    assert_eq!(http_get(&r, "/readyz").await, (200, "ready\n".to_owned()));
    assert!(metric(&r, "lamina_config_pending_entries").await.abs() < f64::EPSILON);
    drop(c);
    server::shutdown(&r).await;

    // And a restart finds it all in place.
    let r = start(&d.data, &d.cfg).await;
    let mut c = client(&r.rpc_socket).await;
    assert!(pending(&mut c).await.is_empty());
    assert_eq!(ok(&mut c, "save_config", Value::Null).await, before);
    assert_eq!(http_get(&r, "/readyz").await.0, 200);
    drop(c);
    server::shutdown(&r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_changes_are_refused_and_entries_leave_only_on_purpose() {
    let d = Dirs::new();
    let r = start(&d.data, &d.cfg).await;
    let mut c = client(&r.rpc_socket).await;
    configure(&mut c, &d.image).await;
    drop(c);
    server::shutdown(&r).await;
    std::fs::rename(&d.image, d.away()).unwrap();
    let r = start(&d.data, &d.cfg).await;
    let mut c = client(&r.rpc_socket).await;
    let list = pending(&mut c).await;
    let (bdev_id, ns1_id) = (
        list[0]["id"].as_u64().unwrap(),
        list[1]["id"].as_u64().unwrap(),
    );

    // Taking a pending name: the bdev name, its file, an NSID.
    let other = d.dir.join("other.img");
    std::fs::File::create(&other)
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    let p = json!({"name": "base0", "filename": other, "block_size": 4096});
    let msg = err(&mut c, "bdev_aio_create", p, EBUSY).await;
    assert!(
        msg.contains(&format!("entry #{bdev_id} (bdev base0")),
        "{msg}"
    );
    assert!(
        msg.contains("No such file") && msg.contains("lamina config drop"),
        "{msg}"
    );
    let p = json!({"name": "base1", "filename": d.image, "block_size": 4096});
    let msg = err(&mut c, "bdev_aio_create", p, EBUSY).await;
    assert!(msg.contains("opens the file"), "{msg}");
    let p = json!({"name": "base0", "num_blocks": 2048, "block_size": 512});
    err(&mut c, "bdev_malloc_create", p, EBUSY).await;
    let p = json!({"name": "m0", "num_blocks": 2048, "block_size": 512});
    ok(&mut c, "bdev_malloc_create", p).await;
    let ns = json!({"nqn": NQN, "namespace": {"bdev_name": "m0", "nsid": 1}});
    let msg = err(&mut c, "nvmf_subsystem_add_ns", ns, EBUSY).await;
    assert!(
        msg.contains(&format!("entry #{ns1_id} (namespace 1 of {NQN}")),
        "{msg}"
    );
    // An automatic NSID skips the pending ones.
    let ns = json!({"nqn": NQN, "namespace": {"bdev_name": "m0"}});
    assert_eq!(ok(&mut c, "nvmf_subsystem_add_ns", ns).await, json!(3));
    // Deleting the parent of pending namespaces.
    let msg = err(&mut c, "nvmf_delete_subsystem", json!({"nqn": NQN}), EBUSY).await;
    assert!(
        msg.contains("would delete the subsystem it belongs to"),
        "{msg}"
    );
    ok(
        &mut c,
        "nvmf_subsystem_remove_ns",
        json!({"nqn": NQN, "nsid": 3}),
    )
    .await;
    ok(&mut c, "bdev_malloc_delete", json!({"name": "m0"})).await;

    // Dropping on purpose: gone from the configuration and the file, the rest stays.
    err(
        &mut c,
        "lamina_drop_pending_config",
        json!({"id": 999}),
        ENODEV,
    )
    .await;
    let dropped = ok(&mut c, "lamina_drop_pending_config", json!({"id": ns1_id})).await;
    let what = dropped["object"].as_str().unwrap();
    assert!(
        what.starts_with(&format!("namespace 1 of {NQN}")),
        "{dropped}"
    );
    assert_eq!(pending(&mut c).await.len(), 2);
    for config in [
        ok(&mut c, "save_config", Value::Null).await,
        state_file(&d.data),
    ] {
        let nsids: Vec<Value> = calls(&config, "nvmf")
            .iter()
            .filter(|c| c["method"] == "nvmf_subsystem_add_ns")
            .map(|c| c["params"]["namespace"]["nsid"].clone())
            .collect();
        assert_eq!(nsids, vec![json!(2)], "{config}");
    }

    // Retry now, on demand: the bdev and namespace 2 apply; namespace 1 was dropped.
    std::fs::rename(d.away(), &d.image).unwrap();
    let r2 = ok(&mut c, "lamina_retry_pending_config", Value::Null).await;
    assert_eq!(r2["pending"], json!([]), "{r2}");
    let sub = ok(&mut c, "nvmf_get_subsystems", json!({"nqn": NQN})).await;
    assert_eq!(sub[0]["namespaces"].as_array().unwrap().len(), 1);
    assert_eq!(sub[0]["namespaces"][0]["nsid"], 2);
    // Nothing pending: the subsystem may go now.
    ok(&mut c, "nvmf_delete_subsystem", json!({"nqn": NQN})).await;
    drop(c);
    server::shutdown(&r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_lvstore_that_does_not_load_keeps_its_bdev_closed_until_it_does() {
    let d = Dirs::new();
    let r = start(&d.data, &d.cfg).await;
    let mut c = client(&r.rpc_socket).await;
    let before = configure(&mut c, &d.image).await;
    drop(c);
    server::shutdown(&r).await;
    // Damage both superblock copies (their generation field: the CRC no longer matches).
    let good = std::fs::read(&d.image).unwrap()[..8192].to_vec();
    let mut bad = good.clone();
    bad[20] ^= 0xff;
    bad[4096 + 20] ^= 0xff;
    write_at_start(&d.image, &bad);

    let r = start(&d.data, &d.cfg).await;
    let mut c = client(&r.rpc_socket).await;
    let list = pending(&mut c).await;
    assert_eq!(list.len(), 3, "{list:#?}");
    let why = list[0]["reason"].as_str().unwrap();
    assert!(why.contains("did not load"), "{why}");
    // Closed: an offline check or repair may open the file.
    let bdevs = ok(&mut c, "bdev_get_bdevs", Value::Null).await;
    assert!(bdevs.as_array().unwrap().is_empty(), "{bdevs}");
    assert_eq!(kept(&state_file(&d.data)), kept(&before));
    let again = ok(&mut c, "lamina_retry_pending_config", Value::Null).await;
    assert_eq!(again["applied"], 0);
    assert!(again["pending"][0]["attempts"].as_u64().unwrap() >= 2);

    assert_eq!(again["pending"][0]["retry"], "on_request");
    // Not behind an operator's back: the periodic retry leaves it (and the file) alone.
    tokio::time::sleep(support::pending::RETRY * 5).await;
    let bdevs = ok(&mut c, "bdev_get_bdevs", Value::Null).await;
    assert!(bdevs.as_array().unwrap().is_empty(), "{bdevs}");
    let (_, body) = http_get(&r, "/readyz").await;
    assert!(
        body.contains("did not load") && body.contains("on request"),
        "{body}"
    );

    // Repaired (here: the good superblocks put back), then retried on request.
    write_at_start(&d.image, &good);
    let done = ok(&mut c, "lamina_retry_pending_config", Value::Null).await;
    assert_eq!(done["applied"], 3, "{done}");
    assert_eq!(ok(&mut c, "save_config", Value::Null).await, before);
    drop(c);
    server::shutdown(&r).await;
}

fn write_at_start(path: &std::path::Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
}

const TOML: &str = r#"
[[bdev]]
name = "late0"
type = "aio"
filename = "@DIR@/late.img"
block_size = 4096

[[lvstore]]
name = "lvs9"
bdev = "late0"
cluster_size = "1M"

[[lvol]]
name = "vol0"
lvstore = "lvs9"
size = "16M"
thin = true

[[subsystem]]
nqn = "nqn.2026-11.io.lamina:late"
allow_any_host = true

[[subsystem.namespace]]
bdev = "lvs9/vol0"
nsid = 1
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_device_that_shows_up_later_gets_what_the_file_declares() {
    let d = Dirs::new();
    let cfg = d.dir.join("lamina.toml");
    std::fs::write(&cfg, TOML.replace("@DIR@", &d.dir.display().to_string())).unwrap();
    let r = start(&d.data, &cfg).await;
    let mut c = client(&r.rpc_socket).await;
    let list = pending(&mut c).await;
    let methods: Vec<&str> = list.iter().map(|e| e["method"].as_str().unwrap()).collect();
    assert_eq!(
        methods,
        [
            "bdev_aio_create",
            "bdev_lvol_create_lvstore",
            "bdev_lvol_create",
            "nvmf_subsystem_add_ns"
        ]
    );
    let saved: Vec<Value> = calls(&state_file(&d.data), "bdev");
    assert_eq!(saved.len(), 3, "the file keeps them too: {saved:#?}");
    // A second start with the same file: the same four, not eight.
    drop(c);
    server::shutdown(&r).await;
    let r = start(&d.data, &cfg).await;
    let mut c = client(&r.rpc_socket).await;
    assert_eq!(pending(&mut c).await.len(), 4);

    // A blank device shows up: it gets the lvstore, the lvol and the namespace.
    std::fs::File::create(d.dir.join("late.img"))
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    wait_applied(&mut c, Duration::from_secs(10)).await;
    let uuid = uuid_of(&mut c, "lvs9/vol0").await;
    let sub = ok(
        &mut c,
        "nvmf_get_subsystems",
        json!({"nqn": "nqn.2026-11.io.lamina:late"}),
    )
    .await;
    assert_eq!(sub[0]["namespaces"][0]["bdev_name"], json!(uuid));
    drop(c);
    server::shutdown(&r).await;
    let r = start(&d.data, &cfg).await;
    let mut c = client(&r.rpc_socket).await;
    assert!(pending(&mut c).await.is_empty());
    assert_eq!(uuid_of(&mut c, "lvs9/vol0").await, uuid);
    drop(c);
    server::shutdown(&r).await;
}
