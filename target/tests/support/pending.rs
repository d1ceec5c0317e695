//! Fixtures of the pending-configuration tests: a target with `/readyz` and a short retry
//! interval, a configuration on an aio file that can be taken away, and probes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lamina_target::mgmt::rpc::client::RpcClient;
use lamina_target::server::{self, Running};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{args, empty_config, ok};

/// The subsystem the configuration exports from.
pub const NQN: &str = "nqn.2026-11.io.lamina:pending";

/// How often pending entries are retried in these tests.
pub const RETRY: Duration = Duration::from_millis(200);

/// A data directory, the base image beside it, and an empty `--config`.
pub struct Dirs {
    _tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub data: PathBuf,
    pub image: PathBuf,
    pub cfg: PathBuf,
}

impl Dirs {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        Self {
            data: dir.join("data"),
            image: dir.join("base.img"),
            cfg: empty_config(&dir),
            dir,
            _tmp: tmp,
        }
    }

    /// Where the image goes while it is "missing".
    pub fn away(&self) -> PathBuf {
        self.dir.join("base.img.away")
    }
}

/// Starts a target on `data` with `cfg`, `/readyz` on an ephemeral port and [`RETRY`].
pub async fn start(data: &Path, cfg: &Path) -> Running {
    let mut a = args(data, Some(cfg.to_owned()));
    a.metrics = Some("127.0.0.1:0".parse().unwrap());
    a.pending_retry_interval = RETRY;
    server::start(&a).await.unwrap()
}

/// Aio bdev `base0` on `image` (created, 64 MiB), lvstore `lvs0`, lvols `v1` (thick) and `v2`
/// (thin) exported as NSIDs 1 and 2 of [`NQN`]; returns `save_config`.
pub async fn configure(c: &mut RpcClient, image: &Path) -> Value {
    std::fs::File::create(image)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let p = json!({"name": "base0", "filename": image, "block_size": 4096});
    ok(c, "bdev_aio_create", p).await;
    let p = json!({"bdev_name": "base0", "lvs_name": "lvs0", "cluster_sz": 1 << 20});
    ok(c, "bdev_lvol_create_lvstore", p).await;
    let p = json!({"lvs_name": "lvs0", "lvol_name": "v1", "size_in_mib": 8});
    ok(c, "bdev_lvol_create", p).await;
    let p =
        json!({"lvs_name": "lvs0", "lvol_name": "v2", "size_in_mib": 16, "thin_provision": true});
    ok(c, "bdev_lvol_create", p).await;
    let p = json!({"nqn": NQN, "allow_any_host": true, "serial_number": "PENDING1"});
    ok(c, "nvmf_create_subsystem", p).await;
    let ns = json!({"nqn": NQN, "namespace": {"bdev_name": "lvs0/v1", "nsid": 1}});
    ok(c, "nvmf_subsystem_add_ns", ns).await;
    let ns = json!({"nqn": NQN, "namespace": {"bdev_name": "lvs0/v2"}});
    assert_eq!(ok(c, "nvmf_subsystem_add_ns", ns).await, json!(2));
    ok(c, "save_config", Value::Null).await
}

/// The calls of one section of a `save_config` document.
pub fn calls(config: &Value, section: &str) -> Vec<Value> {
    config["subsystems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["subsystem"] == section)
        .map(|s| s["config"].as_array().unwrap().clone())
        .unwrap_or_default()
}

/// The calls of `config` that create base0 or add a namespace to [`NQN`]: what must survive.
pub fn kept(config: &Value) -> Vec<Value> {
    let mut out: Vec<Value> = calls(config, "bdev")
        .into_iter()
        .filter(|c| c["params"]["name"] == "base0")
        .collect();
    out.extend(
        calls(config, "nvmf")
            .into_iter()
            .filter(|c| c["method"] == "nvmf_subsystem_add_ns" && c["params"]["nqn"] == NQN),
    );
    out
}

/// `DATA_DIR/lamina.json`, parsed.
pub fn state_file(data: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(data.join("lamina.json")).unwrap()).unwrap()
}

/// The pending entries.
pub async fn pending(c: &mut RpcClient) -> Vec<Value> {
    let v = ok(c, "lamina_get_pending_config", Value::Null).await;
    v.as_array().unwrap().clone()
}

/// What each pending entry creates.
pub fn objects(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|e| e["object"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until nothing is pending (the retry task did it), within `limit`.
pub async fn wait_applied(c: &mut RpcClient, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let left = pending(c).await;
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still pending after {limit:?}: {left:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET path` on the metrics endpoint: status code and body.
pub async fn http_get(running: &Running, path: &str) -> (u16, String) {
    let addr = running.metrics_addr.unwrap();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let code = out
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not HTTP: {out}"));
    let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    (code, body)
}

/// The value of an unlabelled metric in `/metrics`.
pub async fn metric(running: &Running, name: &str) -> f64 {
    let (_, text) = http_get(running, "/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} not exposed"))
        .trim()
        .parse()
        .unwrap()
}
