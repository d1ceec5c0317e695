//! Persisted configuration, in SPDK's `save_config` JSON shape.
//!
//! What an operator creates over RPC (base devices, the transport, subsystems, their listeners,
//! hosts and namespaces) is written to `DATA_DIR/lamina.json` after every change, atomically
//! (temporary file, fsync, rename, fsync of the directory), and replayed through the same RPC
//! methods at start-up. Lvstores and lvols are not in it: they live on their own devices and
//! come back when their base bdev is created again (examine). The same replay loads a
//! `--config` file written by SPDK's `save_config`.
//!
//! `--config FILE` also takes Lamina's declarative TOML (see [`declarative`] for the format):
//! a file ending in `.json`, or whose first character is `{`, is SPDK JSON; anything else is
//! TOML. Either way the file creates what is missing and leaves what exists: a JSON call that
//! answers `-EEXIST` counts as "already there", not as a failure.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::bdev::BdevKind;
use crate::context::Target;
use crate::rpc::Methods;
use crate::rpc::nvmf::ListenAddress;
use crate::subsystem::{Backend, SubsystemKind};

mod apply;
pub mod declarative;

/// The state file's name inside the data directory.
pub const STATE_FILE: &str = "lamina.json";

/// The framework subsystems whose configuration Lamina saves, each with the ones it depends
/// on (SPDK's `framework_get_subsystems`), in the order they load.
pub const SUBSYSTEMS: [(&str, &[&str]); 3] =
    [("sock", &[]), ("bdev", &[]), ("nvmf", &["bdev", "sock"])];

/// The configuration of framework subsystem `name` (SPDK's `framework_get_config`), `None` for a
/// subsystem Lamina does not have.
pub fn subsystem_config(t: &Target, name: &str) -> Option<Vec<Value>> {
    match name {
        "sock" => Some(sock_config(t)),
        "bdev" => Some(bdev_config(t)),
        "nvmf" => Some(nvmf_config(t)),
        _ => None,
    }
}

/// The current configuration as `save_config` returns it.
pub fn save_config(t: &Target) -> Value {
    let subsystems: Vec<Value> = SUBSYSTEMS
        .iter()
        .map(|(name, _)| json!({"subsystem": name, "config": subsystem_config(t, name)}))
        .collect();
    json!({ "subsystems": subsystems })
}

/// The socket options that differ from Lamina's defaults (the kernel's).
fn sock_config(t: &Target) -> Vec<Value> {
    let all = *t.sock_options.read();
    [("posix", all.posix), ("ssl", all.ssl)]
        .into_iter()
        .filter(|(_, o)| *o != crate::options::SockOptions::default())
        .map(|(name, o)| {
            json!({"method": "sock_impl_set_options", "params": {"impl_name": name,
                "recv_buf_size": o.recv_buf_size, "send_buf_size": o.send_buf_size,
                "enable_quickack": o.enable_quickack}})
        })
        .collect()
}

fn bdev_config(t: &Target) -> Vec<Value> {
    t.bdevs
        .list()
        .iter()
        .map(|b| match b.kind() {
            BdevKind::Malloc => json!({"method": "bdev_malloc_create", "params": {
                "name": b.name(), "num_blocks": b.num_blocks(), "block_size": b.block_size(),
                "uuid": b.uuid().to_string()}}),
            BdevKind::Aio { filename } => json!({"method": "bdev_aio_create", "params": {
                "name": b.name(), "filename": filename.display().to_string(),
                "block_size": b.block_size(), "uuid": b.uuid().to_string()}}),
            BdevKind::Null => json!({"method": "bdev_null_create", "params": {
                "name": b.name(), "num_blocks": b.num_blocks(), "block_size": b.block_size(),
                "uuid": b.uuid().to_string()}}),
        })
        .collect()
}

