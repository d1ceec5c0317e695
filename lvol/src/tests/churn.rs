//! Concurrent churn with restarts (issue 12 §1): random interleavings of writes, deallocates,
//! write-zeroes, flushes, reads, snapshots, snapshot deletes (merges) and resizes from several
//! tasks at once, some of them dropped part-way, on a device that yields around every
//! operation so the tasks interleave at every await. After each round the lvstore settles and
//! must pass the online check with nothing leaked; then, at random, it is unloaded and loaded
//! again, or "crashes" (its media taken as a power loss leaves it) and is loaded from that,
//! and the loaded lvstore must pass the offline check and read back every acknowledged write.
//! A crash image is also taken in the middle of some rounds, with operations in flight: it
//! must load and pass the offline check.
//!
//! Each task owns its own clusters of the shared lvol, so its data is deterministic while the
//! metadata (allocation, release, journal, checkpoints, snapshots) is shared by all.
//! `PROPTEST_CASES` scales it (default 12 cases of up to 6 rounds).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use proptest::prelude::*;

use super::support::*;
use crate::device::{CrashMode, Device, FaultDevice};
use crate::{LvolDesc, LvolStore, OpenMode, Progress, Registry, check_device};

const BLOCK: u64 = 4096;
const CLUSTER_BLOCKS: u64 = MIB / BLOCK;
const TASKS: u64 = 3;
const VOL_CLUSTERS: u64 = 8;
const VOL_BLOCKS: u64 = VOL_CLUSTERS * CLUSTER_BLOCKS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Val {
    Zero,
    Seed(u8),
    /// A dropped operation touched it: either value.
    Unknown,
}

fn block_data(block: u64, seed: u8) -> Bytes {
    pattern((u64::from(seed) << 32) | block, BLOCK as usize)
}

#[derive(Debug, Clone)]
enum TaskOp {
    Write {
        at: u16,
        blocks: u8,
        seed: u8,
        fua: bool,
    },
    Zero {
        at: u16,
        blocks: u8,
    },
    Dealloc {
        cluster: u8,
    },
    Flush,
    Read {
        at: u16,
        blocks: u8,
    },
}

#[derive(Debug, Clone)]
enum Manager {
    Idle,
    Snapshot,
    DeleteOldestSnapshot,
    Grow,
    ShrinkBack,
    CrashImage,
}

#[derive(Debug, Clone, Copy)]
enum End {
    Continue,
    Reload,
    Crash(CrashMode),
}

#[derive(Debug, Clone)]
struct Round {
    tasks: Vec<Vec<(TaskOp, Option<u8>)>>,
    manager: Manager,
    manager_delay: u8,
    end: End,
}

fn task_op() -> impl Strategy<Value = TaskOp> {
    prop_oneof![
        5 => (0u16..512, 1u8..=24, any::<u8>(), any::<bool>())
            .prop_map(|(at, blocks, seed, fua)| TaskOp::Write { at, blocks, seed, fua }),
        2 => (0u16..512, 1u8..=64).prop_map(|(at, blocks)| TaskOp::Zero { at, blocks }),
        2 => (0u8..3).prop_map(|cluster| TaskOp::Dealloc { cluster }),
        1 => Just(TaskOp::Flush),
        2 => (0u16..512, 1u8..=16).prop_map(|(at, blocks)| TaskOp::Read { at, blocks }),
    ]
}

fn round() -> impl Strategy<Value = Round> {
    let ops = prop::collection::vec((task_op(), prop::option::weighted(0.2, 0u8..12)), 1..6);
    let end = prop_oneof![
        3 => Just(End::Continue),
        1 => Just(End::Reload),
        1 => Just(End::Crash(CrashMode::LoseUnflushed)),
        1 => Just(End::Crash(CrashMode::KeepAlternate)),
    ];
    let manager = prop_oneof![
        2 => Just(Manager::Idle),
        2 => Just(Manager::Snapshot),
        1 => Just(Manager::DeleteOldestSnapshot),
        1 => Just(Manager::Grow),
        1 => Just(Manager::ShrinkBack),
        1 => Just(Manager::CrashImage),
    ];
    (
        prop::collection::vec(ops, TASKS as usize),
        manager,
        0u8..40,
        end,
    )
        .prop_map(|(tasks, manager, manager_delay, end)| Round {
            tasks,
            manager,
            manager_delay,
            end,
        })
}

