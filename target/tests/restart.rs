//! Configuration that survives: a clean restart and a `kill -9` of the real binary bring back
//! bdevs, lvstores, lvols (from their devices), the transport, subsystems, listeners, hosts and
//! namespaces; `--config` in Lamina TOML or SPDK JSON creates what is missing and leaves what
//! exists.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; a panic is a failure

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lamina_target::mgmt::rpc::client::RpcClient;
use lamina_target::server;
use serde_json::{Value, json};
use support::{TestServer, args, client, free_port, ok};

const NQN: &str = "nqn.2026-11.io.lamina:restart";
const HOST: &str = "nqn.2014-08.org.nvmexpress:uuid:5f2a1c3e-9d7b-4e1a-8c6f-1b2d3e4f5a6b";

/// Builds a configuration worth restoring; returns what must come back.
async fn configure(c: &mut RpcClient, dir: &Path, port: u16) {
    let file = dir.join("base.img");
    std::fs::File::create(&file)
        .unwrap()
        .set_len(256 << 20)
        .unwrap();
    let p = json!({"name": "base0", "filename": file, "block_size": 4096});
    ok(c, "bdev_aio_create", p).await;
    let p = json!({"bdev_name": "base0", "lvs_name": "lvs0", "cluster_sz": 1 << 20});
    ok(c, "bdev_lvol_create_lvstore", p).await;
    let p = json!({"lvs_name": "lvs0", "lvol_name": "thick", "size_in_mib": 8});
    ok(c, "bdev_lvol_create", p).await;
    let p =
        json!({"lvs_name": "lvs0", "lvol_name": "thin", "size_in_mib": 64, "thin_provision": true});
    ok(c, "bdev_lvol_create", p).await;
    let p = json!({"lvol_name": "lvs0/thin", "snapshot_name": "snap"});
    ok(c, "bdev_lvol_snapshot", p).await;
    let p = json!({"snapshot_name": "lvs0/snap", "clone_name": "clone"});
    ok(c, "bdev_lvol_clone", p).await;
    let p = json!({"trtype": "TCP", "max_io_size": 131_072, "in_capsule_data_size": 4096});
    ok(c, "nvmf_create_transport", p).await;
    let p = json!({"nqn": NQN, "serial_number": "RESTART1", "model_number": "Lamina test"});
    ok(c, "nvmf_create_subsystem", p).await;
    let la = json!({"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1",
        "trsvcid": port.to_string()});
    ok(
        c,
        "nvmf_subsystem_add_listener",
        json!({"nqn": NQN, "listen_address": la}),
    )
    .await;
    ok(
        c,
        "nvmf_subsystem_add_host",
        json!({"nqn": NQN, "host": HOST}),
    )
    .await;
    let ns = json!({"nqn": NQN, "namespace": {"bdev_name": "lvs0/thick", "nsid": 3,
        "uuid": "6f1c8e0a-3b2d-4c5e-9f7a-0b1c2d3e4f50"}});
    ok(c, "nvmf_subsystem_add_ns", ns).await;
    let ns = json!({"nqn": NQN, "namespace": {"bdev_name": "lvs0/clone"}});
    ok(c, "nvmf_subsystem_add_ns", ns).await;
}

