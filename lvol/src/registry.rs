//! The registry: every loaded lvstore, by UUID and by unique name, in `DashMap`s private to
//! this type. Callers only ever get refcounted handles ([`LvolStore`], [`Lvol`]); no map guard
//! outlives a call or is held across an `.await` or while another key is touched. Listings
//! snapshot the handles first and read properties afterwards through each handle, so a listing
//! racing a delete sees each lvol complete and valid, or not at all. Operations that change
//! what the registry holds run in tasks of their own (see [`crate::detach`]), so a caller
//! that stops waiting never leaves a name held or an lvstore half-created or half-forgotten.

use std::sync::Arc;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use uuid::Uuid;

use crate::detach::uncounted;
use crate::device::Device;
use crate::error::LvolError;
use crate::lifecycle::StoreEvent;
use crate::store::{Lvol, LvolInfo, LvolStore, LvstoreInfo, LvstoreOptions};
use crate::types::check_name;

/// All loaded lvstores. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct Registry(Arc<RegistryInner>);

#[derive(Debug, Default)]
struct RegistryInner {
    stores: DashMap<Uuid, LvolStore>,
    /// Name to UUID; the nil UUID marks a name held by a create or rename in progress.
    names: DashMap<String, Uuid>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn hold_name(&self, name: &str) -> Result<(), LvolError> {
        match self.0.names.entry(name.to_owned()) {
            Entry::Occupied(_) => Err(LvolError::Exists(format!("lvstore {name}"))),
            Entry::Vacant(v) => {
                v.insert(Uuid::nil());
                Ok(())
            }
        }
    }

    fn drop_hold(&self, name: &str) {
        self.0.names.remove_if(name, |_, u| u.is_nil());
    }

    fn insert(&self, store: &LvolStore, name: &str) {
        self.0.names.insert(name.to_owned(), store.uuid());
        self.0.stores.insert(store.uuid(), store.clone());
    }

    /// Creates an lvstore named `name` on `device` (the base bdev `base_bdev`).
    pub async fn create_lvstore(
        &self,
        device: Device,
        base_bdev: &str,
        name: &str,
        opts: &LvstoreOptions,
    ) -> Result<LvolStore, LvolError> {
        let (this, base_bdev, name, opts) = (
            self.clone(),
            base_bdev.to_owned(),
            name.to_owned(),
            opts.clone(),
        );
        uncounted(async move {
            this.create_lvstore_now(device, &base_bdev, &name, &opts)
                .await
        })
        .await
    }

    async fn create_lvstore_now(
        &self,
        device: Device,
        base_bdev: &str,
        name: &str,
        opts: &LvstoreOptions,
    ) -> Result<LvolStore, LvolError> {
        check_name("lvstore", name)?;
        self.hold_name(name)?;
        match LvolStore::create(device, base_bdev, name, opts).await {
            Ok(store) => {
                self.insert(&store, name);
                Ok(store)
            }
            Err(e) => {
                self.drop_hold(name);
                Err(e)
            }
        }
    }

    /// Loads the lvstore on `device` (start-up examine) with all its lvols.
    pub async fn load_lvstore(
        &self,
        device: Device,
        base_bdev: &str,
    ) -> Result<LvolStore, LvolError> {
        let store = LvolStore::load(device, base_bdev).await?;
        let name = store.name();
        if self.0.stores.contains_key(&store.uuid()) {
            return Err(LvolError::Exists(format!(
                "lvstore {} ({}) is already loaded",
                name,
                store.uuid()
            )));
        }
        self.hold_name(&name)?;
        self.insert(&store, &name);
        Ok(store)
    }

    fn forget(&self, store: &LvolStore, name: &str) {
        self.0.names.remove_if(name, |_, u| *u == store.uuid());
        self.0.stores.remove(&store.uuid());
    }

