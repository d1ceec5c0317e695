//! Cancellation safety (issue 20 §1): every operation that changes persistent or shared state,
//! dropped at every await point.
//!
//! Each case prepares an lvstore on a fault device that yields before and after every device
//! operation, starts one operation, polls it `k` times and drops it, for every `k` until the
//! operation completes within `k` polls. After each drop the lvstore must: account for every
//! cluster once its detached work is done (nothing left reserved or quarantined), pass the
//! online check (memory and media agree), still read back every acknowledged write outside the
//! dropped operation's range, keep serving writes, and load again from the media (as after a
//! crash) into a state that passes the offline check.

use std::future::Future;
use std::task::Poll;

use bytes::Bytes;

use super::support::*;
use crate::device::{CrashMode, Device, FaultDevice};
use crate::{LvolDesc, LvolError, LvolStore, OpenMode, Progress, Registry, check_device};

/// Polls `fut` at most `polls` times, letting other tasks run between polls; its output if it
/// finished.
async fn poll_at_most<F: Future>(fut: F, polls: usize) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    for _ in 0..polls {
        let r = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
        if let Poll::Ready(v) = r {
            return Some(v);
        }
        tokio::task::yield_now().await;
    }
    None
}

const CLUSTER: u64 = MIB;
/// Acknowledged data every case keeps: 4 KiB at the start of clusters 0 and 2 of `vol`.
const KEPT: [u64; 2] = [0, 2 * CLUSTER];

struct Setup {
    reg: Registry,
    store: LvolStore,
    dev: FaultDevice,
    desc: LvolDesc,
}

async fn setup() -> Setup {
    let dev = FaultDevice::new(16 * MIB, 512).unwrap();
    let reg = Registry::new();
    let store = reg
        .create_lvstore(Device::Fault(dev.clone()), "f0", "lvs", &small_opts())
        .await
        .unwrap();
    let vol = store.create_lvol("vol", 4 * MIB, &thin()).await.unwrap();
    let other = store.create_lvol("other", 2 * MIB, &thin()).await.unwrap();
    let desc = vol.open(OpenMode::Export).unwrap();
    for (i, at) in KEPT.iter().enumerate() {
        desc.write(*at, pattern(i as u64, 4096), false)
            .await
            .unwrap();
    }
    let o = other.open(OpenMode::Shared).unwrap();
    o.write(0, pattern(9, 4096), false).await.unwrap();
    drop(o);
    desc.flush().await.unwrap();
    Setup {
        reg,
        store,
        dev,
        desc,
    }
}

#[derive(Debug, Clone, Copy)]
enum Case {
    FirstWrite,
    FirstWriteFua,
    CopyOnWrite,
    Deallocate,
    ZeroPartialAllocated,
    ZeroPartialInClone,
    FlushWithPending,
    Snapshot,
    Clone,
    GrowThin,
    GrowThick,
    Shrink,
    Delete,
    DeleteSnapshot,
    Inflate,
    Decouple,
    CreateThick,
    Rename,
    SetReadOnly,
    RenameLvstore,
}

const CASES: [Case; 20] = [
    Case::FirstWrite,
    Case::FirstWriteFua,
    Case::CopyOnWrite,
    Case::Deallocate,
    Case::ZeroPartialAllocated,
    Case::ZeroPartialInClone,
    Case::FlushWithPending,
    Case::Snapshot,
    Case::Clone,
    Case::GrowThin,
    Case::GrowThick,
    Case::Shrink,
    Case::Delete,
    Case::DeleteSnapshot,
    Case::Inflate,
    Case::Decouple,
    Case::CreateThick,
    Case::Rename,
    Case::SetReadOnly,
    Case::RenameLvstore,
];

impl Case {
    /// Whether the case starts from `vol` snapshotted (so `vol` is a clone of `snap`).
    fn needs_snapshot(self) -> bool {
        matches!(
            self,
            Self::CopyOnWrite
                | Self::ZeroPartialInClone
                | Self::Clone
                | Self::DeleteSnapshot
                | Self::Inflate
                | Self::Decouple
        )
    }

    /// The byte range of `vol` the operation may change (its acknowledged data is not
    /// checked there).
    fn touches(self) -> Option<(u64, u64)> {
        match self {
            Self::Deallocate => Some((0, CLUSTER)),
            Self::ZeroPartialAllocated | Self::ZeroPartialInClone => Some((0, 8192)),
            Self::CopyOnWrite => Some((0, 4096)),
            _ => None,
        }
    }

