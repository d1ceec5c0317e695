//! `lamina serve`: bring the target up from its data directory, serve until a signal, shut down
//! cleanly.
//!
//! Start-up, in order: the metrics endpoint comes up if `--metrics` is given (`/healthz`
//! answers, `/readyz` says 503 until start-up ends); the `--listen` ports are bound (they
//! accept nothing until the end of start-up, see `crate::plane::ports`); the persisted
//! configuration (`DATA_DIR/lamina.json`) is replayed, or on a fresh data directory the embedded
//! default is created (a sparse 16 GiB file `lvs0.img` holding lvstore `lvs0` with a 1 GiB thin
//! lvol `vol0`, exported as namespace 1 of `nqn.2026-11.io.lamina:default` to any host); a
//! `--config` file is applied on top (creating what is missing); the ports start accepting;
//! the RPC socket opens; the retry of pending configuration starts (what could not be applied,
//! see `crate::mgmt::config`); readiness is set (and held back while anything is pending); the
//! attach commands are printed.
//!
//! Shutdown (SIGINT/SIGTERM): readiness is cleared and the root token is cancelled, so listeners
//! stop accepting and every connection stops reading, lets its in-flight commands finish and
//! sends their completions; then every lvstore is flushed, the configuration persisted, the
//! metrics endpoint stops last, and the process exits 0.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

use crate::cli::ServeArgs;
use crate::mgmt::context::Target;
use crate::mgmt::rpc::Methods;
use crate::mgmt::rpc::server::RpcServerConfig;
use crate::observe::http::Readiness;
use crate::options::TransportOptions;

/// The default subsystem's NQN.
pub const DEFAULT_NQN: &str = "nqn.2026-11.io.lamina:default";
/// The default lvstore file's name.
pub const DEFAULT_IMAGE: &str = "lvs0.img";
/// Its virtual size.
pub const DEFAULT_IMAGE_BYTES: u64 = 16 << 30;
/// The default lvol's size.
pub const DEFAULT_LVOL_MIB: u64 = 1024;
/// How long shutdown waits for tasks.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);

/// A running target.
#[derive(Debug)]
pub struct Running {
    /// The target.
    pub target: Arc<Target>,
    /// The RPC methods.
    pub methods: Arc<Methods>,
    /// The RPC socket path.
    pub rpc_socket: PathBuf,
    /// The metrics endpoint, if any.
    pub metrics_addr: Option<SocketAddr>,
    /// The NVMe/TCP ports.
    pub ports: Vec<SocketAddr>,
    /// Readiness for `/readyz`.
    pub ready: Arc<Readiness>,
    /// The metrics endpoint; it outlives the drain and stops last.
    pub http: Option<crate::observe::http::Endpoint>,
}

