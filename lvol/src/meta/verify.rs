//! The online check of the metadata store: the in-memory state and allocator checked, then
//! compared with what the media loads now plus the records not yet written (see
//! `crate::check`, which reports it). Kept out of the journal so the journal does not depend
//! on the loader.

use std::sync::Arc;

use super::journal::MetaStore;
use super::open;
use crate::error::LvolError;

/// What an online check saw (see `crate::check`).
#[derive(Debug)]
pub(crate) struct Verified {
    pub problems: Vec<String>,
    pub lvols: usize,
    pub data_clusters: u32,
    pub used: u32,
    pub reserved: u32,
    pub parked: usize,
    pub free: u32,
}

impl MetaStore {
    /// Checks the in-memory state and allocator, then that the media agrees with memory:
    /// with no journal write in flight (writer lock held), what the device loads plus the
    /// records still pending must be exactly the state in memory. Changes nothing.
    pub(crate) async fn verify(self: &Arc<Self>) -> Result<Verified, LvolError> {
        let _w = self.quiesce().await;
        let (mut records, pending, mut v) = {
            let m = self.meta.lock();
            let mut problems = m.state.verify(m.max_lvols);
            problems.extend(m.alloc.verify(&m.state));
            let v = Verified {
                problems,
                lvols: m.state.lvol_count(),
                data_clusters: m.state.data_clusters(),
                used: m.state.used_clusters(),
                reserved: m.alloc.reserved_clusters(),
                parked: m.alloc.parked_clusters(),
                free: m.alloc.free_clusters(&m.state),
            };
            (m.state.records(), m.pending.clone(), v)
        };
        let mut media = match open::read_metadata(&self.device, open::Mode::Strict).await {
            Ok(l) => l,
            Err(e) => {
                let why = open::detail(&e);
                v.problems
                    .push(format!("the media does not load as it is now: {why}"));
                return Ok(v);
            }
        };
        let replayed =
            open::apply_batch(&mut media.state, &pending, open::Mode::Strict, &mut |_| {});
        if let Err(e) = replayed {
            let why = open::detail(&e);
            v.problems.push(format!(
                "the records not yet written do not apply to what the media holds: {why}"
            ));
            return Ok(v);
        }
        let mut loaded = media.state.records();
        records.sort_by_key(|r| r.uuid);
        loaded.sort_by_key(|r| r.uuid);
        if records != loaded {
            let only = |a: &[crate::format::record::LvolRecord],
                        b: &[crate::format::record::LvolRecord]| {
                a.iter()
                    .filter(|r| !b.contains(r))
                    .map(|r| format!("{} ({})", r.uuid, r.name))
                    .take(8)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            v.problems.push(format!(
                "memory and media disagree: in memory only [{}]; on the media only [{}]",
                only(&records, &loaded),
                only(&loaded, &records)
            ));
        }
        Ok(v)
    }
}
