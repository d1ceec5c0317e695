//! The `lamina` management CLI driven as a user would: the real binary against an in-process
//! target, checking tables, `--json` output, messages and exit codes (0 ok, 1 refused by the
//! server, 2 usage, 3 unreachable).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; a panic is a failure

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::TestServer;

/// What one run of the binary printed.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(self) -> String {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self.stdout
    }

    fn json(self) -> Value {
        let text = self.ok();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }

    fn fails(self, code: i32) -> String {
        assert_eq!(
            self.code, code,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self.stderr
    }
}

/// Runs `lamina ARGS --socket SOCKET` off the async runtime, with progress bars on.
async fn lamina(socket: &Path, args: &[&str]) -> Out {
    let socket: PathBuf = socket.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_lamina"))
            .args(&args)
            .arg("--socket")
            .arg(&socket)
            .env("LAMINA_PROGRESS", "always")
            .env("LAMINA_PROGRESS_INTERVAL_MS", "20")
            .output()
            .unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

const NQN: &str = "nqn.2026-11.io.lamina:cli";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_work_through_the_cli() {
    let s = TestServer::start().await;
    let sock = s.running.rpc_socket.clone();
    let out = lamina(
        &sock,
        &[
            "bdev",
            "create-malloc",
            "m0",
            "256M",
            "--block-size",
            "4096",
        ],
    );
    assert!(out.await.ok().contains("Created bdev m0, 256 MiB"));
    let out = lamina(
        &sock,
        &["lvstore", "create", "m0", "lvs0", "--cluster-size", "1M"],
    );
    assert!(out.await.ok().starts_with("Created lvstore lvs0 ("));
    let list = lamina(&sock, &["lvstore", "list"]).await.ok();
    let lines: Vec<&str> = list.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("FREE"),
        "{list}"
    );
    assert!(
        lines[1].starts_with("lvs0") && lines[1].contains("m0"),
        "{list}"
    );
    let v = lamina(&sock, &["lvstore", "list", "--json"]).await.json();
    assert_eq!(v[0]["cluster_size"], 1 << 20);

    let out = lamina(&sock, &["lvol", "create", "lvs0/vol0", "64M", "--thin"])
        .await
        .ok();
    assert!(
        out.contains("Created thin lvol lvs0/vol0") && out.contains("64 MiB"),
        "{out}"
    );
    let uuid = lamina(
        &sock,
        &["lvol", "create", "vol1", "8M", "-l", "lvs0", "--json"],
    )
    .await
    .json();
    assert!(uuid.is_string());
    let table = lamina(&sock, &["lvol", "list"]).await.ok();
    let row = table.lines().find(|l| l.starts_with("lvs0/vol1")).unwrap();
    assert!(
        row.contains(uuid.as_str().unwrap()) && row.contains("8 MiB"),
        "{table}"
    );
    assert!(row.contains("thick"), "{table}");
    let out = lamina(&sock, &["lvol", "snapshot", "lvs0/vol0", "snap0"])
        .await
        .ok();
    assert!(out.starts_with("Created snapshot snap0"), "{out}");
    lamina(&sock, &["lvol", "clone", "lvs0/snap0", "clone0"])
        .await
        .ok();
    let json = lamina(&sock, &["lvol", "list", "--lvstore", "lvs0", "--json"])
        .await
        .json();
    let aliases: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["alias"].as_str().unwrap())
        .collect();
    assert_eq!(
        aliases,
        ["lvs0/clone0", "lvs0/snap0", "lvs0/vol0", "lvs0/vol1"]
    );
    let table = lamina(&sock, &["lvol", "list"]).await.ok();
    let row = table
        .lines()
        .find(|l| l.starts_with("lvs0/clone0"))
        .unwrap();
    assert!(
        row.contains("thin clone") && row.ends_with("snap0"),
        "{table}"
    );
    lamina(&sock, &["lvol", "inflate", "lvs0/clone0"])
        .await
        .ok();
    lamina(&sock, &["lvol", "decouple", "lvs0/vol0"]).await.ok();
    let out = lamina(&sock, &["lvol", "resize", "lvs0/vol0", "100M"])
        .await
        .ok();
    assert!(out.contains("100 MiB"), "{out}");
    lamina(&sock, &["lvol", "rename", "lvs0/vol0", "data"])
        .await
        .ok();
    lamina(&sock, &["lvol", "set-read-only", "lvs0/snap0"])
        .await
        .ok();
    subsystems(&sock).await;
    cleanup(&sock).await;
    s.stop().await;
}

