//! The metadata state: every lvol's record and cluster map, and which clusters are in use.
//! [`MetaState::apply`] is the single place an [`Op`] changes anything, used both at run time
//! and when replaying the journal, so both paths reach the same state. It validates an
//! operation completely before changing anything: an operation applies whole or not at all, a
//! cluster is never owned twice, and no lvol ever points at a free cluster.
//!
//! Each lvol's data lives in an [`LvolShared`] behind one `RwLock`, shared with the lvol's
//! handles: the I/O path reads a map entry under a read lock, and a listing reads every
//! property of an lvol under one read lock, so each listed lvol is internally consistent.
//! Its size and flags are mirrored in atomics ([`Geometry`]) that every write to the data
//! updates before its lock is released ([`LvolShared::write_data`]), so the I/O path checks
//! range and read-only without taking the lock.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};

use parking_lot::{RwLock, RwLockWriteGuard};
use uuid::Uuid;

use crate::error::LvolError;
use crate::format::record::{
    FLAG_READ_ONLY, FLAG_SNAPSHOT, FLAG_THIN, LvolRecord, Op, UNMAPPED, ZERO, record_len, run_count,
};
use crate::plane::DataPlane;
use crate::types::ClearMethod;

/// One lvol's metadata and cluster map.
#[derive(Debug)]
pub(crate) struct LvolShared {
    pub uuid: Uuid,
    /// Read it with `data.read()`; change it only through [`LvolShared::write_data`].
    pub data: RwLock<LvolData>,
    /// Size and flags, readable without the lock.
    pub geometry: Geometry,
    /// Write gate and first-write latches (run-time only, never persisted).
    pub plane: DataPlane,
}

/// An lvol's size and flags as atomics: what the I/O path checks on every command.
#[derive(Debug, Default)]
pub(crate) struct Geometry {
    size_clusters: AtomicU32,
    flags: AtomicU8,
}

impl Geometry {
    fn update(&self, d: &LvolData) {
        self.size_clusters
            .store(d.size_clusters(), Ordering::Release);
        self.flags.store(d.flags, Ordering::Release);
    }

    /// The size in clusters.
    pub(crate) fn size_clusters(&self) -> u32 {
        self.size_clusters.load(Ordering::Acquire)
    }

    /// Read-only (set read-only, or a snapshot).
    pub(crate) fn is_read_only(&self) -> bool {
        self.flags.load(Ordering::Acquire) & (FLAG_READ_ONLY | FLAG_SNAPSHOT) != 0
    }

    /// Thin-provisioned.
    pub(crate) fn is_thin(&self) -> bool {
        self.flags.load(Ordering::Acquire) & FLAG_THIN != 0
    }
}

/// The write lock on an lvol's data; dropping it updates the [`Geometry`] first (the guard
/// field is released after `drop` has run).
pub(crate) struct DataWrite<'a> {
    guard: RwLockWriteGuard<'a, LvolData>,
    geometry: &'a Geometry,
}

impl std::ops::Deref for DataWrite<'_> {
    type Target = LvolData;

    fn deref(&self) -> &LvolData {
        &self.guard
    }
}

impl std::ops::DerefMut for DataWrite<'_> {
    fn deref_mut(&mut self) -> &mut LvolData {
        &mut self.guard
    }
}

impl Drop for DataWrite<'_> {
    fn drop(&mut self) {
        self.geometry.update(&self.guard);
    }
}

impl LvolShared {
    /// An lvol's shared state over `data`.
    pub(crate) fn new(uuid: Uuid, data: LvolData) -> Self {
        let geometry = Geometry::default();
        geometry.update(&data);
        Self {
            uuid,
            data: RwLock::new(data),
            geometry,
            plane: DataPlane::default(),
        }
    }

    /// The data for writing; the geometry follows when the guard is dropped.
    pub(crate) fn write_data(&self) -> DataWrite<'_> {
        DataWrite {
            guard: self.data.write(),
            geometry: &self.geometry,
        }
    }
}

