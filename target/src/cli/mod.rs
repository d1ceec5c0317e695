//! The `lamina` command line: `serve` runs the target, `rpc` sends any JSON-RPC method, and
//! readable subcommands cover daily management work.
//!
//! Every `serve` flag can also come from an environment variable `LAMINA_<FLAG>` (containers,
//! systemd drop-ins); a flag on the command line wins over the variable.
//!
//! The management subcommands (`lvstore`, `lvol`, `subsystem`, `bdev`, `config`, `keyring`)
//! talk to a running server
//! over its JSON-RPC socket (`--socket PATH`, env `LAMINA_RPC_SOCKET`, default
//! `./lamina-data/lamina.sock`), print a table or a sentence, or the JSON-RPC result with
//! `--json`, and exit with a stable code: 0 success, 1 the server refused (JSON-RPC error),
//! 2 usage error, 3 server unreachable (see [`session`]).
//!
//! # Layout
//! - [`rpc`]: `lamina rpc METHOD [PARAMS]`, any method.
//! - [`lvstore`], [`lvol`], [`subsystem`], [`bdev`], [`keyring`]: the readable subcommands;
//!   [`config`]:
//!   pending configuration (what start-up could not apply).
//! - [`session`]: flags, connection, errors and exit codes they share; [`table`]: text tables;
//!   [`progress`]: progress bars for long operations (human sizes are [`crate::units`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use crate::logs::telemetry::LogFormat;

pub mod bdev;
pub mod config;
pub mod keyring;
pub mod lvol;
pub mod lvstore;
pub mod lvstore_check;
pub mod progress;
pub mod rpc;
pub mod session;
pub mod subsystem;
pub mod table;

/// The default data directory.
pub const DEFAULT_DATA_DIR: &str = "./lamina-data";
/// The RPC socket's file name inside the data directory.
pub const RPC_SOCKET_NAME: &str = "lamina.sock";

/// Lamina, an NVMe-over-TCP target server.
#[derive(Debug, Parser)]
#[command(name = "lamina", version = crate::VERSION, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the NVMe/TCP target.
    Serve(ServeArgs),
    /// Send one JSON-RPC request and print its result.
    Rpc(rpc::RpcArgs),
    /// Manage lvol stores: create, list, delete, rename, grow.
    Lvstore(lvstore::LvstoreArgs),
    /// Manage logical volumes: create, list, delete, resize, rename, snapshot, clone, inflate.
    Lvol(lvol::LvolArgs),
    /// Manage NVMe-oF subsystems: create, list, delete, namespaces, listeners, hosts.
    Subsystem(subsystem::SubsystemArgs),
    /// Manage base bdevs: files, block devices, memory.
    Bdev(bdev::BdevArgs),
    /// Configuration that could not be applied at start-up: list, retry, drop.
    Config(config::ConfigArgs),
    /// Manage named keys (TLS PSKs, DH-HMAC-CHAP secrets) kept in files: add, list, remove.
    Keyring(keyring::KeyringArgs),
}

