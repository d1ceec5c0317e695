//! Shared fixtures of the management tests: an in-process target on a temporary data
//! directory, clients with timeouts, and small JSON helpers.

#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::time::Duration;

use lamina_target::cli::ServeArgs;
use lamina_target::logs::telemetry::LogFormat;
use lamina_target::mgmt::rpc::RpcError;
use lamina_target::mgmt::rpc::client::{ClientError, RpcClient};
use lamina_target::server::{self, Running};
use serde_json::{Value, json};

pub mod pending;

/// How long one call may take before the test calls the server stalled.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// The serve arguments for `data_dir`, listening on an ephemeral port.
pub fn args(data_dir: &Path, config: Option<PathBuf>) -> ServeArgs {
    ServeArgs {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        data_dir: data_dir.to_owned(),
        rpc_socket: None,
        rpc_listen: None,
        metrics: None,
        config,
        no_default: false,
        log_level: None,
        log_format: LogFormat::Text,
        limits: lamina_target::cli::LimitArgs::default(),
        // The tests keep their images next to the data directory.
        metrics_allow: Vec::new(),
        allow_path: data_dir
            .parent()
            .map(Path::to_path_buf)
            .into_iter()
            .collect(),
        pending_retry_interval: std::time::Duration::from_secs(30),
        io_uring: None,
        conn_runtime: None,
        io_stats: None,
        busy_poll_us: None,
        zero_copy_min: None,
        cores: None,
    }
}

/// An empty declarative file: the target starts with nothing but discovery.
pub fn empty_config(dir: &Path) -> PathBuf {
    let p = dir.join("empty.toml");
    std::fs::write(&p, "# nothing\n").unwrap();
    p
}

/// A target on its own temporary data directory.
pub struct TestServer {
    pub running: Running,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a target with nothing configured.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cfg = empty_config(dir.path());
        let running = server::start(&args(&dir.path().join("data"), Some(cfg)))
            .await
            .unwrap();
        Self { running, dir }
    }

    /// A new client connection.
    pub async fn client(&self) -> RpcClient {
        client(&self.running.rpc_socket).await
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Stops the target.
    pub async fn stop(self) -> tempfile::TempDir {
        server::shutdown(&self.running).await;
        self.dir
    }
}

/// A client of `socket` whose calls time out after [`CALL_TIMEOUT`].
pub async fn client(socket: &Path) -> RpcClient {
    let mut c = RpcClient::connect(socket).await.unwrap();
    c.set_timeout(CALL_TIMEOUT);
    c
}

/// Calls `method`; `Err` carries the JSON-RPC error. A transport failure (stall, broken
/// connection) panics: no test expects one.
pub async fn call(c: &mut RpcClient, method: &str, params: Value) -> Result<Value, RpcError> {
    let params = (!params.is_null()).then_some(params);
    match c.call(method, params).await {
        Ok(v) => Ok(v),
        Err(ClientError::Rpc(e)) => Err(e),
        Err(e) => panic!("{method}: {e}"),
    }
}

/// Calls `method` and expects success.
pub async fn ok(c: &mut RpcClient, method: &str, params: Value) -> Value {
    call(c, method, params.clone())
        .await
        .unwrap_or_else(|e| panic!("{method} {params}: {e}"))
}

/// Calls `method` and expects error `code`; returns the message.
pub async fn err(c: &mut RpcClient, method: &str, params: Value, code: i32) -> String {
    match call(c, method, params.clone()).await {
        Ok(v) => panic!("{method} {params}: expected error {code}, got {v}"),
        Err(e) => {
            assert_eq!(e.code, code, "{method} {params}: {}", e.message);
            e.message
        }
    }
}

/// Creates a sparse malloc bdev of `mib` MiB with 4 KiB blocks and an lvstore with 1 MiB
/// clusters.
pub async fn malloc_lvstore(c: &mut RpcClient, bdev: &str, lvs: &str, mib: u64) -> String {
    ok(
        c,
        "bdev_malloc_create",
        json!({"name": bdev, "num_blocks": mib * 256, "block_size": 4096, "sparse": true}),
    )
    .await;
    let uuid = ok(
        c,
        "bdev_lvol_create_lvstore",
        json!({"bdev_name": bdev, "lvs_name": lvs, "cluster_sz": 1 << 20}),
    )
    .await;
    uuid.as_str().unwrap().to_owned()
}

/// The lvol element named `alias` in `bdev_lvol_get_lvols`, if listed.
pub async fn lvol(c: &mut RpcClient, alias: &str) -> Option<Value> {
    let list = ok(c, "bdev_lvol_get_lvols", Value::Null).await;
    list.as_array()
        .unwrap()
        .iter()
        .find(|l| l["alias"] == alias)
        .cloned()
}

/// A TCP port free now on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