/// The `n`-th of task `t`'s clusters, as a block number; its blocks are `at % (3 clusters)`.
fn owned_block(t: u64, at: u64) -> u64 {
    let owned = VOL_CLUSTERS.div_ceil(TASKS);
    let span = owned * CLUSTER_BLOCKS;
    let at = at % span;
    let cluster = t + TASKS * (at / CLUSTER_BLOCKS);
    cluster * CLUSTER_BLOCKS + at % CLUSTER_BLOCKS
}

/// Blocks `at..at + n` of task `t`, clamped to one cluster and to the lvol.
fn owned_range(t: u64, at: u16, n: u8) -> Option<(u64, u64)> {
    let first = owned_block(t, u64::from(at));
    let end_of_cluster = (first / CLUSTER_BLOCKS + 1) * CLUSTER_BLOCKS;
    let n = u64::from(n).min(end_of_cluster - first);
    (first < VOL_BLOCKS).then_some((first, n))
}

type Model = Arc<Mutex<Vec<Val>>>;

/// Records what an operation on blocks `first..first + n` leaves there: `done` (its result) if
/// it completed and no operation dropped earlier in the round may still be writing there;
/// otherwise unknown. A dropped operation is not cancelled, only no longer waited for: it
/// runs on, unordered with later ones, as a command still in flight would.
fn settle_range(model: &Model, stale: &mut Vec<(u64, u64)>, first: u64, n: u64, done: Option<Val>) {
    let overlaps = stale.iter().any(|&(f, m)| f < first + n && first < f + m);
    let v = match done {
        Some(v) if !overlaps => v,
        _ => Val::Unknown,
    };
    if done.is_none() {
        stale.push((first, n));
    }
    model.lock()[first as usize..(first + n) as usize].fill(v);
}

async fn run_task(desc: Arc<LvolDesc>, model: Model, t: u64, ops: Vec<(TaskOp, Option<u8>)>) {
    let mut stale = Vec::new();
    for (op, drop_after) in ops {
        let polls = drop_after.map_or(usize::MAX, usize::from);
        match op {
            TaskOp::Write {
                at,
                blocks,
                seed,
                fua,
            } => {
                let Some((first, n)) = owned_range(t, at, blocks) else {
                    continue;
                };
                let mut data = BytesMut::new();
                for b in first..first + n {
                    data.extend_from_slice(&block_data(b, seed));
                }
                let fut = desc.write(first * BLOCK, data.freeze(), fua);
                let done = poll_at_most(fut, polls).await;
                let v = done.map(|r| r.map(|()| Val::Seed(seed)).unwrap());
                settle_range(&model, &mut stale, first, n, v);
            }
            TaskOp::Zero { at, blocks } => {
                let Some((first, n)) = owned_range(t, at, blocks) else {
                    continue;
                };
                let done = poll_at_most(desc.write_zeroes(first * BLOCK, n * BLOCK, false), polls);
                let v = done.await.map(|r| r.map(|()| Val::Zero).unwrap());
                settle_range(&model, &mut stale, first, n, v);
            }
            TaskOp::Dealloc { cluster } => {
                let c = t + TASKS * u64::from(cluster);
                if c >= VOL_CLUSTERS {
                    continue;
                }
                let done = poll_at_most(desc.deallocate(c * MIB, MIB), polls).await;
                let v = done.map(|r| r.map(|()| Val::Zero).unwrap());
                settle_range(&model, &mut stale, c * CLUSTER_BLOCKS, CLUSTER_BLOCKS, v);
            }
            TaskOp::Flush => {
                if let Some(r) = poll_at_most(desc.flush(), polls).await {
                    r.unwrap();
                }
            }
            TaskOp::Read { at, blocks } => {
                let Some((first, n)) = owned_range(t, at, blocks) else {
                    continue;
                };
                let mut buf = BytesMut::new();
                desc.read(first * BLOCK, (n * BLOCK) as usize, &mut buf)
                    .await
                    .unwrap();
                let m = model.lock().clone();
                for b in first..first + n {
                    let in_flight = stale.iter().any(|&(f, k)| f <= b && b < f + k);
                    let v = if in_flight {
                        Val::Unknown
                    } else {
                        m[b as usize]
                    };
                    check_block(&buf, b - first, b, v, "read during the round");
                }
            }
        }
    }
}