/// Starts everything; returns once the target serves.
pub async fn start(args: &ServeArgs) -> anyhow::Result<Running> {
    crate::mgmt::rpc::runtime::mark_start();
    prepare_data_dir(&args.data_dir)?;
    let data_dir = args.data_dir.canonicalize()?;
    // The --config file is read once: its [runtime] decides settings the target is built
    // with, the rest is applied once ports are up.
    let config_file = match &args.config {
        Some(path) => Some(crate::mgmt::config::read_file(path).context("--config")?),
        None => None,
    };
    let settings = resolve_settings(args, config_file.as_ref());
    let target = Target::with_settings(TransportOptions::default(), settings);
    raise_fd_limit(args.limits.limits().max_connections);
    target.admission.set_limits(args.limits.limits());
    let roots = std::iter::once(data_dir.clone()).chain(args.allow_path.iter().cloned());
    *target.paths.write() = crate::mgmt::path_policy::PathPolicy::new(roots);
    crate::plane::stats::set_counting(settings.io_stats);
    if !settings.io_stats {
        tracing::info!("io_stats off: per-command counters are off");
    }
    let mut methods = crate::mgmt::methods(&target);
    let rpc_stats = crate::plane::stats::RpcStats::new(&methods.names());
    methods.set_observer(crate::observe::metrics::rpc_observer(&rpc_stats));
    let methods = Arc::new(methods);
    // The endpoint first: /healthz answers and /readyz says 503 while the configuration loads.
    let ready = Arc::new(Readiness::default());
    let http = match args.metrics {
        Some(addr) => {
            let allow = crate::observe::http_limits::AllowList::new(args.metrics_allow.clone());
            Some(start_metrics(&target, &rpc_stats, addr, ready.clone(), allow).await?)
        }
        None => None,
    };
    let state = data_dir.join(crate::mgmt::config::STATE_FILE);
    // Ports first, so the embedded default listens on the addresses actually bound (port 0
    // picks one) and a replayed listener on the same address reuses the port.
    let mut ports = Vec::new();
    for addr in args.listen_addrs() {
        let port = crate::transport::listen_port(&target.net, addr, false)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        ports.push(port.addr);
    }
    if state.exists() {
        let cfg = crate::mgmt::config::read_json(&state).context(
            "the persisted configuration is damaged; fix or move it away to start fresh",
        )?;
        let r = crate::mgmt::config::replay(&target, &methods, &cfg, "lamina.json").await;
        tracing::info!(ok = r.ok, existing = r.existing, pending = r.pending, file = %state.display(),
            "configuration restored");
    } else if args.config.is_none() && !args.no_default {
        create_default(&methods, &data_dir, &ports).await?;
    }
    if let (Some(path), Some(file)) = (&args.config, config_file) {
        let r = crate::mgmt::config::apply_parsed(&target, &methods, file).await;
        tracing::info!(created = r.created, existing = r.existing, pending = r.pending,
            failed = r.failed, file = %path.display(), "--config applied");
    }
    *target.state_path.write() = Some(state);
    crate::mgmt::config::persist(&target).await;
    // Everything is in place: hosts waiting in the accept queues are served now.
    target.ports.open();

    let rpc_socket = args.rpc_socket_path();
    let unix = crate::mgmt::rpc::server::bind_unix(&rpc_socket)
        .await
        .with_context(|| format!("cannot open the RPC socket {}", rpc_socket.display()))?;
    target.tracker.spawn(crate::mgmt::rpc::server::serve_unix(
        unix,
        rpc_socket.clone(),
        methods.clone(),
        RpcServerConfig::default(),
        target.cancel.clone(),
        target.tracker.clone(),
    ));
    if let Some(addr) = args.rpc_listen {
        let l = crate::mgmt::rpc::server::bind_tcp(addr).await?;
        target.tracker.spawn(crate::mgmt::rpc::server::serve_tcp(
            l,
            methods.clone(),
            RpcServerConfig::default(),
            target.cancel.clone(),
            target.tracker.clone(),
        ));
    }
    start_pending(&target, &methods, args, &ready);
    ready.set(true);
    Ok(Running {
        target,
        methods,
        rpc_socket,
        metrics_addr: http
            .as_ref()
            .map(crate::observe::http::Endpoint::local_addr),
        ports,
        ready,
        http,
    })
}

/// Retries what start-up could not apply, and holds readiness back while anything is pending.
fn start_pending(
    target: &Arc<Target>,
    methods: &Arc<Methods>,
    args: &ServeArgs,
    ready: &Readiness,
) {
    let weak = Arc::downgrade(target);
    ready.set_check(Arc::new(move || {
        weak.upgrade().and_then(|t| t.pending.readiness_report())
    }));
    let policy = crate::mgmt::config::retry::RetryPolicy::up_to(args.pending_retry_interval);
    crate::mgmt::config::retry::spawn(target, methods, policy);
    let pending = target.pending.len();
    if pending > 0 {
        tracing::warn!(pending, retry_up_to = ?policy.max,
            "configuration entries pending: /readyz answers 503 until they apply \
             (lamina config pending lists them)");
    }
}

