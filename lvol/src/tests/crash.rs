//! Crash consistency (issue 3 §2 and §7). A scripted sequence of operations runs on the
//! fault-injecting device, which tears write N+1 and fails everything after it; for every N
//! from 0 to the script's total, the media is taken as a power loss would leave it (only
//! flushed data; everything; every other unflushed write) and loaded again. Checked each time:
//! the load succeeds (or finds no lvstore, only if creation had not finished); the lvols are
//! exactly the state after the last acknowledged management operation or after the one in
//! progress, never a mix; clusters are never owned twice (load verifies this); and every write
//! made durable by a flush or FUA before the fault reads back intact.
//! `LAMINA_CRASH_STRIDE` tests every k-th N only (default 1: all).

use std::collections::{BTreeMap, HashSet};

use bytes::Bytes;
use uuid::Uuid;

use super::support::*;
use crate::device::{CrashMode, Device, FaultDevice, FaultMode};
use crate::{LvolError, LvolStore, OpenMode, Progress, Registry};

const DEVICE: u64 = 16 * MIB;

fn opts() -> crate::LvstoreOptions {
    // A 64 KiB journal (16 blocks) laps every few operations: checkpoints get exercised.
    crate::LvstoreOptions {
        journal_bytes: Some(64 * 1024),
        max_lvols: Some(64),
        ..small_opts()
    }
}

/// What a listing says about one lvol, keyed by name (UUIDs differ between runs).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shape {
    clusters: u64,
    snapshot: bool,
    parent: Option<String>,
}

type State = BTreeMap<String, Shape>;

fn state_of(store: &LvolStore) -> State {
    store
        .list_lvols()
        .into_iter()
        .map(|i| {
            let shape = Shape {
                clusters: i.num_clusters,
                snapshot: i.is_snapshot,
                parent: i.parent.map(|p| p.name),
            };
            (i.name, shape)
        })
        .collect()
}

#[derive(Debug, Default)]
struct Tracker {
    /// State after each acknowledged management operation (index 0: empty lvstore).
    states: Vec<State>,
    /// Writes made durable: (lvol, offset, data).
    durable: Vec<(Uuid, u64, Bytes)>,
    /// Lvols whose delete was issued (they may be gone).
    deleting: HashSet<Uuid>,
    created: bool,
}

impl Tracker {
    fn acked(&mut self, store: &LvolStore) {
        self.states.push(state_of(store));
    }

    fn forget_range(&mut self, lvol: Uuid, offset: u64, len: u64) {
        self.durable
            .retain(|(u, o, d)| !(*u == lvol && *o < offset + len && offset < *o + d.len() as u64));
    }
}

macro_rules! mgmt {
    ($t:expr, $store:expr, $e:expr) => {{
        let v = $e.await?;
        $t.acked($store);
        v
    }};
}

async fn script(dev: &FaultDevice, t: &mut Tracker) -> Result<(), LvolError> {
    let reg = Registry::new();
    let store = reg
        .create_lvstore(Device::Fault(dev.clone()), "f", "lvs", &opts())
        .await?;
    t.created = true;
    t.acked(&store);
    let a = mgmt!(t, &store, store.create_lvol("a", 4 * MIB, &thin()));
    let da = a.open(OpenMode::Shared)?;
    da.write(0, pattern(1, 4096), false).await?;
    da.flush().await?;
    t.durable.push((a.uuid(), 0, pattern(1, 4096)));
    da.write(MIB + 512, pattern(2, 1024), true).await?;
    t.durable.push((a.uuid(), MIB + 512, pattern(2, 1024)));
    let b = mgmt!(t, &store, store.create_lvol("b", 2 * MIB, &thick()));
    let db = b.open(OpenMode::Shared)?;
    db.write(MIB, pattern(3, 8192), false).await?;
    db.flush().await?;
    t.durable.push((b.uuid(), MIB, pattern(3, 8192)));
    let s = mgmt!(t, &store, a.snapshot("s"));
    da.write(8192, pattern(4, 4096), false).await?;
    da.flush().await?;
    t.durable.push((a.uuid(), 8192, pattern(4, 4096)));
    let c = mgmt!(t, &store, s.create_clone("c"));
    let dc = c.open(OpenMode::Shared)?;
    dc.write(2 * MIB, pattern(5, 4096), true).await?;
    t.durable.push((c.uuid(), 2 * MIB, pattern(5, 4096)));
    mgmt!(t, &store, a.rename("a2"));
    mgmt!(t, &store, a.resize(6 * MIB));
    t.forget_range(a.uuid(), MIB, MIB);
    da.deallocate(MIB, MIB).await?;
    da.write(3 * MIB, pattern(6, 4096), false).await?; // never flushed
    drop(db);
    t.deleting.insert(b.uuid());
    mgmt!(t, &store, b.delete(&Progress::new()));
    mgmt!(t, &store, c.inflate(&Progress::new()));
    t.deleting.insert(s.uuid());
    mgmt!(t, &store, s.delete(&Progress::new())); // merges into a2
    da.write(5 * MIB, pattern(7, 4096), true).await?;
    t.durable.push((a.uuid(), 5 * MIB, pattern(7, 4096)));
    // Enough small operations to lap the journal and write checkpoints into both slots.
    let mut live = std::collections::VecDeque::new();
    for i in 0..24 {
        let l = mgmt!(t, &store, store.create_lvol(&format!("t{i}"), MIB, &thin()));
        let d = l.open(OpenMode::Shared)?;
        d.write(0, pattern(100 + i, 512), i.is_multiple_of(4))
            .await?;
        if i.is_multiple_of(4) {
            t.durable.push((l.uuid(), 0, pattern(100 + i, 512)));
        }
        drop(d);
        live.push_back(l);
        if live.len() > 2 {
            let old = live.pop_front().expect("three live lvols");
            t.deleting.insert(old.uuid());
            mgmt!(t, &store, old.delete(&Progress::new()));
        }
    }
    t.forget_range(c.uuid(), 0, MIB);
    dc.write_zeroes(0, MIB, true).await?;
    t.durable.push((c.uuid(), 0, Bytes::from(vec![0u8; 4096])));
    mgmt!(t, &store, c.set_read_only());
    Ok(())
}

