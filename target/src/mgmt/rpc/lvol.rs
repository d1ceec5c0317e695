//! Lvstore methods and lvol create/list/delete, as SPDK names and shapes them (`bdev_lvol_*`):
//! `bdev_lvol_create_lvstore`, `bdev_lvol_get_lvstores`, `bdev_lvol_delete_lvstore`,
//! `bdev_lvol_rename_lvstore`, `bdev_lvol_grow_lvstore`, `bdev_lvol_create`,
//! `bdev_lvol_get_lvols`, `bdev_lvol_delete` (the other lvol methods are in
//! [`super::lvol_ops`]). An lvol is addressed by UUID or by its alias `lvs_name/lvol_name`; an
//! lvstore by `uuid` or `lvs_name`.
//!
//! A thick create and a delete that clears its clusters can take long on a large lvol: they
//! register their progress in [`crate::mgmt::operations`] while they run.
//!
//! Lamina's lvstore metadata is not SPDK's blobstore (see `lvol/FORMAT.md`): it is laid out in
//! 4 KiB blocks and sized from the device, so `md_page_size` is accepted at 4096 only and
//! `num_md_pages_per_cluster_ratio` not at all; every other parameter is applied. An lvol's
//! `clear_method` `default` is the lvstore default (unmap), as in SPDK.
//!
//! Listings take a snapshot of refcounted handles and read each lvol through its own handle:
//! an lvol deleted meanwhile is absent from the answer, never half-read (the SPDK crash this
//! project exists to avoid, spdk#3505).

use std::sync::Arc;

use lamina_lvol::{
    ClearMethod, LvolError, LvolInfo, LvolOptions, LvolStore, LvstoreInfo, LvstoreOptions, Progress,
};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::dispatch::{Methods, RpcResult};
use super::error::RpcError;
use super::fields::{Described, Field, Lit, applied, only};
use crate::mgmt::context::Target;
use crate::plane::bdev::Claim;

/// Registers the methods.
pub fn register(m: &mut Methods, t: &Arc<Target>) {
    super::reg(m, t, "bdev_lvol_create_lvstore", create_lvstore);
    super::reg(m, t, "bdev_lvol_get_lvstores", get_lvstores);
    super::reg(m, t, "bdev_lvol_delete_lvstore", delete_lvstore);
    super::reg(m, t, "bdev_lvol_create", create);
    super::reg(m, t, "bdev_lvol_get_lvols", get_lvols);
    super::reg(m, t, "bdev_lvol_delete", delete);
    super::reg(m, t, "bdev_lvol_rename_lvstore", rename_lvstore);
    super::reg(m, t, "bdev_lvol_grow_lvstore", grow_lvstore);
    super::lvol_ops::register(m, t);
}

/// An lvstore's `clear_method`.
fn parse_clear(s: Option<&str>) -> Result<ClearMethod, RpcError> {
    match s {
        None => Ok(ClearMethod::default()),
        Some(s) => s.parse().map_err(|_| {
            RpcError::invalid_params(format!(
                "clear_method '{s}': use none, unmap or write_zeroes"
            ))
        }),
    }
}

/// An lvol's `clear_method`, which may also be SPDK's `default` (the lvstore default, unmap).
fn parse_lvol_clear(s: Option<&str>) -> Result<ClearMethod, RpcError> {
    match s {
        None | Some("default") => Ok(ClearMethod::default()),
        Some(s) => s.parse().map_err(|_| {
            RpcError::invalid_params(format!(
                "clear_method '{s}': use default, none, unmap or write_zeroes"
            ))
        }),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateLvstore {
    bdev_name: String,
    lvs_name: String,
    #[serde(default)]
    cluster_sz: Option<u64>,
    #[serde(default)]
    clear_method: Option<String>,
}

impl Described for CreateLvstore {
    const FIELDS: &'static [Field] = &[
        applied("bdev_name"),
        applied("lvs_name"),
        applied("cluster_sz"),
        applied("clear_method"),
        only(
            "num_md_pages_per_cluster_ratio",
            &[],
            "Lamina's lvstore metadata is not made of SPDK blobstore pages: its room for \
             lvols and growth is sized from the device (lvol/FORMAT.md)",
        ),
        only(
            "md_page_size",
            &[Lit::Int(4096)],
            "Lamina's lvstore metadata blocks are 4 KiB (lvol/FORMAT.md)",
        ),
    ];
}

async fn create_lvstore(t: Arc<Target>, p: CreateLvstore) -> RpcResult {
    let bdev = t.bdevs.get(&p.bdev_name).map_err(RpcError::from)?;
    let mut opts = LvstoreOptions {
        clear_method: parse_clear(p.clear_method.as_deref())?,
        ..LvstoreOptions::default()
    };
    if let Some(c) = p.cluster_sz {
        opts.cluster_size = c;
    }
    bdev.try_claim(Claim::Lvstore).map_err(|holder| {
        RpcError::busy(format!("bdev '{}' is in use by {holder}", p.bdev_name))
    })?;
    match t
        .lvols
        .create_lvstore(bdev.device().clone(), bdev.name(), &p.lvs_name, &opts)
        .await
    {
        Ok(store) => {
            tracing::info!(lvstore = %p.lvs_name, bdev = %p.bdev_name, "lvstore created");
            Ok(json!(store.uuid().to_string()))
        }
        Err(e) => {
            bdev.release();
            Err(e.into())
        }
    }
}

/// `uuid` or `lvs_name` of one lvstore, or neither for all.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct StoreSelector {
    uuid: Option<String>,
    lvs_name: Option<String>,
}