/// Everything observable about the configuration, to compare across a restart.
async fn snapshot(c: &mut RpcClient, nqn: &str) -> Value {
    json!({
        "config": ok(c, "save_config", Value::Null).await,
        "lvstores": ok(c, "bdev_lvol_get_lvstores", Value::Null).await,
        "lvols": ok(c, "bdev_lvol_get_lvols", Value::Null).await,
        "bdevs": ok(c, "bdev_get_bdevs", Value::Null).await,
        "subsystems": ok(c, "nvmf_get_subsystems", json!({"nqn": nqn})).await,
        "transports": ok(c, "nvmf_get_transports", Value::Null).await,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_restart_restores_everything() {
    let s = TestServer::start().await;
    let port = free_port();
    let mut c = s.client().await;
    configure(&mut c, s.dir.path(), port).await;
    let before = snapshot(&mut c, NQN).await;
    assert_eq!(before["lvols"].as_array().unwrap().len(), 4);
    drop(c);
    let data = s.data_dir();
    let dir = s.stop().await;
    // No --config this time: the persisted state alone.
    let running = server::start(&args(&data, None)).await.unwrap();
    let mut c = client(&running.rpc_socket).await;
    let after = snapshot(&mut c, NQN).await;
    assert_eq!(after, before);
    // The restored listener really listens.
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("restored listener");
    server::shutdown(&running).await;
    drop(dir);
}

fn spawn_serve(data: &Path, config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_lamina"))
        .args(["serve", "--listen", "127.0.0.1:0", "--log-level", "warn"])
        .arg("--data-dir")
        .arg(data)
        .arg("--allow-path")
        .arg(data.parent().unwrap())
        .arg("--config")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits until the server at `socket` answers.
async fn wait_up(socket: &Path, child: &mut Child) -> RpcClient {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut c) = RpcClient::connect(socket).await {
            c.set_timeout(support::CALL_TIMEOUT);
            if c.call("framework_wait_init", None).await.is_ok() {
                return c;
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "lamina serve exited during start-up"
        );
        assert!(Instant::now() < deadline, "lamina serve did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_keeps_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let data: PathBuf = dir.path().join("data");
    let cfg = support::empty_config(dir.path());
    let socket = data.join("lamina.sock");
    let port = free_port();
    let mut child = spawn_serve(&data, &cfg);
    let mut c = wait_up(&socket, &mut child).await;
    configure(&mut c, dir.path(), port).await;
    let before = snapshot(&mut c, NQN).await;
    drop(c);
    child.kill().unwrap(); // SIGKILL: no shutdown, no flush
    child.wait().unwrap();
    let mut child = spawn_serve(&data, &cfg);
    let mut c = wait_up(&socket, &mut child).await;
    let after = snapshot(&mut c, NQN).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(after, before);
}

const TOML_NQN: &str = "nqn.2026-11.io.lamina:toml";

const TOML: &str = r#"
[transport]
max_io_size = "128K"

[[key]]
name = "tls0"
path = "@DIR@/tls0.key"

[[key]]
name = "chap0"
path = "@DIR@/chap0.key"

[[bdev]]
name = "m0"
type = "malloc"
size = "64M"
block_size = 4096
sparse = true

[[bdev]]
name = "data0"
type = "aio"
filename = "@DIR@/images/data0.img"
size = "256M"
block_size = 4096

[[lvstore]]
name = "lvs0"
bdev = "data0"
cluster_size = "1M"

[[lvol]]
name = "vol0"
lvstore = "lvs0"
size = "16M"
thin = true

[[subsystem]]
nqn = "nqn.2026-11.io.lamina:toml"
serial_number = "TOML0001"
listeners = ["127.0.0.1:@PORT@"]
hosts = ["nqn.2014-08.org.nvmexpress:uuid:5f2a1c3e-9d7b-4e1a-8c6f-1b2d3e4f5a6b",
    { nqn = "nqn.2014-08.org.nvmexpress:uuid:9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a", dhchap_key = "chap0" }]

[[subsystem.namespace]]
bdev = "lvs0/vol0"
nsid = 1

[[subsystem.namespace]]
bdev = "m0"
nsid = 2
hosts = ["nqn.2014-08.org.nvmexpress:uuid:5f2a1c3e-9d7b-4e1a-8c6f-1b2d3e4f5a6b"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toml_config_creates_what_is_missing_and_leaves_what_exists() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("lamina.toml");
    let text = TOML
        .replace("@DIR@", &dir.path().display().to_string())
        .replace("@PORT@", &free_port().to_string());
    std::fs::write(&cfg, text).unwrap();
    let key = dir.path().join("tls0.key");
    std::fs::write(
        &key,
        "NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:\n",
    )
    .unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let chap = dir.path().join("chap0.key");
    std::fs::write(
        &chap,
        "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:\n",
    )
    .unwrap();
    std::fs::set_permissions(&chap, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let running = server::start(&args(&data, Some(cfg.clone())))
        .await
        .unwrap();
    let mut c = client(&running.rpc_socket).await;
    let t = ok(&mut c, "nvmf_get_transports", Value::Null).await;
    assert_eq!(t[0]["max_io_size"], 131_072);
    let sub = ok(
        &mut c,
        "nvmf_get_subsystems",
        json!({"nqn": "nqn.2026-11.io.lamina:toml"}),
    )
    .await;
    let vol = support::lvol(&mut c, "lvs0/vol0").await.unwrap();
    assert_eq!(sub[0]["namespaces"][0]["bdev_name"], vol["uuid"]);
    assert_eq!(sub[0]["hosts"].as_array().unwrap().len(), 2);
    assert_eq!(sub[0]["hosts"][1]["dhchap_key"], "chap0");
    assert_eq!(
        (
            sub[0]["namespaces"][1]["no_auto_visible"].clone(),
            sub[0]["namespaces"][1]["hosts"].clone()
        ),
        (json!(true), json!([sub[0]["hosts"][0]["nqn"]]))
    );
    let keys = ok(&mut c, "keyring_get_keys", Value::Null).await;
    assert_eq!(
        (&keys[0]["name"], &keys[1]["name"]),
        (&json!("chap0"), &json!("tls0"))
    );
    let saved = ok(&mut c, "save_config", Value::Null).await.to_string();
    assert!(saved.contains(r#""sparse":true"#), "{saved}");
    // Changed over RPC after the start: must survive the next start with the same file.
    let p = json!({"lvs_name": "lvs0", "lvol_name": "extra", "size_in_mib": 4});
    ok(&mut c, "bdev_lvol_create", p).await;
    let p = json!({"nqn": "nqn.2026-11.io.lamina:toml", "allow_any_host": true});
    ok(&mut c, "nvmf_subsystem_allow_any_host", p).await;
    let before = snapshot(&mut c, TOML_NQN).await;
    // Applying the file again on the running target: everything is there.
    let r = lamina_target::mgmt::config::apply_file(&running.target, &running.methods, &cfg)
        .await
        .unwrap();
    assert_eq!((r.created, r.failed), (0, 0), "{r:?}");
    assert_eq!(r.existing, 14, "{r:?}");
    drop(c);
    server::shutdown(&running).await;
    let running = server::start(&args(&data, Some(cfg))).await.unwrap();
    let mut c = client(&running.rpc_socket).await;
    let after = snapshot(&mut c, TOML_NQN).await;
    assert_eq!(after["lvols"], before["lvols"]);
    assert_eq!(after["config"], before["config"]);
    assert!(support::lvol(&mut c, "lvs0/extra").await.is_some());
    server::shutdown(&running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spdk_json_config_is_replayed_and_idempotent() {
    let s = TestServer::start().await;
    let mut c = s.client().await;
    let p = json!({"name": "m0", "num_blocks": 2048, "block_size": 512});
    ok(&mut c, "bdev_malloc_create", p).await;
    ok(&mut c, "nvmf_create_transport", json!({"trtype": "TCP"})).await;
    let port = free_port();
    let p = json!({"nqn": NQN, "allow_any_host": true});
    ok(&mut c, "nvmf_create_subsystem", p).await;
    let la = json!({"trtype": "TCP", "traddr": "127.0.0.1", "trsvcid": port.to_string()});
    ok(
        &mut c,
        "nvmf_subsystem_add_listener",
        json!({"nqn": NQN, "listen_address": la}),
    )
    .await;
    let ns = json!({"nqn": NQN, "namespace": {"bdev_name": "m0", "nsid": 1}});
    ok(&mut c, "nvmf_subsystem_add_ns", ns).await;
    let saved = ok(&mut c, "save_config", Value::Null).await;
    drop(c);
    let json_file = s.dir.path().join("spdk.json");
    std::fs::write(&json_file, serde_json::to_vec_pretty(&saved).unwrap()).unwrap();
    let _keep = s.stop().await;

    // A fresh node started from that file has the same configuration (malloc bdevs come
    // back empty, as in SPDK).
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let running = server::start(&args(&data, Some(json_file.clone())))
        .await
        .unwrap();
    let mut c = client(&running.rpc_socket).await;
    assert_eq!(ok(&mut c, "save_config", Value::Null).await, saved);
    let r = lamina_target::mgmt::config::apply_file(&running.target, &running.methods, &json_file)
        .await
        .unwrap();
    // Settings (`*_set_*`) are applied again, to the same values; everything else is there.
    let settings = saved["subsystems"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["config"].as_array().cloned().unwrap_or_default())
        .filter(|c| c["method"].as_str().unwrap().contains("_set_"))
        .count();
    assert!(settings > 0, "{saved}");
    assert_eq!((r.created, r.failed), (settings, 0), "{r:?}");
    assert_eq!(r.existing, 5, "{r:?}");
    let c2 = &mut client(&running.rpc_socket).await;
    assert_eq!(ok(c2, "save_config", Value::Null).await, saved);
    server::shutdown(&running).await;
}