async fn verify(image: Vec<u8>, t: &Tracker, golden: &[State], n: u64, mode: CrashMode) {
    let dev = FaultDevice::from_image(image, 512);
    let store = match Registry::new().load_lvstore(Device::Fault(dev), "f").await {
        Ok(s) => s,
        // A crash inside lvstore creation: no lvstore, or a torn first superblock that is
        // refused as damaged (never a half-made lvstore).
        Err(LvolError::NoLvstore | LvolError::Corrupt(_)) if !t.created => return,
        Err(e) => panic!("N={n} {mode:?}: load failed: {e}"),
    };
    let got = state_of(&store);
    let k = t.states.len();
    let ok = [k.checked_sub(1), Some(k)]
        .into_iter()
        .flatten()
        .any(|i| golden.get(i) == Some(&got));
    assert!(
        ok,
        "N={n} {mode:?}: state after {k} acknowledged ops is {got:?}"
    );
    for (uuid, offset, data) in &t.durable {
        let lvol = match store.lvol_by_uuid(uuid) {
            Ok(l) => l,
            Err(_) if t.deleting.contains(uuid) => continue,
            Err(e) => panic!("N={n} {mode:?}: durable lvol {uuid} missing: {e}"),
        };
        let d = lvol.open(OpenMode::Shared).unwrap();
        let got = read(&d, *offset, data.len()).await;
        assert!(
            got == data.to_vec(),
            "N={n} {mode:?}: flushed write at {offset} of {uuid} lost"
        );
    }
    let info = store.info().unwrap();
    let allocated: u64 = store
        .list_lvols()
        .iter()
        .map(|i| i.num_allocated_clusters)
        .sum();
    assert_eq!(
        info.free_clusters + allocated,
        info.total_data_clusters,
        "N={n}: cluster leak"
    );
}

#[tokio::test]
async fn every_crash_point_recovers_a_consistent_state() {
    let golden_dev = FaultDevice::new(DEVICE, 512).unwrap();
    let mut golden = Tracker::default();
    script(&golden_dev, &mut golden).await.unwrap();
    let total = golden_dev.writes();
    assert!(
        total > 150,
        "the script should exercise many writes, got {total}"
    );
    let stride = scaled("LAMINA_CRASH_STRIDE", 1) as u64;
    let mut n = 0;
    while n <= total {
        let dev = FaultDevice::new(DEVICE, 512).unwrap();
        dev.fail_after(n, FaultMode::Error);
        let mut t = Tracker::default();
        let r = script(&dev, &mut t).await;
        assert!(
            r.is_err() || n >= total,
            "N={n}: the script should hit the fault"
        );
        for mode in [
            CrashMode::LoseUnflushed,
            CrashMode::KeepAll,
            CrashMode::KeepAlternate,
        ] {
            verify(dev.crash_image(mode), &t, &golden.states, n, mode).await;
        }
        n += stride;
    }
}

#[tokio::test]
async fn a_lying_device_never_makes_load_fail_or_double_own() {
    // Writes silently dropped after N: durability is void, but loading must still give a
    // structurally valid state (it verifies cluster ownership) or refuse cleanly.
    let golden_dev = FaultDevice::new(DEVICE, 512).unwrap();
    script(&golden_dev, &mut Tracker::default()).await.unwrap();
    let total = golden_dev.writes();
    let stride = scaled("LAMINA_CRASH_STRIDE", 7) as u64;
    let mut n = 0;
    while n <= total {
        let dev = FaultDevice::new(DEVICE, 512).unwrap();
        dev.fail_after(n, FaultMode::Drop);
        let _ = script(&dev, &mut Tracker::default()).await;
        let image = dev.crash_image(CrashMode::KeepAll);
        match Registry::new()
            .load_lvstore(Device::Fault(FaultDevice::from_image(image, 512)), "f")
            .await
        {
            Ok(store) => {
                let info = store.info().unwrap();
                let allocated: u64 = store
                    .list_lvols()
                    .iter()
                    .map(|i| i.num_allocated_clusters)
                    .sum();
                assert_eq!(info.free_clusters + allocated, info.total_data_clusters);
            }
            Err(LvolError::NoLvstore | LvolError::Corrupt(_)) => {}
            Err(e) => panic!("N={n}: unexpected load error {e}"),
        }
        n += stride;
    }
}