async fn poll_at_most<F: std::future::Future>(fut: F, polls: usize) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut n = 0;
    loop {
        let r = std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx))).await;
        if let std::task::Poll::Ready(v) = r {
            return Some(v);
        }
        n += 1;
        if n >= polls {
            return None;
        }
        tokio::task::yield_now().await;
    }
}

fn check_block(buf: &[u8], i: u64, block: u64, v: Val, what: &str) {
    let got = &buf[(i * BLOCK) as usize..((i + 1) * BLOCK) as usize];
    match v {
        Val::Unknown => {}
        Val::Zero => assert!(
            got.iter().all(|&x| x == 0),
            "{what}: block {block} not zero"
        ),
        Val::Seed(s) => assert!(
            got == &block_data(block, s)[..],
            "{what}: block {block} wrong"
        ),
    }
}

async fn check_all(desc: &LvolDesc, model: &Model, what: &str) {
    let m = model.lock().clone();
    let mut buf = BytesMut::new();
    desc.read(0, (VOL_BLOCKS * BLOCK) as usize, &mut buf)
        .await
        .unwrap();
    for b in 0..VOL_BLOCKS {
        check_block(&buf, b, b, m[b as usize], what);
    }
}

struct World {
    reg: Registry,
    store: LvolStore,
    dev: FaultDevice,
    desc: Option<Arc<LvolDesc>>,
    snapshots: Vec<String>,
    next_snap: u32,
    grown: bool,
}

impl World {
    fn desc(&self) -> &Arc<LvolDesc> {
        self.desc.as_ref().expect("vol is open")
    }

    async fn reopen(&mut self, dev: FaultDevice) {
        self.reg = Registry::new();
        self.store = self
            .reg
            .load_lvstore(Device::Fault(dev.clone()), "f0")
            .await
            .unwrap();
        self.dev = dev;
        let vol = self.store.lvol("vol").unwrap();
        self.desc = Some(Arc::new(vol.open(OpenMode::Export).unwrap()));
    }
}

async fn manager(
    store: LvolStore,
    w: &mut World,
    m: Manager,
    delay: u8,
    images: &mut Vec<Vec<u8>>,
) {
    for _ in 0..delay {
        tokio::task::yield_now().await;
    }
    let vol = w.desc().lvol().clone();
    match m {
        Manager::Snapshot if w.snapshots.len() < 3 => {
            let name = format!("snap{}", w.next_snap);
            w.next_snap += 1;
            vol.snapshot(&name).await.unwrap();
            w.snapshots.push(name);
        }
        Manager::DeleteOldestSnapshot if !w.snapshots.is_empty() => {
            let name = w.snapshots.remove(0);
            store
                .lvol(&name)
                .unwrap()
                .delete(&Progress::new())
                .await
                .unwrap();
        }
        Manager::Grow if !w.grown => {
            vol.resize((VOL_CLUSTERS + 2) * MIB).await.unwrap();
            w.grown = true;
        }
        Manager::ShrinkBack if w.grown => {
            vol.resize(VOL_CLUSTERS * MIB).await.unwrap();
            w.grown = false;
        }
        Manager::CrashImage => images.push(w.dev.crash_image(CrashMode::KeepAlternate)),
        // Idle, and the changes that do not apply to the lvol's shape now.
        _ => {}
    }
}

