//! Persisted configuration, in SPDK's `save_config` JSON shape.
//!
//! What an operator creates over RPC (base devices, the transport, subsystems, their listeners,
//! hosts and namespaces) is written to `DATA_DIR/lamina.json` after every change, atomically
//! (temporary file, fsync, rename, fsync of the directory), and replayed through the same RPC
//! methods at start-up. Lvstores and lvols are not in it: they live on their own devices and
//! come back when their base bdev is created again (examine). The same replay loads a
//! `--config` file written by SPDK's `save_config`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::bdev::BdevKind;
use crate::context::Target;
use crate::rpc::Methods;
use crate::rpc::nvmf::ListenAddress;
use crate::subsystem::{Backend, SubsystemKind};

/// The state file's name inside the data directory.
pub const STATE_FILE: &str = "lamina.json";

/// The current configuration as `save_config` returns it.
pub fn save_config(t: &Target) -> Value {
    json!({"subsystems": [
        {"subsystem": "bdev", "config": bdev_config(t)},
        {"subsystem": "nvmf", "config": nvmf_config(t)},
    ]})
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
    let mut out = Vec::new();
    if t.transport_created
        .load(std::sync::atomic::Ordering::Acquire)
    {
        let o = t.options();
        out.push(json!({"method": "nvmf_create_transport", "params": {
            "trtype": "TCP",
            "max_queue_depth": o.max_queue_depth,
            "max_io_qpairs_per_ctrlr": o.max_io_qpairs_per_ctrlr,
            "in_capsule_data_size": o.in_capsule_data_size,
            "max_io_size": o.max_io_size,
            "io_unit_size": o.io_unit_size,
            "max_aq_depth": o.max_aq_depth,
            "c2h_success": o.c2h_success,
        }}));
    }
    for s in t.subsystems.list() {
        if s.kind() == SubsystemKind::Discovery {
            continue;
        }
        let nqn = s.nqn();
        out.push(json!({"method": "nvmf_create_subsystem", "params": {
            "nqn": nqn, "serial_number": s.serial_number(), "model_number": s.model_number(),
            "allow_any_host": s.allow_any_host(), "max_namespaces": s.max_namespaces()}}));
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
    out
}

/// Writes the configuration to the state file, if there is one. Failures are logged: the
/// change itself is done, and the next successful write carries it.
pub async fn persist(t: &Arc<Target>) {
    let Some(path) = t.state_path.read().clone() else {
        return;
    };
    let t2 = t.clone();
    let result = tokio::task::spawn_blocking(move || {
        // Under the lock, the snapshot and the write are one step: files land in order.
        let _guard = t2.persist_lock.lock();
        let text = serde_json::to_vec_pretty(&save_config(&t2)).map_err(std::io::Error::other)?;
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
    /// Calls that failed (each logged).
    pub failed: usize,
}

/// Calls every method of `config` in order: the `bdev` subsystem first (so lvstores are
/// examined before namespaces refer to their lvols), then `nvmf`, then anything else. A call
/// that fails is logged and the rest still run, so one missing device does not take every
/// subsystem down with it.
pub async fn replay(methods: &Methods, config: &Value) -> Replayed {
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
        let calls = section
            .get("config")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for call in calls {
            let Some(method) = call.get("method").and_then(Value::as_str) else {
                continue;
            };
            if !methods.contains(method) {
                tracing::warn!(
                    method,
                    "configuration entry skipped: method not supported by Lamina"
                );
                done.failed += 1;
                continue;
            }
            let request = json!({"jsonrpc": "2.0", "id": 1, "method": method,
                "params": call.get("params").cloned().unwrap_or(Value::Null)});
            let answer = methods.handle_value(request).await.unwrap_or(Value::Null);
            if let Some(err) = answer.get("error") {
                tracing::error!(method, error = %err, "configuration entry failed");
                done.failed += 1;
            } else {
                done.ok += 1;
            }
        }
    }
    done
}
