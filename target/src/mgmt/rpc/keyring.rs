//! The keyring methods, in SPDK's names and shapes: `keyring_file_add_key` (a name and the
//! absolute path of a file holding one interchange-format key, owned by this process's user
//! and unreadable by others), `keyring_file_remove_key` and `keyring_get_keys` (names, paths
//! and reference counts; never key material). The keyring itself is
//! [`crate::plane::keyring`]. Errors carry SPDK's errno (`-EEXIST`, `-ENOENT`, `-EPERM` for a
//! file SPDK's rules refuse, `-EINVAL` for one that holds no valid key) and a message naming
//! the file and the problem.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use super::dispatch::{Methods, RpcResult};
use super::error::RpcError;
use super::fields::{Described, Field, NoParams, applied};
use crate::mgmt::context::Target;
use crate::plane::keyring::{Key, KeyError};

/// Registers the methods.
pub fn register(m: &mut Methods, t: &Arc<Target>) {
    super::reg(m, t, "keyring_file_add_key", add_key);
    super::reg(m, t, "keyring_file_remove_key", remove_key);
    super::reg(m, t, "keyring_get_keys", get_keys);
}

fn to_rpc(e: &KeyError) -> RpcError {
    RpcError::new(-e.errno(), e.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddKey {
    name: String,
    path: PathBuf,
}

impl Described for AddKey {
    const FIELDS: &'static [Field] = &[applied("name"), applied("path")];
}

async fn add_key(t: Arc<Target>, p: AddKey) -> RpcResult {
    if p.name.is_empty() {
        return Err(RpcError::invalid_params("name must not be empty"));
    }
    let key = t
        .keyring
        .add_file(&p.name, &p.path)
        .map_err(|e| to_rpc(&e))?;
    tracing::info!(key = %p.name, path = %p.path.display(), kind = %key.kind(), "key added");
    Ok(json!(true))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveKey {
    name: String,
}

impl Described for RemoveKey {
    const FIELDS: &'static [Field] = &[applied("name")];
}

async fn remove_key(t: Arc<Target>, p: RemoveKey) -> RpcResult {
    t.keyring.remove(&p.name).map_err(|e| to_rpc(&e))?;
    tracing::info!(key = %p.name, "key removed");
    Ok(json!(true))
}

async fn get_keys(t: Arc<Target>, _p: NoParams) -> RpcResult {
    // As SPDK counts: the keyring's own reference (while listed) and each user's, not this
    // listing's. A removed key still in use is listed, `removed`, until its last user goes.
    let describe = |k: &Arc<Key>, removed: bool| {
        let refcnt = Arc::strong_count(k).saturating_sub(1);
        json!({"name": k.name(), "module": "keyring_file", "removed": removed,
            "probed": false, "refcnt": refcnt, "path": k.path().display().to_string()})
    };
    let mut keys: Vec<_> = t
        .keyring
        .list()
        .iter()
        .map(|k| describe(k, false))
        .collect();
    keys.extend(t.keyring.removed_in_use().iter().map(|k| describe(k, true)));
    Ok(json!(keys))
}
