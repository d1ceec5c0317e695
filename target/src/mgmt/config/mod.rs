//! Persisted configuration, in SPDK's `save_config` JSON shape.
//!
//! What an operator creates over RPC (keys, base devices, the transport, subsystems, their
//! listeners, hosts and namespaces) is written to `DATA_DIR/lamina.json` after every change, atomically
//! (temporary file, fsync, rename, fsync of the directory), and replayed through the same RPC
//! methods at start-up ([`replay()`]). Lvstores and lvols are not in it: they live on their own
//! devices and come back when their base bdev is created again (examine). The same replay loads
//! a `--config` file written by SPDK's `save_config`.
//!
//! `--config FILE` also takes Lamina's declarative TOML (see [`declarative`] for the format):
//! a file ending in `.json`, or whose first character is `{`, is SPDK JSON; anything else is
//! TOML. Either way the file creates what is missing and leaves what exists: a JSON call that
//! answers `-EEXIST` counts as "already there", not as a failure.
//!
//! # Pending configuration
//!
//! An entry that cannot be applied at start-up (its file or device is missing or unreadable,
//! the lvstore on it does not load, or it needs such an entry: the namespaces of its lvols, a
//! lvstore or lvol of a `--config` file on it) is never dropped. It is kept, in order, as
//! *pending* ([`pending`]):
//! - **persisted**: `save_config`, `framework_get_config` and so `lamina.json` carry it, as
//!   it was read, after the live objects of its section, so every later write keeps it and a
//!   restart tries it again;
//! - **retried** ([`retry`]): with a backoff up to `--pending-retry-interval` (default 30 s),
//!   at once after a successful change over JSON-RPC, and on `lamina_retry_pending_config`
//!   (`lamina config retry`). What depended on an entry follows it in the same pass, and a
//!   namespace that appears raises the usual namespace-attribute-changed AEN to hosts;
//! - **reported**: `/readyz` answers 503 naming each entry and why while any is pending (the
//!   target does not serve its whole configuration, so it is not ready; `/healthz` stays
//!   200), the log says it at start-up and when a reason changes (an unchanged failure at most
//!   every ten minutes), `lamina_get_pending_config` (`lamina config pending`) lists them, and
//!   the gauge `lamina_config_pending_entries` counts them;
//! - **protected** ([`guard`]): a change that would take a pending entry's name (a bdev name
//!   or file, subsystem NQN, NSID, lvstore or lvol name) or delete what it builds on (its
//!   subsystem, bdev or lvol) is refused with `-EBUSY` naming the entry;
//! - **dropped only on purpose**: `lamina_drop_pending_config {"id": N}` (`lamina config drop
//!   N`) removes an entry from the configuration, with a log line.
//!
//! A declarative TOML `--config` file keeps the calls it could not make the same way.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::mgmt::context::Target;
use crate::mgmt::rpc::dispatch::Methods;
use crate::mgmt::rpc::nvmf::ListenAddress;
use crate::plane::bdev::BdevKind;
use crate::plane::subsystem::{Backend, SubsystemKind};
use lamina_lvol::device::Device;

mod apply;
pub mod declarative;
pub mod guard;
pub mod hook;
pub mod methods;
pub mod pending;
pub mod replay;
pub mod retry;

pub use replay::{Replayed, replay};

/// The state file's name inside the data directory.
pub const STATE_FILE: &str = "lamina.json";

/// The framework subsystems whose configuration Lamina saves, each with the ones it depends
/// on (SPDK's `framework_get_subsystems`), in the order they load.
pub const SUBSYSTEMS: [(&str, &[&str]); 4] = [
    ("keyring", &[]),
    ("sock", &["keyring"]),
    ("bdev", &[]),
    ("nvmf", &["bdev", "sock", "keyring"]),
];

/// The configuration of framework subsystem `name` (SPDK's `framework_get_config`): its live
/// objects, then its pending entries; `None` for a subsystem Lamina neither has nor holds
/// pending entries of.
pub fn subsystem_config(t: &Target, name: &str) -> Option<Vec<Value>> {
    let mut calls = match name {
        "keyring" => keyring_config(t),
        "sock" => sock_config(t),
        "bdev" => bdev_config(t),
        "nvmf" => nvmf_config(t),
        _ => {
            let pending = t.pending.calls(name);
            return (!pending.is_empty()).then_some(pending);
        }
    };
    calls.extend(t.pending.calls(name));
    Some(calls)
}

/// The names of the sections `save_config` writes: Lamina's, then those only pending entries
/// name.
pub fn section_names(t: &Target) -> Vec<String> {
    SUBSYSTEMS
        .iter()
        .map(|(n, _)| (*n).to_owned())
        .chain(t.pending.other_sections())
        .collect()
}

/// The current configuration as `save_config` returns it.
pub fn save_config(t: &Target) -> Value {
    let subsystems: Vec<Value> = section_names(t)
        .iter()
        .map(|name| {
            json!({"subsystem": name, "config": subsystem_config(t, name).unwrap_or_default()})
        })
        .collect();
    json!({ "subsystems": subsystems })
}