impl Described for StoreSelector {
    const FIELDS: &'static [Field] = &[applied("uuid"), applied("lvs_name")];
}

impl StoreSelector {
    /// The selected lvstore, or `None` for all; both given is an error.
    pub(super) fn resolve(&self, t: &Target) -> Result<Option<LvolStore>, RpcError> {
        match (&self.uuid, &self.lvs_name) {
            (Some(_), Some(_)) => Err(RpcError::invalid_params("give uuid or lvs_name, not both")),
            (Some(k), None) | (None, Some(k)) => Ok(Some(t.lvols.lvstore(k)?)),
            (None, None) => Ok(None),
        }
    }
}

async fn get_lvstores(t: Arc<Target>, sel: StoreSelector) -> RpcResult {
    let infos: Vec<LvstoreInfo> = match sel.resolve(&t)? {
        Some(store) => vec![store.info()?],
        None => t.lvols.list_lvstores(),
    };
    Ok(Value::Array(infos.iter().map(lvstore_json).collect()))
}

/// One element of `bdev_lvol_get_lvstores`.
pub fn lvstore_json(i: &LvstoreInfo) -> Value {
    json!({
        "uuid": i.uuid.to_string(),
        "name": i.name,
        "base_bdev": i.base_bdev,
        "total_data_clusters": i.total_data_clusters,
        "free_clusters": i.free_clusters,
        "block_size": i.block_size,
        "cluster_size": i.cluster_size,
    })
}

async fn delete_lvstore(t: Arc<Target>, sel: StoreSelector) -> RpcResult {
    let store = sel
        .resolve(&t)?
        .ok_or_else(|| RpcError::invalid_params("give uuid or lvs_name"))?;
    let base = store.base_bdev().to_owned();
    t.lvols.destroy_lvstore(&store).await?;
    if let Ok(b) = t.bdevs.get(&base) {
        b.release();
    }
    tracing::info!(lvstore = %store.name(), "lvstore deleted");
    Ok(json!(true))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateLvol {
    lvol_name: String,
    #[serde(default)]
    size_in_mib: Option<u64>,
    /// Older SPDK versions: size in bytes.
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    thin_provision: bool,
    #[serde(default)]
    uuid: Option<String>,
    #[serde(default)]
    lvs_name: Option<String>,
    #[serde(default)]
    clear_method: Option<String>,
}

impl Described for CreateLvol {
    const FIELDS: &'static [Field] = &[
        applied("lvol_name"),
        applied("size_in_mib"),
        applied("size"),
        applied("thin_provision"),
        applied("uuid"),
        applied("lvs_name"),
        applied("clear_method"),
    ];
}

