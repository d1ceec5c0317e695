//! Lvol management methods beyond create, list and delete, as SPDK names and shapes them:
//! `bdev_lvol_resize`, `bdev_lvol_rename`, `bdev_lvol_set_read_only`, `bdev_lvol_snapshot`,
//! `bdev_lvol_clone`, `bdev_lvol_inflate`, `bdev_lvol_decouple_parent`; and the Lamina-specific
//! query `lamina_get_operations` that follows the long ones.
//!
//! Every lvol is addressed as SPDK does, by UUID or by its alias `lvs_name/lvol_name`; new names
//! (`new_name`, `snapshot_name`, `clone_name`) are names within the lvol's lvstore. Results are
//! SPDK's: the new lvol's UUID for snapshot and clone, `true` otherwise.
//!
//! A change a host must see (a resize, read-only) is announced to every subsystem exporting the
//! lvol, whose controllers then send a Namespace Attribute Changed notice. Inflate and decouple
//! run in the calling connection's task, holding no lock across their `.await`s, and register
//! their progress in the target's [`crate::mgmt::operations::Operations`].

use std::sync::Arc;

use lamina_lvol::{Lvol, Progress};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::dispatch::{Methods, RpcResult};
use super::error::RpcError;
use super::fields::{Described, Field, applied};
use crate::mgmt::context::Target;
use crate::plane::subsystem::{Backend, Subsystem, SubsystemEvent};

/// Registers the methods.
pub fn register(m: &mut Methods, t: &Arc<Target>) {
    super::reg(m, t, "bdev_lvol_resize", resize);
    super::reg(m, t, "bdev_lvol_rename", rename);
    super::reg(m, t, "bdev_lvol_set_read_only", set_read_only);
    super::reg(m, t, "bdev_lvol_snapshot", snapshot);
    super::reg(m, t, "bdev_lvol_clone", clone);
    super::reg(m, t, "bdev_lvol_inflate", inflate);
    super::reg(m, t, "bdev_lvol_decouple_parent", decouple_parent);
    super::reg(m, t, "lamina_get_operations", get_operations);
}

/// Every namespace exporting the lvol `uuid`, with its subsystem.
pub fn namespaces_of(t: &Target, uuid: Uuid) -> Vec<(Arc<Subsystem>, u32)> {
    t.subsystems
        .namespaces_where(|ns| matches!(ns.backend(), Backend::Lvol(d) if d.lvol().uuid() == uuid))
        .into_iter()
        .map(|(s, ns)| (s, ns.nsid()))
        .collect()
}

/// Tells the controllers of every subsystem exporting `uuid` that its namespace changed, so
/// hosts get the asynchronous event and re-read its Identify data (size, write protection).
fn announce_change(t: &Target, uuid: Uuid) {
    for (s, nsid) in namespaces_of(t, uuid) {
        tracing::debug!(nqn = %s.nqn(), nsid, "namespace changed");
        s.notify(SubsystemEvent::NamespaceChanged(nsid));
    }
}