fn nvmf_config(t: &Target) -> Vec<Value> {
    let settings = &t.subsystems.settings;
    let [crdt1, crdt2, crdt3] = settings.crdt();
    let mut out = vec![
        json!({"method": "nvmf_set_config",
            "params": {"discovery_filter": settings.discovery_filter().name()}}),
        json!({"method": "nvmf_set_max_subsystems",
            "params": {"max_subsystems": settings.max_subsystems()}}),
        json!({"method": "nvmf_set_crdt",
            "params": {"crdt1": crdt1, "crdt2": crdt2, "crdt3": crdt3}}),
    ];
    if t.transport_created
        .load(std::sync::atomic::Ordering::Acquire)
    {
        out.push(json!({"method": "nvmf_create_transport",
            "params": crate::rpc::nvmf::transport::transport_json(&t.options())}));
    }
    for s in t.subsystems.list() {
        if s.kind() == SubsystemKind::Discovery {
            continue;
        }
        let nqn = s.nqn();
        out.push(json!({"method": "nvmf_create_subsystem", "params": {
            "nqn": nqn, "serial_number": s.serial_number(), "model_number": s.model_number(),
            "allow_any_host": s.allow_any_host(), "max_namespaces": s.max_namespaces(),
            "min_cntlid": s.cntlids().start(), "max_cntlid": s.cntlids().end()}}));
        for addr in s.listeners() {
            out.push(json!({"method": "nvmf_subsystem_add_listener", "params": {
                "nqn": nqn, "listen_address": ListenAddress::from_socket_addr(addr)}}));
        }
        for host in s.hosts() {
            out.push(json!({"method": "nvmf_subsystem_add_host",
                "params": {"nqn": nqn, "host": host}}));
        }
        for ns in s.namespaces() {
            let nguid = crate::rpc::nvmf::hex_upper(&ns.nguid());
            // Lvols are referred to by UUID, which survives renames.
            let bdev_name = match ns.backend() {
                Backend::Lvol(d) => d.lvol().uuid().to_string(),
                Backend::Bdev(b) => b.name().to_owned(),
            };
            out.push(
                json!({"method": "nvmf_subsystem_add_ns", "params": {"nqn": nqn,
                "namespace": {"nsid": ns.nsid(), "bdev_name": bdev_name,
                    "uuid": ns.uuid().to_string(), "nguid": nguid}}}),
            );
        }
    }
    out.extend(settings.referrals().iter().map(|r| {
        json!({"method": "nvmf_discovery_add_referral",
            "params": crate::rpc::nvmf::referral::referral_json(r)})
    }));
    out
}

/// Writes the configuration to the state file, if there is one and it changed. Failures are
/// logged: the change itself is done, and the next successful write carries it.
pub async fn persist(t: &Arc<Target>) {
    let Some(path) = t.state_path.read().clone() else {
        return;
    };
    let t2 = t.clone();
    let result = tokio::task::spawn_blocking(move || {
        // Under the lock, the snapshot and the write are one step: files land in order.
        let _guard = t2.persist_lock.lock();
        let text = serde_json::to_vec_pretty(&save_config(&t2)).map_err(std::io::Error::other)?;
        // Most changes (every lvol method) leave the file as it is: skip the fsyncs then.
        if std::fs::read(&path).is_ok_and(|old| old == text) {
            return Ok(());
        }
        crate::atomic_file::write(&path, &text)
    })
    .await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "cannot persist the configuration"),
        Err(e) => tracing::error!(error = %e, "configuration writer failed"),
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a configuration.
    #[error("{path} is not a valid configuration: {why}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

/// Reads a JSON configuration file (SPDK `save_config` shape).
pub fn read_json(path: &Path) -> Result<Value, ConfigError> {
    let text = std::fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let v: Value = serde_json::from_slice(&text).map_err(|e| ConfigError::Invalid {
        path: path.to_owned(),
        why: e.to_string(),
    })?;
    if !v.get("subsystems").is_some_and(Value::is_array) {
        return Err(ConfigError::Invalid {
            path: path.to_owned(),
            why: "no \"subsystems\" array".into(),
        });
    }
    Ok(v)
}

/// What a replay did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    /// Calls that succeeded.
    pub ok: usize,
    /// Calls answered `-EEXIST`: what they create is already there.
    pub existing: usize,
    /// Calls that failed (each logged).
    pub failed: usize,
}

/// Calls every method of `config` in order: the `bdev` subsystem first (so lvstores are
/// examined before namespaces refer to their lvols), then `nvmf`, then anything else. A call
/// that fails is logged and the rest still run, so one missing device does not take every
/// subsystem down with it.
pub async fn replay(methods: &Methods, config: &Value) -> Replayed {
    replay_except(methods, config, |_, _| false).await
}