async fn subsystems(sock: &Path) {
    let port = support::free_port().to_string();
    let addr = format!("127.0.0.1:{port}");
    let out = lamina(
        sock,
        &["subsystem", "create", NQN, "--serial-number", "CLI1"],
    );
    out.await.ok();
    lamina(sock, &["subsystem", "add-listener", NQN, &addr])
        .await
        .ok();
    let host = "nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427";
    lamina(sock, &["subsystem", "add-host", NQN, host])
        .await
        .ok();
    let out = lamina(
        sock,
        &["subsystem", "add-ns", NQN, "lvs0/data", "--nsid", "4"],
    )
    .await;
    assert!(out.ok().contains("as namespace 4 of"));
    let table = lamina(sock, &["subsystem", "list"]).await.ok();
    let row = table.lines().find(|l| l.starts_with(NQN)).unwrap();
    assert!(
        row.contains(&addr) && row.contains(host) && row.ends_with("4=lvs0/data"),
        "{table}"
    );
    assert!(!table.contains("discovery"), "{table}");
    let all = lamina(sock, &["subsystem", "list", "--all", "--json"])
        .await
        .json();
    assert_eq!(all.as_array().unwrap().len(), 2);
    // Refusals: exit 1 with the server's reason and code.
    let err = lamina(sock, &["lvol", "delete", "lvs0/data"])
        .await
        .fails(1);
    assert!(
        err.contains("bdev_lvol_delete failed") && err.contains("-16"),
        "{err}"
    );
    assert!(err.contains("nvmf_subsystem_remove_ns"), "{err}");
    let err = lamina(sock, &["bdev", "delete", "m0"]).await.fails(1);
    assert!(err.contains("in use"), "{err}");
    lamina(sock, &["subsystem", "allow-any-host", NQN, "on"])
        .await
        .ok();
    lamina(sock, &["subsystem", "remove-host", NQN, host])
        .await
        .ok();
    lamina(sock, &["subsystem", "remove-listener", NQN, &addr])
        .await
        .ok();
    lamina(sock, &["subsystem", "remove-ns", NQN, "4"])
        .await
        .ok();
    lamina(sock, &["subsystem", "delete", NQN]).await.ok();
}