async fn start_metrics(
    target: &Arc<Target>,
    rpc: &Arc<crate::plane::stats::RpcStats>,
    addr: SocketAddr,
    ready: Arc<Readiness>,
    allow: crate::observe::http_limits::AllowList,
) -> anyhow::Result<crate::observe::http::Endpoint> {
    let exporter = crate::observe::metrics::Exporter::new(target, Some(rpc.clone()))?;
    let render: crate::observe::http::Render =
        Arc::new(move || exporter.render().map_err(|e| e.to_string()));
    let endpoint = crate::observe::http::Endpoint::start(addr, render, ready, allow)
        .await
        .with_context(|| format!("cannot serve metrics on {addr}"))?;
    tracing::info!(bound = %endpoint.local_addr(), "metrics endpoint up (/metrics, /healthz, /readyz)");
    Ok(endpoint)
}

/// Calls one method during start-up; an error stops the start.
async fn call(methods: &Methods, method: &str, params: Value) -> anyhow::Result<Value> {
    let req = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let answer = methods.handle_value(req).await.unwrap_or(Value::Null);
    if let Some(e) = answer.get("error") {
        anyhow::bail!(
            "{method} failed: {}",
            e["message"].as_str().unwrap_or("unknown error")
        );
    }
    Ok(answer.get("result").cloned().unwrap_or(Value::Null))
}

/// Creates the embedded default; safe to repeat after a crash half-way through.
/// Raises the soft open-file limit to the hard one (Debian's default soft limit, 1024, is far
/// below the connections the target admits), and warns when even that cannot hold them.
fn raise_fd_limit(max_connections: usize) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    if l.current < l.maximum {
        l.current = l.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, l) {
            tracing::debug!(error = %e, "cannot raise the open-file limit");
        }
    }
    let now = getrlimit(Resource::Nofile).current;
    let wanted = max_connections as u64 + 256;
    if now.is_some_and(|n| n < wanted) {
        tracing::warn!(
            open_files = now,
            max_connections,
            "the open-file limit is below --max-connections: raise LimitNOFILE (systemd) or \
             ulimit -n, or lower --max-connections"
        );
    }
}

/// Creates the data directory private to the target's user (0700): it holds volume images
/// and the configuration. An existing one that others can read is left as it is, with a
/// warning.
fn prepare_data_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create data dir {}", dir.display()))?;
    }
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(dir = %dir.display(), mode = format!("{:o}", mode & 0o777),
            "the data directory is open to other users: volume images and configuration may be \
             readable by them (chmod 700 it)");
    }
    Ok(())
}

async fn create_default(
    methods: &Methods,
    data_dir: &Path,
    listen: &[SocketAddr],
) -> anyhow::Result<()> {
    let image = data_dir.join(DEFAULT_IMAGE);
    if !image.exists() {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&image)
            .with_context(|| format!("cannot create {}", image.display()))?;
        f.set_len(DEFAULT_IMAGE_BYTES)?;
        f.sync_all()?;
    }
    call(
        methods,
        "bdev_aio_create",
        json!({"name": "lvs0_base",
        "filename": image.display().to_string(), "block_size": 4096}),
    )
    .await?;
    let stores = call(methods, "bdev_lvol_get_lvstores", json!({})).await?;
    if !stores
        .as_array()
        .is_some_and(|a| a.iter().any(|s| s["name"] == "lvs0"))
    {
        call(
            methods,
            "bdev_lvol_create_lvstore",
            json!({"bdev_name": "lvs0_base", "lvs_name": "lvs0"}),
        )
        .await?;
    }
    let lvols = call(methods, "bdev_lvol_get_lvols", json!({"lvs_name": "lvs0"})).await?;
    if !lvols
        .as_array()
        .is_some_and(|a| a.iter().any(|l| l["name"] == "vol0"))
    {
        call(
            methods,
            "bdev_lvol_create",
            json!({"lvs_name": "lvs0", "lvol_name": "vol0",
            "size_in_mib": DEFAULT_LVOL_MIB, "thin_provision": true}),
        )
        .await?;
    }
    call(methods, "nvmf_create_transport", json!({"trtype": "TCP"})).await?;
    let serial: String = format!("LAMINA{}", uuid::Uuid::new_v4().simple())
        .chars()
        .take(20)
        .collect::<String>()
        .to_uppercase();
    call(
        methods,
        "nvmf_create_subsystem",
        json!({"nqn": DEFAULT_NQN, "allow_any_host": true,
        "serial_number": serial, "model_number": "Lamina"}),
    )
    .await?;
    for addr in listen {
        call(
            methods,
            "nvmf_subsystem_add_listener",
            json!({"nqn": DEFAULT_NQN,
            "listen_address": crate::mgmt::rpc::nvmf::ListenAddress::from_socket_addr(*addr)}),
        )
        .await?;
    }
    call(
        methods,
        "nvmf_subsystem_add_ns",
        json!({"nqn": DEFAULT_NQN,
        "namespace": {"nsid": 1, "bdev_name": "lvs0/vol0"}}),
    )
    .await?;
    tracing::info!(data_dir = %data_dir.display(), "embedded default created");
    Ok(())
}