/// Flags of `lamina serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// NVMe/TCP listen address (repeatable). Default 127.0.0.1:4420.
    #[arg(
        long = "listen",
        value_name = "ADDR:PORT",
        env = "LAMINA_LISTEN",
        value_delimiter = ','
    )]
    pub listen: Vec<SocketAddr>,
    /// Data directory: lvstore images, persisted configuration, the RPC socket.
    #[arg(long, value_name = "DIR", env = "LAMINA_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// JSON-RPC Unix socket. Default DATA_DIR/lamina.sock.
    #[arg(long, value_name = "PATH", env = "LAMINA_RPC_SOCKET")]
    pub rpc_socket: Option<PathBuf>,
    /// Also serve JSON-RPC on this loopback TCP address.
    #[arg(long, value_name = "ADDR:PORT", env = "LAMINA_RPC_LISTEN")]
    pub rpc_listen: Option<SocketAddr>,
    /// Serve /metrics, /healthz and /readyz on this address (port 9440 by convention).
    #[arg(long, value_name = "ADDR:PORT", env = "LAMINA_METRICS")]
    pub metrics: Option<SocketAddr>,
    /// Only these addresses or networks (ADDR or ADDR/BITS, repeatable) may reach --metrics.
    #[arg(
        long,
        value_name = "NET",
        env = "LAMINA_METRICS_ALLOW",
        value_delimiter = ','
    )]
    pub metrics_allow: Vec<crate::observe::http_limits::Cidr>,
    /// Declarative start-up configuration (TOML, or SPDK JSON from save_config).
    #[arg(long, value_name = "FILE", env = "LAMINA_CONFIG")]
    pub config: Option<PathBuf>,
    /// On a fresh data directory, start with nothing configured (as SPDK's nvmf_tgt does)
    /// instead of the embedded default: for SPDK provisioning scripts and load_config.
    #[arg(long, env = "LAMINA_NO_DEFAULT")]
    pub no_default: bool,
    /// Log filter: a level (info, debug) or tracing directives. Default: RUST_LOG, else info.
    #[arg(long, value_name = "LEVEL", env = "LAMINA_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Log line format.
    #[arg(long, value_enum, env = "LAMINA_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// NVMe/TCP connection limits.
    #[command(flatten)]
    pub limits: LimitArgs,
    /// A file, device or directory RPCs may open besides the data directory (repeatable).
    #[arg(
        long = "allow-path",
        value_name = "PATH",
        env = "LAMINA_ALLOW_PATHS",
        value_delimiter = ','
    )]
    pub allow_path: Vec<PathBuf>,
    /// Longest wait between retries of configuration that could not be applied at start-up
    /// (a missing device): 500ms, 30s, 5m. Retries start after 1 s and double up to it.
    #[arg(
        long,
        value_name = "DURATION",
        env = "LAMINA_PENDING_RETRY_INTERVAL",
        default_value = "30s",
        value_parser = crate::mgmt::config::retry::parse_interval
    )]
    pub pending_retry_interval: std::time::Duration,
    /// File bdevs use io_uring when the kernel offers it (on), or the blocking thread pool
    /// (off). Default: the configuration file's `[runtime]`, else on.
    #[arg(long, value_name = "on|off", env = "LAMINA_IO_URING",
        value_parser = crate::settings::parse_switch)]
    pub io_uring: Option<crate::settings::Switch>,
    /// Where connection tasks run: on the shared multi-thread runtime, or dealt to one
    /// current-thread runtime per CPU. Default: the configuration file's `[runtime]`, else shared.
    #[arg(long, value_enum, value_name = "LAYOUT", env = "LAMINA_CONN_RUNTIME")]
    pub conn_runtime: Option<crate::settings::ConnRuntime>,
    /// Per-command counters (namespace I/O statistics and latency histograms). Default: the
    /// configuration file's `[runtime]`, else on.
    #[arg(long, value_name = "on|off", env = "LAMINA_IO_STATS",
        value_parser = crate::settings::parse_switch)]
    pub io_stats: Option<crate::settings::Switch>,
    /// Microseconds an idle I/O queue polls for its host's next command before it parks
    /// (lower queue-depth-1 latency for a little CPU after each burst; 0 turns it off).
    /// Default: the configuration file's `[runtime]`, else 50.
    #[arg(long, value_name = "US", env = "LAMINA_BUSY_POLL_US",
        value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub busy_poll_us: Option<u32>,
    /// Smallest read payload, in bytes, sent with Linux `MSG_ZEROCOPY`: the socket sends from
    /// the buffer itself instead of copying it, which pays for large reads through a NIC with
    /// scatter-gather (try 32768); over loopback the kernel copies anyway. 0 turns it off.
    /// Default: the configuration file's `[runtime]`, else 0 (off).
    #[arg(long, value_name = "BYTES", env = "LAMINA_ZERO_COPY_MIN")]
    pub zero_copy_min: Option<u32>,
    /// CPUs to run on, as SPDK's `-m`: a mask (0x3) or a list (0-1,4). The runtime starts one
    /// worker per CPU, and `--conn-runtime per-core` pins one runtime to each. Default: every
    /// CPU the process may use. (Not in the TOML file: it applies before the runtime starts.)
    #[arg(long, value_name = "MASK", env = "LAMINA_CORES", value_parser = crate::cores::parse)]
    pub cores: Option<crate::cores::CoreList>,
}