/// The lvol `name` (UUID or alias) and its alias now.
fn lookup(t: &Target, name: &str) -> Result<(Lvol, String), RpcError> {
    let lvol = t.lvols.lvol(name)?;
    let alias = lvol.info()?.alias;
    Ok((lvol, alias))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Resize {
    name: String,
    size_in_mib: u64,
}

impl Described for Resize {
    const FIELDS: &'static [Field] = &[applied("name"), applied("size_in_mib")];
}

async fn resize(t: Arc<Target>, p: Resize) -> RpcResult {
    let bytes = p
        .size_in_mib
        .checked_mul(1024 * 1024)
        .ok_or_else(|| RpcError::invalid_params("size_in_mib is too large"))?;
    let (lvol, alias) = lookup(&t, &p.name)?;
    lvol.resize(bytes).await?;
    announce_change(&t, lvol.uuid());
    tracing::info!(lvol = %alias, size_in_mib = p.size_in_mib, "lvol resized");
    Ok(json!(true))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rename {
    old_name: String,
    new_name: String,
}

impl Described for Rename {
    const FIELDS: &'static [Field] = &[applied("old_name"), applied("new_name")];
}

async fn rename(t: Arc<Target>, p: Rename) -> RpcResult {
    let (lvol, alias) = lookup(&t, &p.old_name)?;
    if p.new_name.contains('/') {
        return Err(RpcError::invalid(format!(
            "new_name '{}': give the lvol's new name within its lvstore, without 'lvs_name/'",
            p.new_name
        )));
    }
    lvol.rename(&p.new_name).await?;
    tracing::info!(lvol = %alias, new_name = %p.new_name, "lvol renamed");
    Ok(json!(true))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LvolName {
    name: String,
}

impl Described for LvolName {
    const FIELDS: &'static [Field] = &[applied("name")];
}

async fn set_read_only(t: Arc<Target>, p: LvolName) -> RpcResult {
    let (lvol, alias) = lookup(&t, &p.name)?;
    lvol.set_read_only().await?;
    announce_change(&t, lvol.uuid());
    tracing::info!(lvol = %alias, "lvol set read-only");
    Ok(json!(true))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Snapshot {
    lvol_name: String,
    snapshot_name: String,
}

impl Described for Snapshot {
    const FIELDS: &'static [Field] = &[applied("lvol_name"), applied("snapshot_name")];
}

async fn snapshot(t: Arc<Target>, p: Snapshot) -> RpcResult {
    let (lvol, alias) = lookup(&t, &p.lvol_name)?;
    let snap = lvol.snapshot(&p.snapshot_name).await?;
    tracing::info!(lvol = %alias, snapshot = %p.snapshot_name, "snapshot created");
    Ok(json!(snap.uuid().to_string()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CloneParams {
    snapshot_name: String,
    clone_name: String,
}

impl Described for CloneParams {
    const FIELDS: &'static [Field] = &[applied("snapshot_name"), applied("clone_name")];
}

async fn clone(t: Arc<Target>, p: CloneParams) -> RpcResult {
    let (snap, alias) = lookup(&t, &p.snapshot_name)?;
    let clone = snap.create_clone(&p.clone_name).await?;
    tracing::info!(snapshot = %alias, clone = %p.clone_name, "clone created");
    Ok(json!(clone.uuid().to_string()))
}

async fn inflate(t: Arc<Target>, p: LvolName) -> RpcResult {
    copy_up(t, p, "bdev_lvol_inflate").await
}

async fn decouple_parent(t: Arc<Target>, p: LvolName) -> RpcResult {
    copy_up(t, p, "bdev_lvol_decouple_parent").await
}

/// Inflate or decouple, registered as a long operation while it runs.
async fn copy_up(t: Arc<Target>, p: LvolName, method: &'static str) -> RpcResult {
    let (lvol, alias) = lookup(&t, &p.name)?;
    let progress = Progress::new();
    let op = t
        .operations
        .start(method, &alias, &lvol.uuid().to_string(), &progress);
    let result = if method == "bdev_lvol_inflate" {
        lvol.inflate(&progress).await
    } else {
        lvol.decouple_parent(&progress).await
    }
    .map_err(RpcError::from);
    op.finish(&result);
    result?;
    tracing::info!(lvol = %alias, method, "lvol detached from its parent");
    Ok(json!(true))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct GetOperations {
    #[serde(default)]
    id: Option<u64>,
}

impl Described for GetOperations {
    const FIELDS: &'static [Field] = &[applied("id")];
}

async fn get_operations(t: Arc<Target>, p: GetOperations) -> RpcResult {
    let mut ops = t.operations.list();
    if let Some(id) = p.id {
        ops.retain(|o| o.id == id);
        if ops.is_empty() {
            return Err(RpcError::not_found(format!(
                "operation {id} not found: it never existed or finished over a minute ago"
            )));
        }
    }
    serde_json::to_value(ops).map_err(RpcError::internal)
}