/// The process settings: flags (and their environment variables), then the `[runtime]` of a
/// TOML `--config` file, then the defaults.
fn resolve_settings(
    args: &ServeArgs,
    config: Option<&crate::mgmt::config::ConfigFile>,
) -> crate::settings::Settings {
    let file = match config {
        Some(crate::mgmt::config::ConfigFile::Lamina(cfg)) => cfg.runtime.unwrap_or_default(),
        Some(crate::mgmt::config::ConfigFile::Spdk(_)) | None => {
            crate::settings::RuntimeSection::default()
        }
    };
    let settings = crate::settings::Settings::resolve(args.settings_given(), file);
    tracing::info!(
        io_uring = settings.io_uring,
        conn_runtime = ?settings.conn_runtime,
        io_stats = settings.io_stats,
        busy_poll = ?settings.busy_poll,
        zero_copy_min = settings.zero_copy_min,
        cores = %crate::cores::CoreList::describe(&crate::cores::allowed()),
        "process settings"
    );
    settings
}

/// How to attach each subsystem, as printed at start-up.
pub fn attach_help(target: &Target) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for s in target.subsystems.list() {
        if s.kind() == crate::plane::subsystem::SubsystemKind::Discovery {
            continue;
        }
        for addr in s.listeners() {
            let (ip, port) = (addr.ip(), addr.port());
            let _ = writeln!(
                out,
                "Serving {nqn} on {addr}. Attach it from a Linux host (modprobe nvme-tcp):\n  \
                 nvme discover -t tcp -a {ip} -s {port}\n  \
                 nvme connect -t tcp -a {ip} -s {port} -n {nqn}",
                nqn = s.nqn()
            );
        }
    }
    out
}

/// Runs `lamina serve` until a signal; `Ok` after a clean shutdown.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let running = start(&args).await?;
    let target = running.target.clone();
    println!("{}", attach_help(&target).trim_end());
    println!(
        "JSON-RPC: {} (lamina rpc --socket {} rpc_get_methods)",
        running.rpc_socket.display(),
        running.rpc_socket.display()
    );
    let signal = crate::shutdown::cancel_on_signal(target.cancel.clone()).await?;
    tracing::info!(signal, "shutting down: draining connections");
    shutdown(&running).await;
    Ok(())
}

/// Stops everything and makes data durable.
pub async fn shutdown(running: &Running) {
    let target = &running.target;
    running.ready.set(false);
    target.cancel.cancel();
    target.tracker.close();
    if tokio::time::timeout(SHUTDOWN_TIMEOUT, target.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("some tasks did not finish within {SHUTDOWN_TIMEOUT:?}");
    }
    for store in target.lvols.lvstores() {
        if let Err(e) = store.flush().await {
            tracing::error!(lvstore = %store.name(), error = %e, "flush at shutdown failed");
        }
    }
    crate::mgmt::config::persist(target).await;
    if let Some(http) = &running.http {
        http.stop().await;
    }
    tracing::info!("shutdown complete");
}