/// [`replay`], counting the calls `exists(method, params)` says are already done as existing
/// instead of making them.
async fn replay_except(
    methods: &Methods,
    config: &Value,
    exists: impl Fn(&str, &Value) -> bool,
) -> Replayed {
    let mut sections: Vec<&Value> = config
        .get("subsystems")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let rank = |s: &&Value| match s.get("subsystem").and_then(Value::as_str) {
        Some("bdev") => 0,
        Some("nvmf") => 1,
        _ => 2,
    };
    sections.sort_by_key(rank);
    let mut done = Replayed::default();
    for section in sections {
        let calls = section.get("config").and_then(Value::as_array);
        for call in calls.into_iter().flatten() {
            let Some(method) = call.get("method").and_then(Value::as_str) else {
                continue;
            };
            let params = call.get("params").cloned().unwrap_or(Value::Null);
            if exists(method, &params) {
                done.existing += 1;
                continue;
            }
            replay_call(methods, method, params, &mut done).await;
        }
    }
    done
}

async fn replay_call(methods: &Methods, method: &str, params: Value, done: &mut Replayed) {
    if !methods.contains(method) {
        tracing::warn!(
            method,
            "configuration entry skipped: method not supported by Lamina"
        );
        done.failed += 1;
        return;
    }
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let answer = methods.handle_value(request).await.unwrap_or(Value::Null);
    match answer.get("error") {
        Some(err) if err.get("code") == Some(&json!(crate::rpc::error::EEXIST)) => {
            tracing::debug!(method, error = %err, "configuration entry already there");
            done.existing += 1;
        }
        Some(err) => {
            tracing::error!(method, error = %err, "configuration entry failed");
            done.failed += 1;
        }
        None => done.ok += 1,
    }
}

/// Whether an `nvmf_subsystem_add_ns` call is already done: its NSID exports its bdev. (Adding
/// it again would answer -EBUSY, the bdev being held by that very namespace.)
fn namespace_exists(t: &Target, method: &str, params: &Value) -> bool {
    if method != "nvmf_subsystem_add_ns" {
        return false;
    }
    let nqn = params.get("nqn").and_then(Value::as_str).unwrap_or("");
    let ns = params.get("namespace").unwrap_or(&Value::Null);
    let nsid = ns.get("nsid").and_then(Value::as_u64);
    let bdev = ns.get("bdev_name").and_then(Value::as_str).unwrap_or("");
    let name = t
        .lvols
        .lvol(bdev)
        .map_or_else(|_| bdev.to_owned(), |l| l.uuid().to_string());
    let (Some(sub), Some(nsid)) = (t.subsystems.get(nqn), nsid) else {
        return false;
    };
    u32::try_from(nsid)
        .ok()
        .and_then(|n| sub.namespace(n))
        .is_some_and(|n| n.bdev_name() == name)
}

/// A `--config` file, in either format.
#[derive(Debug)]
pub enum ConfigFile {
    /// SPDK's `save_config` JSON.
    Spdk(Value),
    /// Lamina's declarative TOML.
    Lamina(declarative::LaminaConfig),
}

/// Reads a `--config` file, telling the formats apart by extension, else by content.
pub fn read_file(path: &Path) -> Result<ConfigFile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let is_json = match path.extension().and_then(|e| e.to_str()) {
        Some("json") => true,
        Some("toml") => false,
        _ => text.trim_start().starts_with('{'),
    };
    if is_json {
        return read_json(path).map(ConfigFile::Spdk);
    }
    declarative::LaminaConfig::parse(&text)
        .map(ConfigFile::Lamina)
        .map_err(|why| ConfigError::Invalid {
            path: path.to_owned(),
            why,
        })
}

/// What applying a `--config` file did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FileApplied {
    /// Objects created.
    pub created: usize,
    /// Objects that were already there.
    pub existing: usize,
    /// Entries that failed (each logged).
    pub failed: usize,
}

/// Reads and applies a `--config` file: creates what is missing, leaves what exists.
pub async fn apply_file(
    t: &Arc<Target>,
    methods: &Methods,
    path: &Path,
) -> Result<FileApplied, ConfigError> {
    Ok(match read_file(path)? {
        ConfigFile::Spdk(v) => {
            let r = replay_except(methods, &v, |m, p| {
                namespace_exists(t, m, p)
                    || (m == "nvmf_create_transport"
                        && crate::rpc::nvmf::transport::transport_unchanged(t, p))
            })
            .await;
            FileApplied {
                created: r.ok,
                existing: r.existing,
                failed: r.failed,
            }
        }
        ConfigFile::Lamina(cfg) => {
            let r = declarative::apply(t, methods, &cfg).await;
            FileApplied {
                created: r.created,
                existing: r.existing,
                failed: r.failed,
            }
        }
    })
}