async fn create(t: Arc<Target>, p: CreateLvol) -> RpcResult {
    let size = match (p.size_in_mib, p.size) {
        (Some(mib), None) => mib
            .checked_mul(1024 * 1024)
            .ok_or_else(|| RpcError::invalid_params("size_in_mib is too large"))?,
        (None, Some(bytes)) => bytes,
        _ => {
            return Err(RpcError::invalid_params(
                "give size_in_mib (or size in bytes), not both",
            ));
        }
    };
    let store = StoreSelector {
        uuid: p.uuid,
        lvs_name: p.lvs_name,
    }
    .resolve(&t)?
    .ok_or_else(|| RpcError::invalid_params("give the lvstore: uuid or lvs_name"))?;
    let opts = LvolOptions {
        thin: p.thin_provision,
        clear_method: parse_lvol_clear(p.clear_method.as_deref())?,
        ..LvolOptions::default()
    };
    let alias = format!("{}/{}", store.name(), p.lvol_name);
    // A thick lvol's clusters are zeroed before it exists: long on a large lvol, so listed.
    let op = (!p.thin_provision).then(|| {
        t.operations
            .start("bdev_lvol_create", &alias, "", &opts.progress)
    });
    let result = store
        .create_lvol(&p.lvol_name, size, &opts)
        .await
        .map_err(RpcError::from);
    if let Some(op) = op {
        op.finish(&result);
    }
    let lvol = result?;
    tracing::info!(lvol = %alias, size, thin = p.thin_provision, "lvol created");
    Ok(json!(lvol.uuid().to_string()))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct GetLvols {
    lvs_uuid: Option<String>,
    lvs_name: Option<String>,
}

impl Described for GetLvols {
    const FIELDS: &'static [Field] = &[applied("lvs_uuid"), applied("lvs_name")];
}

async fn get_lvols(t: Arc<Target>, p: GetLvols) -> RpcResult {
    let store = StoreSelector {
        uuid: p.lvs_uuid,
        lvs_name: p.lvs_name,
    }
    .resolve(&t)?;
    let infos = t.lvols.list_lvols(store.as_ref());
    Ok(Value::Array(infos.iter().map(lvol_json).collect()))
}

/// One element of `bdev_lvol_get_lvols`.
pub fn lvol_json(i: &LvolInfo) -> Value {
    json!({
        "alias": i.alias,
        "uuid": i.uuid.to_string(),
        "name": i.name,
        "is_thin_provisioned": i.is_thin_provisioned,
        "is_snapshot": i.is_snapshot,
        "is_clone": i.is_clone,
        "is_esnap_clone": i.is_esnap_clone,
        "is_degraded": i.is_degraded,
        "num_allocated_clusters": i.num_allocated_clusters,
        "lvs": {"name": i.lvs_name, "uuid": i.lvs_uuid.to_string()},
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LvolName {
    name: String,
}

impl Described for LvolName {
    const FIELDS: &'static [Field] = &[applied("name")];
}

async fn delete(t: Arc<Target>, p: LvolName) -> RpcResult {
    let lvol = t.lvols.lvol(&p.name)?;
    let info = lvol.info()?;
    let progress = Progress::new();
    // Clearing the freed clusters is what takes long; a delete that clears nothing is quick.
    let op = (info.clear_method != ClearMethod::None).then(|| {
        t.operations.start(
            "bdev_lvol_delete",
            &info.alias,
            &info.uuid.to_string(),
            &progress,
        )
    });
    let result = match lvol.delete(&progress).await {
        Err(LvolError::Busy(_)) if lvol.is_exported() => Err(exported_busy(&t, &info)),
        other => other.map_err(RpcError::from),
    };
    if let Some(op) = op {
        op.finish(&result);
    }
    result?;
    tracing::info!(lvol = %info.alias, "lvol deleted");
    Ok(json!(true))
}

/// `-EBUSY` for an exported lvol, naming the namespaces that export it.
fn exported_busy(t: &Target, info: &LvolInfo) -> RpcError {
    let users: Vec<String> = super::lvol_ops::namespaces_of(t, info.uuid)
        .iter()
        .map(|(s, nsid)| format!("namespace {nsid} of {}", s.nqn()))
        .collect();
    let users = if users.is_empty() {
        "a namespace".to_owned()
    } else {
        users.join(", ")
    };
    RpcError::busy(format!(
        "lvol {} is exported as {users}: remove the namespace first (nvmf_subsystem_remove_ns)",
        info.alias
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RenameLvstore {
    old_name: String,
    new_name: String,
}

impl Described for RenameLvstore {
    const FIELDS: &'static [Field] = &[applied("old_name"), applied("new_name")];
}

async fn rename_lvstore(t: Arc<Target>, p: RenameLvstore) -> RpcResult {
    // SPDK answers -ENOENT (not -ENODEV) for an unknown lvstore here; scripts may match on it.
    let store = t.lvols.lvstore(&p.old_name).map_err(|_| {
        RpcError::new(
            super::error::ENOENT,
            format!(
                "lvstore {} not found: bdev_lvol_get_lvstores lists them",
                p.old_name
            ),
        )
    })?;
    t.lvols.rename_lvstore(&store, &p.new_name).await?;
    tracing::info!(old = %p.old_name, new = %p.new_name, "lvstore renamed");
    Ok(json!(true))
}

async fn grow_lvstore(t: Arc<Target>, sel: StoreSelector) -> RpcResult {
    let store = sel
        .resolve(&t)?
        .ok_or_else(|| RpcError::invalid_params("give uuid or lvs_name"))?;
    let info = store.grow().await?;
    tracing::info!(lvstore = %info.name, total_data_clusters = info.total_data_clusters,
        "lvstore grown");
    Ok(json!(true))
}

/// Parses an lvol name that may be a UUID.
pub fn is_uuid(s: &str) -> bool {
    Uuid::parse_str(s).is_ok()
}
