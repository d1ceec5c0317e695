//! The full consistency check of a [`MetaState`]: every invariant the operations maintain,
//! recomputed from scratch rather than trusted from the incremental bookkeeping. Used by the
//! online and offline lvstore checks (`crate::check`) and by the tests after every step.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::{MetaState, count_real, is_real};

impl MetaState {
    /// Every broken invariant, as one sentence each (empty when consistent).
    pub(crate) fn verify(&self, max_lvols: u32) -> Vec<String> {
        let mut problems = Vec::new();
        if self.lvols.len() > usize::try_from(max_lvols).unwrap_or(usize::MAX) {
            problems.push(format!(
                "{} lvols exceed the metadata's room for {max_lvols}",
                self.lvols.len()
            ));
        }
        self.verify_clusters(&mut problems);
        self.verify_names(&mut problems);
        self.verify_tree(&mut problems);
        problems
    }

    /// Cluster ownership: in the data region, owned once, and the usage bitmap matches.
    fn verify_clusters(&self, problems: &mut Vec<String>) {
        let mut owner: HashMap<u32, Uuid> = HashMap::new();
        for (uuid, lvol) in &self.lvols {
            let d = lvol.data.read();
            for (index, &c) in d.entries.iter().enumerate() {
                if !is_real(c) {
                    continue;
                }
                if !self.is_data_cluster(c) {
                    problems.push(format!(
                        "lvol {uuid} cluster {index} maps {c}, outside the data region"
                    ));
                }
                if let Some(other) = owner.insert(c, *uuid) {
                    problems.push(format!("cluster {c} is owned by both {other} and {uuid}"));
                }
                if !self.is_used(c) {
                    problems.push(format!(
                        "cluster {c} (lvol {uuid} cluster {index}) is mapped but marked free"
                    ));
                }
            }
            if d.allocated != count_real(&d.entries) {
                problems.push(format!(
                    "lvol {uuid} counts {} allocated clusters but maps {}",
                    d.allocated,
                    count_real(&d.entries)
                ));
            }
            if !d.is_thin() && d.entries.iter().any(|&e| !is_real(e)) {
                problems.push(format!("thick lvol {uuid} has unallocated clusters"));
            }
        }
        let marked = self.used.iter().map(|w| w.count_ones()).sum::<u32>();
        if marked != self.used_count {
            problems.push(format!(
                "the usage bitmap marks {marked} clusters but counts {}",
                self.used_count
            ));
        }
        if marked as usize != owner.len() {
            problems.push(format!(
                "the usage bitmap marks {marked} clusters but the maps own {}",
                owner.len()
            ));
        }
    }

    /// The name index: one entry per lvol, pointing at it.
    fn verify_names(&self, problems: &mut Vec<String>) {
        if self.names.len() != self.lvols.len() {
            problems.push(format!(
                "{} names index {} lvols",
                self.names.len(),
                self.lvols.len()
            ));
        }
        for (uuid, lvol) in &self.lvols {
            let name = lvol.data.read().name.clone();
            if self.names.get(&name) != Some(uuid) {
                problems.push(format!("lvol {uuid} ({name}) is not found by its name"));
            }
            if lvol.uuid != *uuid {
                problems.push(format!("lvol {uuid} is filed under another UUID"));
            }
        }
    }

    /// Parents and clones: present, read-only parents, symmetric links, no cycle.
    fn verify_tree(&self, problems: &mut Vec<String>) {
        for (uuid, lvol) in &self.lvols {
            let d = lvol.data.read();
            if let Some(p) = &d.parent {
                match self.lvols.get(&p.uuid) {
                    Some(q) if std::sync::Arc::ptr_eq(p, q) => {}
                    _ => problems.push(format!("lvol {uuid} has a parent that is not loaded")),
                }
                let pd = p.data.read();
                if !pd.is_read_only() {
                    problems.push(format!("lvol {uuid} has a writable parent {}", p.uuid));
                }
                if pd.children.iter().filter(|c| *c == uuid).count() != 1 {
                    problems.push(format!(
                        "parent {} does not list its clone {uuid} exactly once",
                        p.uuid
                    ));
                }
            }
            let mut seen = HashSet::new();
            for c in &d.children {
                if !seen.insert(*c) {
                    problems.push(format!("lvol {uuid} lists clone {c} twice"));
                }
                let points_back = self.lvols.get(c).is_some_and(|cl| {
                    cl.data
                        .read()
                        .parent
                        .as_ref()
                        .is_some_and(|p| p.uuid == *uuid)
                });
                if !points_back {
                    problems.push(format!("lvol {uuid} lists {c}, which is not its clone"));
                }
            }
            let mut cur = d.parent.clone();
            let mut steps = 0usize;
            while let Some(p) = cur.take() {
                steps += 1;
                if steps > self.lvols.len() {
                    problems.push(format!("the parents of lvol {uuid} form a cycle"));
                    break;
                }
                cur.clone_from(&p.data.read().parent);
            }
        }
    }
}