/// The part of an lvol that changes.
#[derive(Debug, Clone)]
pub(crate) struct LvolData {
    pub name: String,
    pub flags: u8,
    pub clear: ClearMethod,
    pub parent: Option<Arc<LvolShared>>,
    pub children: Vec<Uuid>,
    pub entries: Vec<u32>,
    /// Entries holding a real cluster.
    pub allocated: u32,
}

impl LvolData {
    pub(crate) fn is_thin(&self) -> bool {
        self.flags & FLAG_THIN != 0
    }

    pub(crate) fn is_snapshot(&self) -> bool {
        self.flags & FLAG_SNAPSHOT != 0
    }

    pub(crate) fn is_read_only(&self) -> bool {
        self.flags & (FLAG_READ_ONLY | FLAG_SNAPSHOT) != 0
    }

    pub(crate) fn size_clusters(&self) -> u32 {
        u32::try_from(self.entries.len()).unwrap_or(u32::MAX)
    }

    pub(crate) fn record(&self, uuid: Uuid) -> LvolRecord {
        LvolRecord {
            uuid,
            name: self.name.clone(),
            flags: self.flags,
            clear: self.clear,
            parent: self.parent.as_ref().map(|p| p.uuid),
            entries: self.entries.clone(),
        }
    }
}

/// Whether a map entry holds a real cluster.
pub(crate) fn is_real(e: u32) -> bool {
    e != UNMAPPED && e != ZERO
}

fn count_real(entries: &[u32]) -> u32 {
    u32::try_from(entries.iter().filter(|&&e| is_real(e)).count()).unwrap_or(u32::MAX)
}

/// What an applied operation changed that the caller must act on.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    /// Clusters that became free (the caller quarantines and clears them).
    pub freed: Vec<u32>,
    /// A new lvol (create, snapshot).
    pub created: Option<Arc<LvolShared>>,
}

/// All lvols of one lvstore and the cluster usage.
#[derive(Debug)]
pub(crate) struct MetaState {
    pub total_clusters: u32,
    pub first_data: u32,
    used: Vec<u64>,
    used_count: u32,
    lvols: HashMap<Uuid, Arc<LvolShared>>,
    names: HashMap<String, Uuid>,
}

fn missing(uuid: &Uuid) -> LvolError {
    LvolError::NotFound(format!("lvol {uuid}"))
}

impl MetaState {
    pub(crate) fn new(total_clusters: u32, first_data: u32) -> Self {
        let words = usize::try_from(total_clusters.div_ceil(64)).unwrap_or(0);
        Self {
            total_clusters,
            first_data,
            used: vec![0; words],
            used_count: 0,
            lvols: HashMap::new(),
            names: HashMap::new(),
        }
    }

    /// Grows the cluster count (after the device grew).
    pub(crate) fn grow(&mut self, total_clusters: u32) {
        if total_clusters > self.total_clusters {
            self.total_clusters = total_clusters;
            self.used
                .resize(usize::try_from(total_clusters.div_ceil(64)).unwrap_or(0), 0);
        }
    }

    pub(crate) fn data_clusters(&self) -> u32 {
        self.total_clusters - self.first_data
    }

    pub(crate) fn used_clusters(&self) -> u32 {
        self.used_count
    }

    pub(crate) fn lvol(&self, uuid: &Uuid) -> Option<&Arc<LvolShared>> {
        self.lvols.get(uuid)
    }

    pub(crate) fn lvols(&self) -> impl Iterator<Item = &Arc<LvolShared>> {
        self.lvols.values()
    }

    pub(crate) fn lvol_count(&self) -> usize {
        self.lvols.len()
    }

    pub(crate) fn name_taken(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }

    fn word_bit(c: u32) -> (usize, u64) {
        (
            usize::try_from(c / 64).unwrap_or(usize::MAX),
            1u64 << (c % 64),
        )
    }