    async fn run(self, s: &Setup) -> Result<(), LvolError> {
        let vol = s.desc.lvol().clone();
        match self {
            Self::FirstWrite => s.desc.write(CLUSTER + 4096, pattern(5, 8192), false).await,
            Self::FirstWriteFua => s.desc.write(3 * CLUSTER, pattern(6, 4096), true).await,
            Self::CopyOnWrite => s.desc.write(0, pattern(7, 4096), false).await,
            Self::Deallocate => s.desc.deallocate(0, CLUSTER).await,
            Self::ZeroPartialAllocated | Self::ZeroPartialInClone => {
                s.desc.write_zeroes(0, 8192, false).await
            }
            Self::FlushWithPending => s.desc.flush().await,
            Self::Snapshot => vol.snapshot("snap").await.map(drop),
            Self::Clone => s.store.lvol("snap")?.create_clone("clone").await.map(drop),
            Self::GrowThin => s.store.lvol("other")?.resize(5 * MIB).await,
            Self::GrowThick => s.store.lvol("thick")?.resize(3 * MIB).await,
            Self::Shrink => s.store.lvol("other")?.resize(MIB).await,
            Self::Delete => s.store.lvol("other")?.delete(&Progress::new()).await,
            Self::DeleteSnapshot => s.store.lvol("snap")?.delete(&Progress::new()).await,
            Self::Inflate => vol.inflate(&Progress::new()).await,
            Self::Decouple => vol.decouple_parent(&Progress::new()).await,
            Self::CreateThick => s
                .store
                .create_lvol("new", 2 * MIB, &thick())
                .await
                .map(drop),
            Self::Rename => s.store.lvol("other")?.rename("renamed").await,
            Self::SetReadOnly => s.store.lvol("other")?.set_read_only().await,
            Self::RenameLvstore => s.reg.rename_lvstore(&s.store, "lvs2").await,
        }
    }

    async fn prepare(self, s: &Setup) {
        if self.needs_snapshot() {
            s.desc.lvol().snapshot("snap").await.unwrap();
        }
        match self {
            Self::FlushWithPending => {
                // Pending records for the flush to write: a release and a first write.
                s.desc.deallocate(0, CLUSTER).await.unwrap();
                s.desc.write(0, pattern(0, 4096), false).await.unwrap();
            }
            Self::GrowThick => {
                s.store.create_lvol("thick", MIB, &thick()).await.unwrap();
            }
            // ZeroPartialInClone: cluster 0 of the clone is unallocated and its parent has
            // data, so zeroing part of it allocates and fills the rest from the parent.
            _ => {}
        }
    }
}

async fn check_kept(desc: &LvolDesc, skip: Option<(u64, u64)>, what: &str) {
    for (i, at) in KEPT.iter().enumerate() {
        if skip.is_some_and(|(s, l)| *at < s + l && s < *at + 4096) {
            continue;
        }
        assert_eq!(
            read(desc, *at, 4096).await,
            pattern(i as u64, 4096).to_vec(),
            "{what}: acknowledged data at {at} lost"
        );
    }
}

async fn check_after_drop(case: Case, s: &Setup, k: usize) {
    let what = format!("{case:?} dropped after {k} polls");
    let report = s.store.settle().await;
    assert!(report.is_consistent(), "{what}: {:?}", report.problems);
    assert_eq!(
        report.reserved_clusters, 0,
        "{what}: clusters left reserved"
    );
    assert_eq!(
        report.quarantined_clusters, 0,
        "{what}: clusters left quarantined"
    );
    check_kept(&s.desc, case.touches(), &what).await;
    // Still serving: a write and its read-back.
    let fresh = Bytes::from(vec![0xa5; 4096]);
    s.desc.write(CLUSTER, fresh.clone(), true).await.unwrap();
    assert_eq!(read(&s.desc, CLUSTER, 4096).await, fresh.to_vec(), "{what}");
    // Loads again from the media, consistent, with the acknowledged data.
    for mode in [CrashMode::LoseUnflushed, CrashMode::KeepAll] {
        let image = FaultDevice::from_image(s.dev.crash_image(mode), 512);
        let offline = check_device(&Device::Fault(image.clone())).await.unwrap();
        assert!(
            offline.is_consistent(),
            "{what} ({mode:?}): {:?}",
            offline.problems
        );
        let reg = Registry::new();
        let back = reg
            .load_lvstore(Device::Fault(image), "f0")
            .await
            .unwrap_or_else(|e| panic!("{what} ({mode:?}): the lvstore no longer loads: {e}"));
        let d = back.lvol("vol").unwrap().open(OpenMode::Shared).unwrap();
        check_kept(&d, case.touches(), &what).await;
        assert_eq!(read(&d, CLUSTER, 4096).await, fresh.to_vec(), "{what}");
    }
}

#[tokio::test]
async fn every_state_change_survives_being_dropped_at_every_await() {
    let mut total = 0;
    for case in CASES {
        let mut k = 0;
        loop {
            let s = setup().await;
            case.prepare(&s).await;
            s.dev.set_yielding(true);
            let finished = poll_at_most(case.run(&s), k).await;
            s.dev.set_yielding(false);
            check_after_drop(case, &s, k).await;
            total += 1;
            if let Some(r) = finished {
                r.unwrap_or_else(|e| panic!("{case:?} failed undisturbed: {e}"));
                break;
            }
            k += 1;
            assert!(k < 2000, "{case:?} never finished");
        }
    }
    eprintln!(
        "cancellation: {total} drops checked over {} operations",
        CASES.len()
    );
}
