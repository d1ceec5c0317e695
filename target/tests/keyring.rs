//! The keyring over JSON-RPC: `keyring_file_add_key` checks the file as SPDK does (absolute
//! path, owner, no access for group and others) and the key in it (interchange format and
//! CRC), `keyring_get_keys` lists names and paths and never key material, and the keys come
//! back after a restart from the persisted configuration, which names files and holds no
//! secret; a key file missing at start-up is kept as pending configuration.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; a panic is a failure

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use lamina_target::server;
use serde_json::{Value, json};
use support::{TestServer, args, client, empty_config, err, ok};

const EPERM: i32 = -1;
const ENOENT: i32 = -2;
const EEXIST: i32 = -17;
const EINVAL: i32 = -22;

/// libnvme's SHA-256 TLS PSK test vector.
const TLS_KEY: &str = "NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:";

fn key_file(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("{text}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

/// A DH-HMAC-CHAP secret with a correct CRC, built here.
fn dhchap_key() -> String {
    use base64::Engine as _;
    let key: Vec<u8> = (0u8..32).collect();
    let mut b = key.clone();
    b.extend_from_slice(&crc32fast::hash(&key).to_le_bytes());
    format!(
        "DHHC-1:00:{}:",
        base64::engine::general_purpose::STANDARD.encode(b)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_checked_listed_removed_and_survive_a_restart() {
    let s = TestServer::start().await;
    let keys = tempfile::tempdir().unwrap();
    let mut c = s.client().await;

    let loose = key_file(keys.path(), "loose", TLS_KEY, 0o640);
    let msg = err(
        &mut c,
        "keyring_file_add_key",
        json!({"name": "k0", "path": loose}),
        EPERM,
    )
    .await;
    assert!(msg.contains("0640") && msg.contains("0600"), "{msg}");
    let msg = err(
        &mut c,
        "keyring_file_add_key",
        json!({"name": "k0", "path": "keys/k0"}),
        EPERM,
    )
    .await;
    assert!(msg.contains("absolute"), "{msg}");
    let missing = keys.path().join("missing");
    err(
        &mut c,
        "keyring_file_add_key",
        json!({"name": "k0", "path": missing}),
        ENOENT,
    )
    .await;
    let typo = key_file(keys.path(), "typo", &TLS_KEY.replace("LrZ:", "LrY:"), 0o600);
    let msg = err(
        &mut c,
        "keyring_file_add_key",
        json!({"name": "k0", "path": typo}),
        EINVAL,
    )
    .await;
    assert!(msg.contains("CRC") && !msg.contains("VRLbtn"), "{msg}");
    assert_eq!(ok(&mut c, "keyring_get_keys", Value::Null).await, json!([]));

    let tls = key_file(keys.path(), "tls", TLS_KEY, 0o600);
    let chap = key_file(keys.path(), "chap", &dhchap_key(), 0o400);
    ok(
        &mut c,
        "keyring_file_add_key",
        json!({"name": "tls0", "path": tls}),
    )
    .await;
    ok(
        &mut c,
        "keyring_file_add_key",
        json!({"name": "chap0", "path": chap}),
    )
    .await;
    err(
        &mut c,
        "keyring_file_add_key",
        json!({"name": "tls0", "path": tls}),
        EEXIST,
    )
    .await;
    let listed = ok(&mut c, "keyring_get_keys", Value::Null).await;
    assert_eq!(
        listed,
        json!([
            {"name": "chap0", "module": "keyring_file", "removed": false, "probed": false,
             "refcnt": 1, "path": chap.display().to_string()},
            {"name": "tls0", "module": "keyring_file", "removed": false, "probed": false,
             "refcnt": 1, "path": tls.display().to_string()},
        ])
    );
    ok(&mut c, "keyring_file_remove_key", json!({"name": "chap0"})).await;
    err(
        &mut c,
        "keyring_file_remove_key",
        json!({"name": "chap0"}),
        ENOENT,
    )
    .await;

    // Persisted as names and paths; the secret is nowhere in the configuration.
    let saved = ok(&mut c, "save_config", Value::Null).await;
    let section = saved["subsystems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["subsystem"] == "keyring")
        .unwrap()
        .clone();
    assert_eq!(
        section["config"],
        json!([{"method": "keyring_file_add_key",
            "params": {"name": "tls0", "path": tls.display().to_string()}}])
    );
    drop(c);
    let data = s.data_dir();
    let dir = s.stop().await;
    let state = std::fs::read_to_string(data.join("lamina.json")).unwrap();
    assert!(
        state.contains("tls0") && !state.contains("VRLbtn"),
        "{state}"
    );

    // Back after a restart.
    let cfg = empty_config(dir.path());
    let r = server::start(&args(&data, Some(cfg.clone())))
        .await
        .unwrap();
    let mut c = client(&r.rpc_socket).await;
    let listed = ok(&mut c, "keyring_get_keys", Value::Null).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["name"], "tls0");
    drop(c);
    server::shutdown(&r).await;

    // A key file gone at start-up: kept as pending, named, and back once the file is.
    std::fs::rename(&tls, keys.path().join("away")).unwrap();
    let r = server::start(&args(&data, Some(cfg))).await.unwrap();
    let mut c = client(&r.rpc_socket).await;
    assert_eq!(ok(&mut c, "keyring_get_keys", Value::Null).await, json!([]));
    let pending = ok(&mut c, "lamina_get_pending_config", Value::Null).await;
    let text = pending.to_string();
    assert!(
        text.contains(&format!("key tls0 ({})", tls.display())),
        "{text}"
    );
    std::fs::rename(keys.path().join("away"), &tls).unwrap();
    ok(&mut c, "lamina_retry_pending_config", Value::Null).await;
    let listed = ok(&mut c, "keyring_get_keys", Value::Null).await;
    assert_eq!(listed[0]["name"], "tls0");
    drop(c);
    server::shutdown(&r).await;
    drop(dir);
}

const INVALID_PARAMS: i32 = -32602;
const ENODEV: i32 = -19;

/// DH-HMAC-CHAP keys go on allow-list entries by name: checked to exist and to be DHHC-1
/// secrets, listed by name in `nvmf_get_subsystems`, replaced and cleared by
/// `nvmf_subsystem_set_keys`, held (refcnt) while in use, and saved by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dhchap_keys_go_on_hosts_by_name() {
    let s = TestServer::start().await;
    let keys = tempfile::tempdir().unwrap();
    let mut c = s.client().await;
    let nqn = "nqn.2016-06.io.lamina:chap";
    let host = "nqn.2014-08.org.nvmexpress:uuid:4b0e7f0c-6f7e-4a67-9d43-8c7f6ad2c1a1";
    ok(&mut c, "nvmf_create_subsystem", json!({"nqn": nqn})).await;
    for (name, text) in [
        ("tls0", TLS_KEY.to_owned()),
        ("chap0", dhchap_key()),
        ("chap1", dhchap_key()),
    ] {
        let p = key_file(keys.path(), name, &text, 0o600);
        ok(
            &mut c,
            "keyring_file_add_key",
            json!({"name": name, "path": p}),
        )
        .await;
    }
    let add = |extra: Value| {
        let mut p = json!({"nqn": nqn, "host": host});
        p.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        p
    };
    let msg = err(
        &mut c,
        "nvmf_subsystem_add_host",
        add(json!({"dhchap_key": "nope"})),
        ENOENT,
    )
    .await;
    assert!(msg.contains("dhchap_key") && msg.contains("nope"), "{msg}");
    let msg = err(
        &mut c,
        "nvmf_subsystem_add_host",
        add(json!({"dhchap_key": "tls0"})),
        INVALID_PARAMS,
    )
    .await;
    assert!(msg.contains("not a DH-HMAC-CHAP secret"), "{msg}");
    let msg = err(
        &mut c,
        "nvmf_subsystem_add_host",
        add(json!({"dhchap_ctrlr_key": "chap1"})),
        INVALID_PARAMS,
    )
    .await;
    assert!(msg.contains("dhchap_ctrlr_key needs dhchap_key"), "{msg}");
    let msg = err(
        &mut c,
        "nvmf_subsystem_add_host",
        add(json!({"psk": "chap0"})),
        INVALID_PARAMS,
    )
    .await;
    assert!(
        msg.contains("psk") && msg.contains("not a TLS PSK"),
        "{msg}"
    );

    ok(
        &mut c,
        "nvmf_subsystem_add_host",
        add(json!({"dhchap_key": "chap0", "dhchap_ctrlr_key": "chap1"})),
    )
    .await;
    let hosts = |subs: Value| subs[0]["hosts"].clone();
    let listed = ok(&mut c, "nvmf_get_subsystems", json!({"nqn": nqn})).await;
    assert_eq!(
        hosts(listed),
        json!([{"nqn": host, "dhchap_key": "chap0", "dhchap_ctrlr_key": "chap1"}])
    );
    let refcnt = |keys: &Value, name: &str| {
        keys.as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == name)
            .unwrap()["refcnt"]
            .clone()
    };
    let ring = ok(&mut c, "keyring_get_keys", Value::Null).await;
    assert_eq!(refcnt(&ring, "chap0"), 2, "the host entry holds it: {ring}");

    ok(
        &mut c,
        "nvmf_subsystem_set_keys",
        add(json!({"dhchap_key": "chap1"})),
    )
    .await;
    let listed = ok(&mut c, "nvmf_get_subsystems", json!({"nqn": nqn})).await;
    assert_eq!(hosts(listed), json!([{"nqn": host, "dhchap_key": "chap1"}]));
    let ring = ok(&mut c, "keyring_get_keys", Value::Null).await;
    assert_eq!(refcnt(&ring, "chap0"), 1, "released: {ring}");
    // Removed while the host entry holds it: listed as removed until it is let go.
    ok(&mut c, "keyring_file_remove_key", json!({"name": "chap1"})).await;
    let ring = ok(&mut c, "keyring_get_keys", Value::Null).await;
    let held = ring
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "chap1")
        .unwrap();
    assert_eq!(
        (&held["removed"], &held["refcnt"]),
        (&json!(true), &json!(1))
    );
    let other = json!({"nqn": nqn, "host": "nqn.2014-08.org.nvmexpress:uuid:other"});
    err(&mut c, "nvmf_subsystem_set_keys", other, ENODEV).await;

    let saved = ok(&mut c, "save_config", Value::Null).await;
    let text = saved.to_string();
    assert!(
        text.contains(r#""dhchap_key":"chap1""#) && !text.contains("DHHC-1"),
        "saved by name, never the secret: {text}"
    );
    ok(&mut c, "nvmf_subsystem_set_keys", add(json!({}))).await;
    let listed = ok(&mut c, "nvmf_get_subsystems", json!({"nqn": nqn})).await;
    assert_eq!(hosts(listed), json!([{"nqn": host}]));
    let ring = ok(&mut c, "keyring_get_keys", Value::Null).await;
    assert!(
        ring.as_array()
            .unwrap()
            .iter()
            .all(|k| k["name"] != "chap1"),
        "let go: {ring}"
    );
}