    /// Unloads an lvstore (its metadata is checkpointed); `Busy` if an lvol is open.
    pub async fn unload_lvstore(&self, store: &LvolStore) -> Result<(), LvolError> {
        let (this, store) = (self.clone(), store.clone());
        uncounted(async move {
            let name = store.name();
            store.close(StoreEvent::Checkpointed).await?;
            this.forget(&store, &name);
            Ok(())
        })
        .await
    }

    /// Destroys an lvstore: its superblock is wiped, so the device holds no lvstore any more.
    /// `Busy` if an lvol is open.
    pub async fn destroy_lvstore(&self, store: &LvolStore) -> Result<(), LvolError> {
        let (this, store) = (self.clone(), store.clone());
        uncounted(async move {
            let name = store.name();
            let r = store.close(StoreEvent::Wiped).await;
            if !matches!(r, Err(LvolError::Busy(_) | LvolError::Unloaded)) {
                this.forget(&store, &name);
            }
            r
        })
        .await
    }

    /// Renames an lvstore (names are unique across the registry).
    pub async fn rename_lvstore(&self, store: &LvolStore, name: &str) -> Result<(), LvolError> {
        let (this, store, name) = (self.clone(), store.clone(), name.to_owned());
        uncounted(async move { this.rename_lvstore_now(&store, &name).await }).await
    }

    async fn rename_lvstore_now(&self, store: &LvolStore, name: &str) -> Result<(), LvolError> {
        check_name("lvstore", name)?;
        let old = store.name();
        if old == name {
            return Ok(());
        }
        self.hold_name(name)?;
        match store.rename(name).await {
            Ok(()) => {
                self.0.names.insert(name.to_owned(), store.uuid());
                self.0.names.remove_if(&old, |_, u| *u == store.uuid());
                Ok(())
            }
            Err(e) => {
                self.drop_hold(name);
                Err(e)
            }
        }
    }

    /// The lvstore with this UUID or name.
    pub fn lvstore(&self, uuid_or_name: &str) -> Result<LvolStore, LvolError> {
        let uuid = match Uuid::parse_str(uuid_or_name) {
            Ok(u) => Some(u),
            Err(_) => self.0.names.get(uuid_or_name).map(|r| *r.value()),
        };
        uuid.and_then(|u| self.0.stores.get(&u).map(|r| r.value().clone()))
            .ok_or_else(|| LvolError::NotFound(format!("lvstore {uuid_or_name}")))
    }

    /// Handles of every lvstore.
    pub fn lvstores(&self) -> Vec<LvolStore> {
        self.0.stores.iter().map(|r| r.value().clone()).collect()
    }

    /// Properties of every lvstore, by name.
    pub fn list_lvstores(&self) -> Vec<LvstoreInfo> {
        let mut out: Vec<LvstoreInfo> = self
            .lvstores()
            .iter()
            .filter_map(|s| s.info().ok())
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The lvol with this UUID or alias `lvs_name/lvol_name`.
    pub fn lvol(&self, uuid_or_alias: &str) -> Result<Lvol, LvolError> {
        if let Ok(uuid) = Uuid::parse_str(uuid_or_alias) {
            return self
                .lvstores()
                .iter()
                .find_map(|s| s.lvol_by_uuid(&uuid).ok())
                .ok_or_else(|| LvolError::NotFound(format!("lvol {uuid_or_alias}")));
        }
        let Some((lvs, name)) = uuid_or_alias.split_once('/') else {
            return Err(LvolError::NotFound(format!(
                "lvol {uuid_or_alias} (address lvols by UUID or as lvs_name/lvol_name)"
            )));
        };
        self.lvstore(lvs)?.lvol(name)
    }

    /// Properties of every lvol (of one lvstore, or all), by alias.
    pub fn list_lvols(&self, store: Option<&LvolStore>) -> Vec<LvolInfo> {
        let stores = match store {
            Some(s) => vec![s.clone()],
            None => self.lvstores(),
        };
        let mut out: Vec<LvolInfo> = stores.iter().flat_map(LvolStore::list_lvols).collect();
        out.sort_by(|a, b| a.alias.cmp(&b.alias));
        out
    }
}