    pub(crate) fn is_used(&self, c: u32) -> bool {
        let (w, b) = Self::word_bit(c);
        self.used.get(w).is_some_and(|x| x & b != 0)
    }

    fn set_used(&mut self, c: u32, on: bool) {
        let (w, b) = Self::word_bit(c);
        if let Some(x) = self.used.get_mut(w) {
            let was = *x & b != 0;
            if on && !was {
                *x |= b;
                self.used_count += 1;
            } else if !on && was {
                *x &= !b;
                self.used_count -= 1;
            }
        }
    }

    /// Whether `c` is a data cluster of this lvstore.
    pub(crate) fn is_data_cluster(&self, c: u32) -> bool {
        c >= self.first_data && c < self.total_clusters
    }

    /// Checks that the real clusters in `entries` are data clusters, free, and distinct.
    fn check_free(&self, entries: &[u32]) -> Result<(), LvolError> {
        let mut real: Vec<u32> = entries.iter().copied().filter(|&e| is_real(e)).collect();
        for &c in &real {
            if !self.is_data_cluster(c) {
                return Err(LvolError::corrupt(format!(
                    "cluster {c} is outside the data region"
                )));
            }
            if self.is_used(c) {
                return Err(LvolError::corrupt(format!(
                    "cluster {c} would be owned twice"
                )));
            }
        }
        real.sort_unstable();
        if real.windows(2).any(|w| w.first() == w.get(1)) {
            return Err(LvolError::corrupt("a cluster appears twice in one map"));
        }
        Ok(())
    }

    fn get(&self, uuid: &Uuid) -> Result<&Arc<LvolShared>, LvolError> {
        self.lvols.get(uuid).ok_or_else(|| missing(uuid))
    }

    /// Applies one operation: all of it, or nothing and an error.
    pub(crate) fn apply(&mut self, op: &Op) -> Result<Applied, LvolError> {
        match op {
            Op::Create(rec) => self.create(rec),
            Op::Delete { uuid } => self.delete(uuid),
            Op::Map {
                uuid,
                index,
                cluster,
            } => self.map(uuid, *index, *cluster),
            Op::Release {
                uuid,
                start,
                count,
                zero,
            } => self.release(uuid, *start, *count, *zero),
            Op::Resize {
                uuid,
                clusters,
                added,
            } => self.resize(uuid, *clusters, added),
            Op::Rename { uuid, name } => self.rename(uuid, name),
            Op::SetReadOnly { uuid } => {
                self.get(uuid)?.write_data().flags |= FLAG_READ_ONLY;
                Ok(Applied::default())
            }
            Op::Snapshot {
                origin,
                snapshot,
                name,
            } => self.snapshot(origin, *snapshot, name),
            Op::Detach { uuid, thick } => self.detach(uuid, *thick),
            Op::Merge { snapshot, clone } => self.merge(snapshot, clone),
        }
    }

    fn insert(&mut self, rec: &LvolRecord, parent: Option<Arc<LvolShared>>) -> Arc<LvolShared> {
        for &c in rec.entries.iter().filter(|&&e| is_real(e)) {
            self.set_used(c, true);
        }
        let shared = Arc::new(LvolShared::new(
            rec.uuid,
            LvolData {
                name: rec.name.clone(),
                flags: rec.flags,
                clear: rec.clear,
                parent,
                children: Vec::new(),
                allocated: count_real(&rec.entries),
                entries: rec.entries.clone(),
            },
        ));
        self.lvols.insert(rec.uuid, Arc::clone(&shared));
        self.names.insert(rec.name.clone(), rec.uuid);
        shared
    }