async fn check_image(image: Vec<u8>, what: &str) {
    let dev = Device::Fault(FaultDevice::from_image(image, 512));
    let r = check_device(&dev).await.unwrap();
    assert!(r.is_consistent(), "{what}: {:?}", r.problems);
    Registry::new()
        .load_lvstore(dev, "f0")
        .await
        .unwrap_or_else(|e| panic!("{what}: does not load: {e}"));
}

async fn scenario(rounds: Vec<Round>) {
    let dev = FaultDevice::new(24 * MIB, 512).unwrap();
    let opts = crate::LvstoreOptions {
        journal_bytes: Some(64 * 1024), // laps often: checkpoints interleave with the churn
        ..small_opts()
    };
    let reg = Registry::new();
    let store = reg
        .create_lvstore(Device::Fault(dev.clone()), "f0", "lvs", &opts)
        .await
        .unwrap();
    let vol = store
        .create_lvol("vol", VOL_CLUSTERS * MIB, &thin())
        .await
        .unwrap();
    let desc = Arc::new(vol.open(OpenMode::Export).unwrap());
    let mut w = World {
        reg,
        store,
        dev,
        desc: Some(desc),
        snapshots: Vec::new(),
        next_snap: 0,
        grown: false,
    };
    let model: Model = Arc::new(Mutex::new(vec![Val::Zero; VOL_BLOCKS as usize]));
    for (i, r) in rounds.into_iter().enumerate() {
        let what = format!("round {i} ({:?}, {:?})", r.manager, r.end);
        w.dev.set_yielding(true);
        let handles: Vec<_> = r
            .tasks
            .into_iter()
            .enumerate()
            .map(|(t, ops)| tokio::spawn(run_task(w.desc().clone(), model.clone(), t as u64, ops)))
            .collect();
        let mut images = Vec::new();
        let store = w.store.clone();
        manager(store, &mut w, r.manager, r.manager_delay, &mut images).await;
        for h in handles {
            h.await.unwrap();
        }
        w.dev.set_yielding(false);
        let report = w.store.settle().await;
        assert!(report.is_consistent(), "{what}: {:?}", report.problems);
        assert_eq!(
            report.reserved_clusters, 0,
            "{what}: reserved clusters leaked"
        );
        assert_eq!(
            report.quarantined_clusters, 0,
            "{what}: quarantined clusters leaked"
        );
        check_all(w.desc(), &model, &what).await;
        for image in images {
            check_image(image, &format!("{what}: mid-round crash image")).await;
        }
        match r.end {
            End::Continue => {}
            End::Reload => {
                w.desc = None;
                let (reg, store, dev) = (w.reg.clone(), w.store.clone(), w.dev.clone());
                reg.unload_lvstore(&store).await.unwrap();
                w.reopen(dev).await;
            }
            End::Crash(mode) => {
                let image = w.dev.crash_image(mode);
                let dev = FaultDevice::from_image(image, 512);
                let r = check_device(&Device::Fault(dev.clone())).await.unwrap();
                assert!(r.is_consistent(), "{what}: {:?}", r.problems);
                w.reopen(dev).await;
            }
        }
        check_all(w.desc(), &model, &format!("{what} after the restart")).await;
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: scaled("PROPTEST_CASES", 12) as u32,
        ..ProptestConfig::default()
    })]

    #[test]
    fn concurrent_churn_with_restarts_keeps_the_store_loadable(
        rounds in prop::collection::vec(round(), 1..=6)
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(scenario(rounds));
    }
}