/// NVMe/TCP connection limits of `lamina serve` (see `crate::transport::admission`).
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Most NVMe/TCP connections held at once.
    #[arg(
        long,
        value_name = "N",
        env = "LAMINA_MAX_CONNECTIONS",
        default_value_t = 16384
    )]
    pub max_connections: usize,
    /// Most NVMe/TCP connections from one source address.
    #[arg(
        long,
        value_name = "N",
        env = "LAMINA_MAX_CONNECTIONS_PER_SOURCE",
        default_value_t = 1024
    )]
    pub max_connections_per_source: usize,
    /// Most connections that have not completed a Fabrics Connect (the oldest go first).
    #[arg(
        long,
        value_name = "N",
        env = "LAMINA_MAX_UNCONNECTED",
        default_value_t = 1024
    )]
    pub max_unconnected: usize,
    /// Most such connections from one source address.
    #[arg(
        long,
        value_name = "N",
        env = "LAMINA_MAX_UNCONNECTED_PER_SOURCE",
        default_value_t = 64
    )]
    pub max_unconnected_per_source: usize,
    /// Seconds from accept to a successful Connect (ICReq included).
    #[arg(
        long,
        value_name = "SECONDS",
        env = "LAMINA_CONNECT_TIMEOUT",
        default_value_t = 10
    )]
    pub connect_timeout: u64,
}

impl Default for LimitArgs {
    fn default() -> Self {
        let d = crate::transport::admission::ConnectionLimits::default();
        Self {
            max_connections: d.max_connections,
            max_connections_per_source: d.max_per_source,
            max_unconnected: d.max_unconnected,
            max_unconnected_per_source: d.max_unconnected_per_source,
            connect_timeout: d.connect_timeout.as_secs(),
        }
    }
}

impl LimitArgs {
    /// The limits these flags ask for.
    pub fn limits(&self) -> crate::transport::admission::ConnectionLimits {
        crate::transport::admission::ConnectionLimits {
            max_connections: self.max_connections.max(1),
            max_per_source: self.max_connections_per_source.max(1),
            max_unconnected: self.max_unconnected.max(1),
            max_unconnected_per_source: self.max_unconnected_per_source.max(1),
            connect_timeout: std::time::Duration::from_secs(self.connect_timeout.max(1)),
        }
    }
}

impl ServeArgs {
    /// What the settings flags (or their environment variables) said.
    pub fn settings_given(&self) -> crate::settings::Given {
        crate::settings::Given {
            io_uring: self.io_uring,
            conn_runtime: self.conn_runtime,
            io_stats: self.io_stats,
            busy_poll_us: self.busy_poll_us,
            zero_copy_min: self.zero_copy_min,
        }
    }

    /// The listen addresses, with the default when none was given.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        if self.listen.is_empty() {
            vec![SocketAddr::from(([127, 0, 0, 1], 4420))]
        } else {
            self.listen.clone()
        }
    }

    /// The RPC socket path, with the default when none was given.
    pub fn rpc_socket_path(&self) -> PathBuf {
        self.rpc_socket
            .clone()
            .unwrap_or_else(|| self.data_dir.join(RPC_SOCKET_NAME))
    }
}

/// `{"uuid": ..}` or `{"lvs_name": ..}` for an lvstore given by name or UUID.
pub fn selector(name: &str) -> Value {
    if uuid::Uuid::parse_str(name).is_ok() {
        json!({"uuid": name})
    } else {
        json!({"lvs_name": name})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_defaults() {
        let cli = Cli::try_parse_from(["lamina", "serve"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(args.listen_addrs(), vec!["127.0.0.1:4420".parse().unwrap()]);
        assert_eq!(
            args.rpc_socket_path(),
            PathBuf::from("./lamina-data/lamina.sock")
        );
        assert_eq!(args.log_format, LogFormat::Text);
    }

    #[test]
    fn repeated_listen_and_bad_address() {
        let cli = Cli::try_parse_from([
            "lamina",
            "serve",
            "--listen",
            "127.0.0.1:4420",
            "--listen",
            "[::1]:4421",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(args.listen_addrs().len(), 2);
        assert!(Cli::try_parse_from(["lamina", "serve", "--listen", "nowhere"]).is_err());
    }
}