    fn create(&mut self, rec: &LvolRecord) -> Result<Applied, LvolError> {
        if self.lvols.contains_key(&rec.uuid) {
            return Err(LvolError::Exists(format!("lvol {}", rec.uuid)));
        }
        if self.names.contains_key(&rec.name) {
            return Err(LvolError::Exists(format!("lvol name {}", rec.name)));
        }
        let parent = match &rec.parent {
            Some(p) => Some(Arc::clone(self.get(p)?)),
            None => None,
        };
        self.check_free(&rec.entries)?;
        if let Some(p) = &parent {
            p.write_data().children.push(rec.uuid);
        }
        let shared = self.insert(rec, parent);
        Ok(Applied {
            created: Some(shared),
            ..Applied::default()
        })
    }

    fn free_entries(&mut self, entries: &[u32], freed: &mut Vec<u32>) {
        for &c in entries.iter().filter(|&&e| is_real(e)) {
            self.set_used(c, false);
            freed.push(c);
        }
    }

    fn delete(&mut self, uuid: &Uuid) -> Result<Applied, LvolError> {
        let lvol = Arc::clone(self.get(uuid)?);
        let (name, parent, entries) = {
            let d = lvol.data.read();
            if !d.children.is_empty() {
                return Err(LvolError::HasClones(d.children.len()));
            }
            (d.name.clone(), d.parent.clone(), d.entries.clone())
        };
        let mut freed = Vec::new();
        self.free_entries(&entries, &mut freed);
        if let Some(p) = parent {
            p.write_data().children.retain(|c| c != uuid);
        }
        self.names.remove(&name);
        self.lvols.remove(uuid);
        Ok(Applied {
            freed,
            ..Applied::default()
        })
    }

    fn map(&mut self, uuid: &Uuid, index: u32, cluster: u32) -> Result<Applied, LvolError> {
        let lvol = Arc::clone(self.get(uuid)?);
        if !self.is_data_cluster(cluster) || self.is_used(cluster) {
            return Err(LvolError::corrupt(format!(
                "cluster {cluster} is not free to map"
            )));
        }
        let mut d = lvol.write_data();
        let slot = usize::try_from(index)
            .ok()
            .and_then(|i| d.entries.get_mut(i));
        match slot {
            Some(e) if !is_real(*e) => *e = cluster,
            _ => {
                return Err(LvolError::corrupt(format!(
                    "lvol {uuid} cluster {index} is not mappable"
                )));
            }
        }
        d.allocated += 1;
        drop(d);
        self.set_used(cluster, true);
        Ok(Applied::default())
    }

    fn release(
        &mut self,
        uuid: &Uuid,
        start: u32,
        count: u32,
        zero: bool,
    ) -> Result<Applied, LvolError> {
        let lvol = Arc::clone(self.get(uuid)?);
        let mut d = lvol.write_data();
        let range = usize::try_from(start).ok().zip(usize::try_from(count).ok());
        let Some(slots) = range.and_then(|(s, n)| d.entries.get_mut(s..s.checked_add(n)?)) else {
            return Err(LvolError::corrupt(format!(
                "release past the end of lvol {uuid}"
            )));
        };
        let old: Vec<u32> = slots.to_vec();
        slots.fill(if zero { ZERO } else { UNMAPPED });
        d.allocated -= count_real(&old);
        drop(d);
        let mut freed = Vec::new();
        self.free_entries(&old, &mut freed);
        Ok(Applied {
            freed,
            ..Applied::default()
        })
    }