/// The keys: names and paths, never secrets.
fn keyring_config(t: &Target) -> Vec<Value> {
    t.keyring
        .list()
        .iter()
        .map(|k| {
            json!({"method": "keyring_file_add_key", "params": {"name": k.name(),
                "path": k.path().display().to_string()}})
        })
        .collect()
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
            BdevKind::Malloc => {
                let mut p = json!({"name": b.name(), "num_blocks": b.num_blocks(),
                    "block_size": b.block_size(), "uuid": b.uuid().to_string()});
                // Lamina's own parameter, written only when set, so an SPDK-shaped file stays so.
                if matches!(b.device(), Device::Ram(r) if !r.is_allocated()) {
                    p["sparse"] = json!(true);
                }
                json!({"method": "bdev_malloc_create", "params": p})
            }
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
    let auth = settings.auth_policy();
    let mut out = vec![
        json!({"method": "nvmf_set_config",
            "params": {"discovery_filter": settings.discovery_filter().name(),
                "dup_host_policy": settings.dup_host_policy().name(),
                "dhchap_digests": auth.digests.iter().map(|h| h.name()).collect::<Vec<_>>(),
                "dhchap_dhgroups": auth.groups.iter().map(|g| g.name()).collect::<Vec<_>>()}}),
        json!({"method": "nvmf_set_max_subsystems",
            "params": {"max_subsystems": settings.max_subsystems()}}),
        json!({"method": "nvmf_set_crdt",
            "params": {"crdt1": crdt1, "crdt2": crdt2, "crdt3": crdt3}}),
    ];
    if t.transport_created
        .load(std::sync::atomic::Ordering::Acquire)
    {
        out.push(json!({"method": "nvmf_create_transport",
            "params": crate::mgmt::rpc::nvmf::transport::transport_json(&t.options())}));
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
            let mut params =
                json!({"nqn": nqn, "listen_address": ListenAddress::from_socket_addr(addr)});
            if t.ports.get(addr).is_some_and(|p| p.secure) {
                params["secure_channel"] = json!(true);
            }
            out.push(json!({"method": "nvmf_subsystem_add_listener", "params": params}));
        }
        for (host, keys) in s.host_entries() {
            // Key names, never secrets: the keyring section before this one adds the files.
            let mut params = json!({"nqn": nqn, "host": host});
            if let Some(k) = &keys.psk {
                params["psk"] = json!(k.name());
            }
            if let Some(k) = &keys.dhchap {
                params["dhchap_key"] = json!(k.name());
            }
            if let Some(k) = &keys.dhchap_ctrlr {
                params["dhchap_ctrlr_key"] = json!(k.name());
            }
            out.push(json!({"method": "nvmf_subsystem_add_host", "params": params}));
        }
        for ns in s.namespaces() {
            let nguid = crate::mgmt::rpc::nvmf::hex_upper(&ns.nguid());
            // Lvols are referred to by UUID, which survives renames.
            let bdev_name = match ns.backend() {
                Backend::Lvol(d) => d.lvol().uuid().to_string(),
                Backend::Bdev(b) => b.name().to_owned(),
            };
            let mut namespace = json!({"nsid": ns.nsid(), "bdev_name": bdev_name,
                "uuid": ns.uuid().to_string(), "nguid": nguid});
            let v = ns.visibility();
            let masked = !v.is_auto();
            if masked {
                namespace["no_auto_visible"] = json!(true);
            }
            out.push(json!({"method": "nvmf_subsystem_add_ns",
                "params": {"nqn": nqn, "namespace": namespace}}));
            if masked {
                out.extend(v.hosts().into_iter().map(|host| {
                    json!({"method": "nvmf_ns_add_host",
                        "params": {"nqn": nqn, "nsid": ns.nsid(), "host": host}})
                }));
            }
        }
    }
    out.extend(settings.referrals().iter().map(|r| {
        json!({"method": "nvmf_discovery_add_referral",
            "params": crate::mgmt::rpc::nvmf::referral::referral_json(r)})
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
        crate::mgmt::atomic_file::write(&path, &text)
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
    /// Entries kept as pending configuration (each logged).
    pub pending: usize,
    /// Entries that failed for good (each logged): impossible values, nothing to retry.
    pub failed: usize,
}

/// Reads and applies a `--config` file: creates what is missing, leaves what exists, keeps
/// what cannot be applied yet as pending.
pub async fn apply_file(
    t: &Arc<Target>,
    methods: &Methods,
    path: &Path,
) -> Result<FileApplied, ConfigError> {
    Ok(apply_parsed(t, methods, read_file(path)?).await)
}

/// Applies a `--config` file already read with [`read_file`].
pub async fn apply_parsed(t: &Arc<Target>, methods: &Methods, file: ConfigFile) -> FileApplied {
    match file {
        ConfigFile::Spdk(v) => {
            let r = replay(t, methods, &v, "--config").await;
            FileApplied {
                created: r.ok,
                existing: r.existing,
                pending: r.pending,
                failed: r.malformed,
            }
        }
        ConfigFile::Lamina(cfg) => {
            let r = apply::apply(t, methods, &cfg).await;
            FileApplied {
                created: r.created,
                existing: r.existing,
                pending: r.pending,
                failed: r.failed,
            }
        }
    }
}
