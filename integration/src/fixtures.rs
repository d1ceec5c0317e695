//! Fixtures that run Lamina's own target in-process for end-to-end tests.
//!
//! [`TestTarget::start`] brings the real server up (`lamina_target::server::start`) on a fresh
//! temporary data directory with the embedded default (lvstore `lvs0` on a sparse file, thin
//! lvol `vol0` exported as namespace 1 of [`DEFAULT_NQN`]) listening on an ephemeral loopback
//! port; [`TestTarget::restart`] shuts it down cleanly and starts it again on the same data
//! directory. The JSON-RPC socket is reachable with [`TestTarget::rpc`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use lamina_target::cli::ServeArgs;
use lamina_target::logs::telemetry::LogFormat;
use lamina_target::mgmt::rpc::client::{ClientError, RpcClient};
use lamina_target::server::{self, Running};
use serde_json::Value;

use crate::host::{ConnectOptions, Controller, HostError};

/// The embedded default subsystem.
pub const DEFAULT_NQN: &str = lamina_target::server::DEFAULT_NQN;

/// A target running in this process.
#[derive(Debug)]
pub struct TestTarget {
    running: Running,
    dir: tempfile::TempDir,
    /// What it was started with; a restart starts it the same way.
    args: ServeArgs,
}

fn args(data_dir: &Path, listen: SocketAddr) -> ServeArgs {
    ServeArgs {
        listen: vec![listen],
        data_dir: data_dir.to_owned(),
        rpc_socket: None,
        rpc_listen: None,
        metrics: None,
        config: None,
        no_default: false,
        log_level: None,
        log_format: LogFormat::Text,
        limits: lamina_target::cli::LimitArgs::default(),
        metrics_allow: Vec::new(),
        allow_path: Vec::new(),
        pending_retry_interval: std::time::Duration::from_secs(30),
        io_uring: None,
        conn_runtime: None,
        io_stats: None,
        busy_poll_us: None,
        zero_copy_min: None,
        cores: None,
    }
}

impl TestTarget {
    /// Starts a target on a fresh data directory.
    ///
    /// # Panics
    /// When the target cannot start (a test cannot go on without it).
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temporary data directory");
        Self::start_in(dir, "127.0.0.1:0".parse().expect("address")).await
    }

    async fn start_in(dir: tempfile::TempDir, listen: SocketAddr) -> Self {
        let a = args(dir.path(), listen);
        Self::start_with_args(dir, a).await
    }

    async fn start_with_args(dir: tempfile::TempDir, args: ServeArgs) -> Self {
        let running = server::start(&args).await.expect("the target starts");
        Self { running, dir, args }
    }

    /// Starts a target on a fresh data directory with its `serve` flags changed by `change`
    /// (the data directory and the listen address are the fixture's).
    ///
    /// # Panics
    /// When the target cannot start.
    pub async fn start_with(change: impl FnOnce(&mut ServeArgs)) -> Self {
        let dir = tempfile::tempdir().expect("temporary data directory");
        let mut a = args(dir.path(), "127.0.0.1:0".parse().expect("address"));
        change(&mut a);
        Self::start_with_args(dir, a).await
    }

    /// Starts a target on a fresh data directory with these connection limits.
    ///
    /// # Panics
    /// When the target cannot start.
    pub async fn start_with_limits(limits: lamina_target::cli::LimitArgs) -> Self {
        let dir = tempfile::tempdir().expect("temporary data directory");
        let mut a = args(dir.path(), "127.0.0.1:0".parse().expect("address"));
        a.limits = limits;
        Self::start_with_args(dir, a).await
    }

    /// The NVMe/TCP address (loopback, ephemeral port).
    pub fn addr(&self) -> SocketAddr {
        self.running.ports[0]
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The JSON-RPC socket path.
    pub fn rpc_socket(&self) -> PathBuf {
        self.running.rpc_socket.clone()
    }

    /// The running target (registries, options).
    pub fn running(&self) -> &Running {
        &self.running
    }

    /// A JSON-RPC connection.
    pub async fn rpc(&self) -> RpcClient {
        RpcClient::connect(&self.running.rpc_socket)
            .await
            .expect("the RPC socket answers")
    }

    /// Calls one method on a fresh connection.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, ClientError> {
        self.rpc().await.call(method, Some(params)).await
    }

    /// Connection options for the default subsystem.
    pub fn options(&self) -> ConnectOptions {
        ConnectOptions::new(DEFAULT_NQN).expect("default NQN is valid")
    }

    /// A controller of the default subsystem with default options.
    pub async fn connect(&self) -> Result<Controller, HostError> {
        Controller::connect(self.addr(), self.options()).await
    }

    /// Shuts the target down cleanly (as SIGTERM does) and starts it again on the same data
    /// directory and port.
    pub async fn restart(self) -> Self {
        self.restart_after(|_| {}).await
    }

    /// Shuts the target down cleanly, runs `between` on the data directory (to take a device
    /// away, or put it back), and starts it again with the same flags, data directory and port.
    pub async fn restart_after(self, between: impl FnOnce(&Path)) -> Self {
        let addr = self.addr();
        server::shutdown(&self.running).await;
        drop(self.running);
        between(self.dir.path());
        let mut a = self.args;
        a.listen = vec![addr];
        Self::start_with_args(self.dir, a).await
    }

    /// The `/metrics`, `/healthz` and `/readyz` address, when started with `--metrics`.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.running.metrics_addr
    }

    /// Shuts the target down cleanly.
    pub async fn stop(self) {
        server::shutdown(&self.running).await;
    }
}

/// Bytes of a reproducible pattern (xorshift), different for every seed: what a test writes
/// and expects to read back.
pub fn pattern(seed: u64, len: usize) -> bytes::Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    bytes::Bytes::from(v)
}