    fn resize(&mut self, uuid: &Uuid, clusters: u32, added: &[u32]) -> Result<Applied, LvolError> {
        let lvol = Arc::clone(self.get(uuid)?);
        let old_len = lvol.data.read().size_clusters();
        let new_len = usize::try_from(clusters).unwrap_or(usize::MAX);
        let mut freed = Vec::new();
        if clusters >= old_len {
            if added.len() != usize::try_from(clusters - old_len).unwrap_or(usize::MAX) {
                return Err(LvolError::corrupt(
                    "resize record does not match the size change",
                ));
            }
            self.check_free(added)?;
            for &c in added.iter().filter(|&&e| is_real(e)) {
                self.set_used(c, true);
            }
            let mut d = lvol.write_data();
            d.entries.extend_from_slice(added);
            d.allocated += count_real(added);
        } else {
            if !added.is_empty() {
                return Err(LvolError::corrupt("shrink record carries new clusters"));
            }
            let tail = {
                let mut d = lvol.write_data();
                let tail = d.entries.split_off(new_len);
                d.allocated -= count_real(&tail);
                tail
            };
            self.free_entries(&tail, &mut freed);
        }
        Ok(Applied {
            freed,
            ..Applied::default()
        })
    }

    fn rename(&mut self, uuid: &Uuid, name: &str) -> Result<Applied, LvolError> {
        let lvol = Arc::clone(self.get(uuid)?);
        if self.names.get(name).is_some_and(|u| u != uuid) {
            return Err(LvolError::Exists(format!("lvol name {name}")));
        }
        let old = std::mem::replace(&mut lvol.write_data().name, name.to_owned());
        self.names.remove(&old);
        self.names.insert(name.to_owned(), *uuid);
        Ok(Applied::default())
    }

    /// Builds the state from checkpointed records (in any order).
    pub(crate) fn from_records(
        total_clusters: u32,
        first_data: u32,
        records: &[LvolRecord],
    ) -> Result<Self, LvolError> {
        let mut st = Self::new(total_clusters, first_data);
        for rec in records {
            if st.lvols.contains_key(&rec.uuid) || st.names.contains_key(&rec.name) {
                return Err(LvolError::corrupt(format!(
                    "lvol {} appears twice",
                    rec.uuid
                )));
            }
            st.check_free(&rec.entries)?;
            st.insert(rec, None);
        }
        for rec in records {
            let Some(p) = &rec.parent else { continue };
            let parent = Arc::clone(
                st.get(p)
                    .map_err(|_| LvolError::corrupt("missing parent"))?,
            );
            parent.write_data().children.push(rec.uuid);
            if let Some(me) = st.lvols.get(&rec.uuid) {
                me.write_data().parent = Some(parent);
            }
        }
        st.check_acyclic()?;
        Ok(st)
    }

    fn check_acyclic(&self) -> Result<(), LvolError> {
        for lvol in self.lvols.values() {
            let mut cur = lvol.data.read().parent.clone();
            let mut steps = 0usize;
            while let Some(p) = cur {
                steps += 1;
                if steps > self.lvols.len() {
                    return Err(LvolError::corrupt("lvol parents form a cycle"));
                }
                let next = p.data.read().parent.clone();
                cur = next;
            }
        }
        Ok(())
    }

    /// Exact size of the checkpoint payload of this state (without building it).
    pub(crate) fn checkpoint_len(&self) -> u64 {
        let records: usize = self
            .lvols
            .values()
            .map(|l| {
                let d = l.data.read();
                4 + record_len(d.name.len(), d.parent.is_some(), run_count(&d.entries))
            })
            .sum();
        (8 + 4 + records) as u64
    }

    /// Every lvol's record.
    pub(crate) fn records(&self) -> Vec<LvolRecord> {
        self.lvols
            .values()
            .map(|l| l.data.read().record(l.uuid))
            .collect()
    }
}

/// Whether reading logical cluster `index` through `parent` could return parent data.
pub(crate) fn provides(parent: &Arc<LvolShared>, index: usize) -> bool {
    let mut cur = Some(Arc::clone(parent));
    while let Some(p) = cur {
        let next = {
            let d = p.data.read();
            match d.entries.get(index) {
                None | Some(&ZERO) => return false,
                Some(&e) if is_real(e) => return true,
                Some(_) => d.parent.clone(),
            }
        };
        cur = next;
    }
    false
}

#[path = "state_tree.rs"]
mod tree;

#[path = "state_verify.rs"]
mod verify;

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
