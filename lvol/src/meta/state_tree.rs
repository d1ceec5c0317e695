//! The operations of [`MetaState`] that change the snapshot tree: snapshot, detach (end of
//! inflate and decouple) and merge (deleting a snapshot into its only clone). Each reads what
//! it needs first and switches every lvol it touches under one write lock, so readers see the
//! old or the new tree, never an lvol without its data.

use std::sync::Arc;

use uuid::Uuid;

use super::{Applied, LvolData, LvolShared, MetaState, count_real, is_real, provides};
use crate::error::LvolError;
use crate::format::record::{FLAG_READ_ONLY, FLAG_SNAPSHOT, FLAG_THIN, UNMAPPED, ZERO};

impl MetaState {
    pub(super) fn snapshot(
        &mut self,
        origin: &Uuid,
        snapshot: Uuid,
        name: &str,
    ) -> Result<Applied, LvolError> {
        let lvol = Arc::clone(self.get(origin)?);
        if self.lvols.contains_key(&snapshot) || self.names.contains_key(name) {
            return Err(LvolError::Exists(format!("lvol {name}")));
        }
        let taken = lvol.data.read().clone();
        if taken.is_snapshot() {
            return Err(LvolError::invalid(
                "cannot snapshot a snapshot: clone it first",
            ));
        }
        let thin = if taken.is_thin() || taken.parent.is_some() {
            FLAG_THIN
        } else {
            0
        };
        let snap = Arc::new(LvolShared::new(
            snapshot,
            LvolData {
                name: name.to_owned(),
                flags: FLAG_SNAPSHOT | FLAG_READ_ONLY | thin,
                clear: taken.clear,
                parent: taken.parent.clone(),
                children: vec![*origin],
                entries: taken.entries.clone(),
                allocated: taken.allocated,
            },
        ));
        if let Some(p) = &taken.parent {
            for c in &mut p.write_data().children {
                if c == origin {
                    *c = snapshot;
                }
            }
        }
        {
            // One write lock: readers see the old map or the new parent, never neither.
            let mut d = lvol.write_data();
            d.entries = vec![UNMAPPED; taken.entries.len()];
            d.allocated = 0;
            d.parent = Some(Arc::clone(&snap));
            d.flags |= FLAG_THIN;
        }
        self.lvols.insert(snapshot, Arc::clone(&snap));
        self.names.insert(name.to_owned(), snapshot);
        Ok(Applied {
            created: Some(snap),
            ..Applied::default()
        })
    }

    pub(super) fn detach(&mut self, uuid: &Uuid, thick: bool) -> Result<Applied, LvolError> {
        let lvol = Arc::clone(self.get(uuid)?);
        let (parent, entries) = {
            let d = lvol.data.read();
            (d.parent.clone(), d.entries.clone())
        };
        if parent.is_none() && !thick {
            return Err(LvolError::invalid(format!("lvol {uuid} has no parent")));
        }
        for (i, &e) in entries.iter().enumerate() {
            let unresolved = if thick {
                !is_real(e)
            } else {
                e == UNMAPPED && parent.as_ref().is_some_and(|p| provides(p, i))
            };
            if unresolved {
                return Err(LvolError::corrupt(format!(
                    "detach of {uuid} leaves cluster {i} behind"
                )));
            }
        }
        if let Some(parent) = parent {
            parent.write_data().children.retain(|c| c != uuid);
        }
        let mut d = lvol.write_data();
        d.parent = None;
        for e in &mut d.entries {
            if *e == ZERO {
                *e = UNMAPPED;
            }
        }
        if thick {
            d.flags &= !FLAG_THIN;
        }
        Ok(Applied::default())
    }

    pub(super) fn merge(&mut self, snapshot: &Uuid, clone: &Uuid) -> Result<Applied, LvolError> {
        let snap = Arc::clone(self.get(snapshot)?);
        let child = Arc::clone(self.get(clone)?);
        let s = snap.data.read().clone();
        if s.children.as_slice() != [*clone] {
            return Err(LvolError::HasClones(s.children.len()));
        }
        let mut merged = child.data.read().entries.clone();
        let mut taken = vec![false; s.entries.len()];
        let grandparent_len = s.parent.as_ref().map_or(0, |p| p.data.read().entries.len());
        for (i, e) in merged.iter_mut().enumerate() {
            match (*e, s.entries.get(i)) {
                (UNMAPPED, Some(&from)) => {
                    *e = from;
                    if let Some(t) = taken.get_mut(i) {
                        *t = true;
                    }
                }
                // Past the snapshot's end the clone read zeros; the new parent must not show.
                (UNMAPPED, None) if i < grandparent_len => *e = ZERO,
                _ => {}
            }
        }
        let leftover: Vec<u32> = s
            .entries
            .iter()
            .zip(&taken)
            .filter(|(_, t)| !**t)
            .map(|(e, _)| *e)
            .collect();
        if let Some(p) = &s.parent {
            for c in &mut p.write_data().children {
                if c == snapshot {
                    *c = *clone;
                }
            }
        }
        {
            let mut d = child.write_data();
            d.allocated = count_real(&merged);
            d.entries = merged;
            d.parent.clone_from(&s.parent);
        }
        let mut freed = Vec::new();
        self.free_entries(&leftover, &mut freed);
        self.names.remove(&s.name);
        self.lvols.remove(snapshot);
        Ok(Applied {
            freed,
            ..Applied::default()
        })
    }
}