async fn cleanup(sock: &Path) {
    let err = lamina(sock, &["lvol", "delete", "lvs0/nope"])
        .await
        .fails(1);
    assert!(err.contains("-19"), "{err}");
    for lvol in ["lvs0/clone0", "lvs0/data", "lvs0/snap0", "lvs0/vol1"] {
        let out = lamina(sock, &["lvol", "delete", lvol]).await.ok();
        assert!(out.contains("Deleted lvol"), "{out}");
    }
    assert_eq!(
        lamina(sock, &["lvol", "list"]).await.ok().trim(),
        "No lvols."
    );
    lamina(sock, &["lvstore", "rename", "lvs0", "lvs1"])
        .await
        .ok();
    lamina(sock, &["lvstore", "grow", "lvs1"]).await.ok();
    lamina(sock, &["lvstore", "delete", "lvs1"]).await.ok();
    let table = lamina(sock, &["bdev", "list"]).await.ok();
    assert!(table.lines().nth(1).unwrap().starts_with("m0"), "{table}");
    lamina(sock, &["bdev", "delete", "m0"]).await.ok();
    assert_eq!(
        lamina(sock, &["bdev", "list", "--json"]).await.json(),
        Value::Array(vec![])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_and_unreachable_exit_codes() {
    let s = TestServer::start().await;
    let sock = s.running.rpc_socket.clone();
    let err = lamina(&sock, &["lvol", "create", "lvs0/x", "10Q"])
        .await
        .fails(2);
    assert!(err.contains("10Q"), "{err}");
    let err = lamina(&sock, &["lvol", "create", "x", "10G"])
        .await
        .fails(2);
    assert!(err.contains("lvstore/name"), "{err}");
    let err = lamina(&sock, &["subsystem", "add-listener", NQN, "nowhere"]).await;
    err.fails(2);
    let err = lamina(
        &sock,
        &["bdev", "create-malloc", "m", "1000", "--block-size", "512"],
    );
    assert!(err.await.fails(2).contains("multiple"));
    let err = lamina(&sock, &["rpc", "bdev_get_bdevs", "{not json"])
        .await
        .fails(2);
    assert!(err.contains("not valid JSON"), "{err}");
    let gone = s.dir.path().join("nothing.sock");
    let err = lamina(&gone, &["lvol", "list"]).await.fails(3);
    assert!(err.contains("lamina serve"), "{err}");
    lamina(&gone, &["rpc", "rpc_get_methods"]).await.fails(3);
    let v = lamina(&sock, &["rpc", "bdev_lvol_get_lvstores"])
        .await
        .json();
    assert_eq!(v, Value::Array(vec![]));
    s.stop().await;
}

/// A long inflate draws a progress bar on stderr (forced on: stderr is a pipe here) and clears
/// it before the result; with `--json` stdout stays pure JSON. 512 Ki clusters of zero-fill
/// on a sparse memory bdev take a few hundred milliseconds: many 20 ms polls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_inflate_draws_progress() {
    let s = TestServer::start().await;
    let sock = s.running.rpc_socket.clone();
    lamina(
        &sock,
        &[
            "bdev",
            "create-malloc",
            "m1",
            "600G",
            "--block-size",
            "4096",
            "--sparse",
        ],
    )
    .await
    .ok();
    lamina(
        &sock,
        &["lvstore", "create", "m1", "big", "--cluster-size", "1M"],
    )
    .await
    .ok();
    lamina(&sock, &["lvol", "create", "big/v", "512G", "--thin"])
        .await
        .ok();
    lamina(&sock, &["lvol", "snapshot", "big/v", "s"])
        .await
        .ok();
    let out = lamina(&sock, &["lvol", "inflate", "big/v"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("Inflated lvol big/v"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("\r\x1b[2Kbdev_lvol_inflate big/v ["),
        "{:?}",
        out.stderr
    );
    assert!(out.stderr.contains("/524288 clusters"), "{:?}", out.stderr);
    assert!(
        out.stderr.ends_with("\r\x1b[2K"),
        "bar not cleared: {:?}",
        out.stderr
    );
    let v = lamina(&sock, &["lvol", "list", "--json", "-l", "big"])
        .await
        .json();
    let lvols = v.as_array().unwrap();
    let inflated = lvols.iter().find(|l| l["alias"] == "big/v").unwrap();
    assert_eq!(inflated["is_thin_provisioned"], false);
    assert_eq!(inflated["is_clone"], false);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lvstore_check_online_offline_and_repair() {
    let s = TestServer::start().await;
    let sock = s.running.rpc_socket.clone();
    let img = s.dir.path().join("lvs.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(256 << 20)
        .unwrap();
    let img_s = img.to_str().unwrap();
    lamina(
        &sock,
        &[
            "rpc",
            "bdev_aio_create",
            &format!(r#"{{"name":"f0","filename":"{img_s}"}}"#),
        ],
    )
    .await
    .ok();
    lamina(&sock, &["lvstore", "create", "f0", "lvs1"])
        .await
        .ok();
    lamina(&sock, &["lvol", "create", "lvs1/v", "64M", "--thin"])
        .await
        .ok();
    // Online: a verdict line, and the report as JSON.
    let text = lamina(&sock, &["lvstore", "check", "lvs1"]).await.ok();
    assert!(text.starts_with("lvs1 ("), "{text}");
    assert!(text.contains(": consistent"), "{text}");
    let json = lamina(&sock, &["lvstore", "check", "--json"]).await.json();
    assert_eq!(json[0]["consistent"], true, "{json}");
    assert_eq!(json[0]["lvols"], 1, "{json}");
    // Offline on a device the target holds: refused, pointing at the online check.
    let err = lamina(&sock, &["lvstore", "check", "--device", img_s])
        .await
        .fails(1);
    assert!(err.contains("in use"), "{err}");
    let _dir = s.stop().await;
    // The target is gone: the offline check and a repair of a consistent store.
    let json = lamina(&sock, &["lvstore", "check", "--device", img_s, "--json"])
        .await
        .json();
    assert_eq!(json[0]["consistent"], true, "{json}");
    assert!(json[0]["journal_records"].as_u64().unwrap() > 0, "{json}");
    let out = lamina(
        &sock,
        &["lvstore", "repair", "--device", img_s, "--no-backup"],
    )
    .await
    .ok();
    assert!(out.contains("nothing to repair"), "{out}");
    let usage = lamina(&sock, &["lvstore", "repair", "--device", img_s])
        .await
        .fails(2);
    assert!(usage.contains("--backup"), "{usage}");
}

/// `lamina keyring` and namespace masking (`subsystem add-ns --hidden`, `ns-add-host`,
/// `ns-remove-host`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_hidden_namespaces() {
    use std::os::unix::fs::PermissionsExt as _;
    let s = TestServer::start().await;
    let sock = s.running.rpc_socket.clone();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key0");
    std::fs::write(
        &key,
        "NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:\n",
    )
    .unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = lamina(&sock, &["keyring", "add", "k0", key.to_str().unwrap()])
        .await
        .fails(1);
    assert!(err.contains("0644"), "{err}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = lamina(&sock, &["keyring", "add", "k0", key.to_str().unwrap()])
        .await
        .ok();
    assert!(out.starts_with("Added key k0"), "{out}");
    let table = lamina(&sock, &["keyring", "list"]).await.ok();
    assert!(
        table.contains("k0") && table.contains(key.to_str().unwrap()),
        "{table}"
    );
    assert!(!table.contains("VRLbtn"), "{table}");
    lamina(&sock, &["keyring", "remove", "k0"]).await.ok();
    assert_eq!(
        lamina(&sock, &["keyring", "list"]).await.ok().trim(),
        "No keys."
    );

    let nqn = "nqn.2026-11.io.lamina:masked";
    let host = "nqn.2014-08.org.nvmexpress:uuid:0a0a0a0a-0000-4000-8000-00000000000a";
    for m in ["m1", "m2"] {
        lamina(&sock, &["bdev", "create-malloc", m, "16M"])
            .await
            .ok();
    }
    lamina(&sock, &["subsystem", "create", nqn, "--allow-any-host"])
        .await
        .ok();
    lamina(&sock, &["subsystem", "add-ns", nqn, "m1"])
        .await
        .ok();
    lamina(&sock, &["subsystem", "add-ns", nqn, "m2", "--hidden"])
        .await
        .ok();
    let out = lamina(&sock, &["subsystem", "ns-add-host", nqn, "2", host])
        .await
        .ok();
    assert!(out.contains("now sees namespace 2"), "{out}");
    let subs = lamina(&sock, &["subsystem", "list", nqn, "--json"])
        .await
        .json();
    assert_eq!(subs[0]["namespaces"][1]["hosts"][0], host);
    lamina(&sock, &["subsystem", "ns-remove-host", nqn, "2", host])
        .await
        .ok();
    let err = lamina(&sock, &["subsystem", "ns-add-host", nqn, "1", host])
        .await
        .fails(1);
    assert!(err.contains("visible to every host"), "{err}");

    // A host that must authenticate, then its keys replaced.
    let chap = dir.path().join("chap0");
    std::fs::write(
        &chap,
        "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:\n",
    )
    .unwrap();
    std::fs::set_permissions(&chap, std::fs::Permissions::from_mode(0o600)).unwrap();
    lamina(&sock, &["keyring", "add", "chap0", chap.to_str().unwrap()])
        .await
        .ok();
    let out = lamina(
        &sock,
        &["subsystem", "add-host", nqn, host, "--dhchap-key", "chap0"],
    )
    .await
    .ok();
    assert!(out.contains("authenticating (DH-HMAC-CHAP)"), "{out}");
    let subs = lamina(&sock, &["subsystem", "list", nqn, "--json"])
        .await
        .json();
    assert_eq!(subs[0]["hosts"][0]["dhchap_key"], "chap0");
    let out = lamina(&sock, &["subsystem", "set-keys", nqn, host])
        .await
        .ok();
    assert!(out.contains("replaced"), "{out}");
    let subs = lamina(&sock, &["subsystem", "list", nqn, "--json"])
        .await
        .json();
    assert_eq!(subs[0]["hosts"][0], serde_json::json!({"nqn": host}));
    let usage = lamina(
        &sock,
        &[
            "subsystem",
            "set-keys",
            nqn,
            host,
            "--dhchap-ctrlr-key",
            "chap0",
        ],
    )
    .await
    .fails(2);
    assert!(usage.contains("--dhchap-key"), "{usage}");
    s.stop().await;
}
