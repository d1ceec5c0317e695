//! Lvstore consistency checks and repair.
//!
//! * [`LvolStore::check`] (online, `bdev_lvol_check_lvstore`): recomputes every invariant of
//!   the loaded metadata (each cluster in the data region and owned once, the usage bitmap and
//!   allocation counts, names, parents and clones, no cycle) and of the allocator (reserved +
//!   quarantined = held, nothing held is mapped), then proves that a load now would find the
//!   same state: with journal writes paused, the media's checkpoint plus journal plus the
//!   records still queued must equal memory. Nothing is written.
//! * [`check_device`] (offline, `lamina lvstore check --device`): what a load would do, and
//!   the invariants of what it finds, without loading anything into a registry. When the load
//!   would fail, it also says what [`repair_device`] would change.
//! * [`repair_device`] (offline, `lamina lvstore repair`): reads the metadata leniently (an
//!   invalid newest checkpoint gives way to the older one; a journal record that maps a
//!   cluster over an existing mapping keeps the newer mapping and frees the older cluster, as
//!   the running lvstore that wrote it had done; any other record that does not apply is
//!   skipped) and writes the result as a new checkpoint, superseding the journal. Every
//!   deviation is reported; data the skipped records described may be lost. The CLI saves the
//!   metadata region to a file first (see `lvol/FORMAT.md`, "Checking and repairing").

use uuid::Uuid;

use crate::device::{BlockDevice, Device};
use crate::error::LvolError;
use crate::meta::open::{self, Loaded, Mode};
use crate::store::LvolStore;

/// What a check found. Consistent when `problems` is empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// Lvstore UUID.
    pub uuid: Uuid,
    /// Lvstore name.
    pub name: String,
    /// Lvols (snapshots included).
    pub lvols: usize,
    /// Clusters available to lvols.
    pub total_data_clusters: u64,
    /// Clusters mapped by lvols.
    pub used_clusters: u64,
    /// Clusters reserved by writes or creates in progress (online only).
    pub reserved_clusters: u64,
    /// Freed clusters waiting to be reusable (online only).
    pub quarantined_clusters: u64,
    /// Clusters free now.
    pub free_clusters: u64,
    /// Journal batches and records a load replays (offline only).
    pub journal_batches: u64,
    /// See `journal_batches`.
    pub journal_records: u64,
    /// Broken invariants: the lvstore is inconsistent if there is any.
    pub problems: Vec<String>,
    /// Worth knowing, not inconsistent (a damaged spare copy, what a repair would change).
    pub notes: Vec<String>,
}

impl CheckReport {
    /// Whether no invariant is broken.
    pub fn is_consistent(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What a repair changed, and the check of the repaired lvstore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairReport {
    /// Every deviation from a strict load (records repaired or skipped, checkpoint fallback).
    pub changes: Vec<String>,
    /// The offline check of the device after the repair.
    pub after: CheckReport,
}

impl LvolStore {
    /// Checks the loaded lvstore (see the module docs); changes nothing.
    pub async fn check(&self) -> Result<CheckReport, LvolError> {
        self.0.check_live()?;
        let v = self.0.md.verify().await?;
        let sb = self.0.md.superblock();
        Ok(CheckReport {
            uuid: sb.uuid,
            name: sb.name,
            lvols: v.lvols,
            total_data_clusters: u64::from(v.data_clusters),
            used_clusters: u64::from(v.used),
            reserved_clusters: u64::from(v.reserved),
            quarantined_clusters: v.parked as u64,
            free_clusters: u64::from(v.free),
            journal_batches: 0,
            journal_records: 0,
            problems: v.problems,
            notes: Vec::new(),
        })
    }
}

fn report_of(l: &Loaded) -> CheckReport {
    let st = &l.state;
    CheckReport {
        uuid: l.sb.uuid,
        name: l.sb.name.clone(),
        lvols: st.lvol_count(),
        total_data_clusters: u64::from(st.data_clusters()),
        used_clusters: u64::from(st.used_clusters()),
        reserved_clusters: 0,
        quarantined_clusters: 0,
        free_clusters: u64::from(st.data_clusters().saturating_sub(st.used_clusters())),
        journal_batches: l.batches,
        journal_records: l.records,
        problems: st.verify(l.sb.max_lvols),
        notes: l.notes.clone(),
    }
}

/// Checks the lvstore on a device that is not loaded (see the module docs); changes nothing.
/// `Err` only when the device holds no lvstore at all, or its superblocks are unreadable.
pub async fn check_device(device: &Device) -> Result<CheckReport, LvolError> {
    match open::read_metadata(device, Mode::Strict).await {
        Ok(l) => Ok(report_of(&l)),
        Err(strict) if matches!(strict, LvolError::Corrupt(_)) => {
            let why = format!("the lvstore does not load: {}", open::detail(&strict));
            let mut r = match open::read_metadata(device, Mode::Salvage).await {
                Ok(l) => {
                    let mut r = report_of(&l);
                    r.notes = l
                        .notes
                        .iter()
                        .map(|n| format!("a repair would keep going: {n}"))
                        .collect();
                    r
                }
                Err(e) => {
                    let sb = crate::format::superblock::choose(open::read_slots(device).await?)?;
                    CheckReport {
                        uuid: sb.uuid,
                        name: sb.name,
                        lvols: 0,
                        total_data_clusters: 0,
                        used_clusters: 0,
                        reserved_clusters: 0,
                        quarantined_clusters: 0,
                        free_clusters: 0,
                        journal_batches: 0,
                        journal_records: 0,
                        problems: Vec::new(),
                        notes: vec![format!("a repair cannot help: {}", open::detail(&e))],
                    }
                }
            };
            r.problems.insert(0, why);
            Ok(r)
        }
        Err(other) => Err(other),
    }
}

/// Repairs the lvstore on a device that is not loaded (see the module docs) and checks it
/// again. Refused when the salvaged state itself breaks an invariant (nothing is written then).
pub async fn repair_device(device: Device) -> Result<RepairReport, LvolError> {
    let l = open::read_metadata(&device, Mode::Salvage).await?;
    let problems = l.state.verify(l.sb.max_lvols);
    if !problems.is_empty() {
        return Err(LvolError::corrupt(format!(
            "the salvaged metadata is still inconsistent, nothing was written: {}",
            problems.join("; ")
        )));
    }
    let changes = l.notes.clone();
    let md = std::sync::Arc::new(open::into_store(device.clone(), l));
    md.checkpoint().await?;
    device.flush().await?;
    drop(md);
    let after = check_device(&device).await?;
    Ok(RepairReport { changes, after })
}

/// Bytes at the start of `device` that hold the lvstore's metadata (superblocks, checkpoint
/// slots, journal): what a backup before a repair must save.
pub async fn metadata_bytes(device: &Device) -> Result<u64, LvolError> {
    let sb = crate::format::superblock::choose(open::read_slots(device).await?)?;
    Ok(sb.first_data_cluster * sb.cluster_size)
}
