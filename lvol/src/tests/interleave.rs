//! Seeded random-schedule exploration of the lifecycle operations together (issue 14 §3):
//! delete, listing, snapshot, clone, inflate, decouple, resize, I/O, a metrics-style scrape
//! and, in some schedules, lvstore destroy or unload, all on one lvstore, checking the
//! lifecycle invariants (`lvol/LIFECYCLE.md`) on every schedule.
//!
//! loom and shuttle instrument only their own primitives; the real code here runs on tokio,
//! `DashMap` and `parking_lot`, so they cannot drive it. This applies their random scheduler's
//! idea at the await points instead: one current-thread runtime (its scheduling is
//! deterministic), a device that yields before and after every operation (so every device
//! access is an interleaving point), and actors whose next step and number of yields between
//! steps come from the seed. A seed is one schedule, replayable with
//! `LAMINA_INTERLEAVE_SEED=<n>`; `LAMINA_INTERLEAVE_SEEDS` scales the count (default 200).
//!
//! Checked on every schedule: every listing is one view (`seed::check_references`) and names
//! no lvol whose delete had returned (invariants 1, 3); a scrape through handles gets each
//! lvol's properties or `Deleted`/`Unloaded`, never anything else; acknowledged writes read
//! back; after a destroy returned the device is never written again, and after an unload the
//! store loads with no deleted lvol back (4, 3); without either, the settled store checks
//! consistent with nothing reserved or quarantined (2), and again after unload and load.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;
use uuid::Uuid;

use super::seed::check_references;
use super::support::*;
use crate::device::{Device, FaultDevice};
use crate::{Lvol, LvolError, LvolStore, LvstoreOptions, OpenMode, Progress, Registry};

const STEPS: usize = 24;

/// xorshift64*: small, seedable, good enough to pick schedules.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What the actors share: the store, what was deleted, and counters for the report.
struct World {
    store: LvolStore,
    /// UUIDs whose delete returned Ok: no later listing may name them.
    deleted: Mutex<HashSet<Uuid>>,
    listings: Mutex<u64>,
    steps: Mutex<u64>,
}

async fn pause(rng: &mut Rng) {
    for _ in 0..rng.below(4) {
        tokio::task::yield_now().await;
    }
}

fn pick(store: &LvolStore, rng: &mut Rng, want: impl Fn(&Lvol) -> bool) -> Option<Lvol> {
    let mut all: Vec<Lvol> = store.lvols().into_iter().filter(|l| want(l)).collect();
    // By name: UUIDs are random, names are the schedule's own, so a seed replays.
    all.sort_by_key(|l| l.name().unwrap_or_default());
    if all.is_empty() {
        return None;
    }
    let i = usize::try_from(rng.below(all.len() as u64)).unwrap_or(0);
    Some(all.swap_remove(i))
}

/// Errors an operation may answer while others run: anything else fails the schedule.
fn expected(e: &LvolError) -> bool {
    matches!(
        e,
        LvolError::Busy(_)
            | LvolError::HasClones(_)
            | LvolError::Deleted
            | LvolError::Unloaded
            | LvolError::NotFound(_)
            | LvolError::Exists(_)
            | LvolError::ReadOnly
            | LvolError::NoSpace { .. }
            | LvolError::InvalidArgument(_)
    )
}

fn accept<T>(what: &str, seed: u64, r: Result<T, LvolError>) -> Option<T> {
    if std::env::var_os("LAMINA_INTERLEAVE_TRACE").is_some() {
        eprintln!("seed {seed}: {what}: {:?}", r.as_ref().map(|_| ()));
    }
    match r {
        Ok(v) => Some(v),
        Err(e) if expected(&e) => None,
        Err(e) => panic!("seed {seed}: {what}: unexpected error {e}"),
    }
}

/// Management: create, snapshot, clone, inflate, decouple, resize, delete.
async fn manager(w: Arc<World>, seed: u64, actor: u64) {
    let mut rng = Rng::new(seed * 31 + actor);
    for step in 0..STEPS {
        pause(&mut rng).await;
        *w.steps.lock() += 1;
        let s = &w.store;
        let name = format!("m{actor}x{step}");
        match rng.below(7) {
            0 => {
                let opts = if rng.below(2) == 0 { thin() } else { thick() };
                let _ = accept(
                    &format!("create {name}"),
                    seed,
                    s.create_lvol(&name, 2 * MIB, &opts).await,
                );
            }
            1 => {
                if let Some(l) = pick(s, &mut rng, |l| l.is_read_only() == Ok(false)) {
                    let _ = accept(
                        &format!("snapshot {} as {name}", l.name().unwrap_or_default()),
                        seed,
                        l.snapshot(&name).await,
                    );
                }
            }
            2 => {
                if let Some(l) = pick(s, &mut rng, |l| l.is_read_only() == Ok(true)) {
                    let _ = accept(
                        &format!("clone {} as {name}", l.name().unwrap_or_default()),
                        seed,
                        l.create_clone(&name).await,
                    );
                }
            }
            3 => {
                if let Some(l) = pick(s, &mut rng, |l| l.is_read_only() == Ok(false)) {
                    let _ = accept(
                        &format!("inflate {}", l.name().unwrap_or_default()),
                        seed,
                        l.inflate(&Progress::new()).await,
                    );
                }
            }
            4 => {
                if let Some(l) = pick(s, &mut rng, |l| l.is_read_only() == Ok(false)) {
                    let _ = accept(
                        &format!("decouple {}", l.name().unwrap_or_default()),
                        seed,
                        l.decouple_parent(&Progress::new()).await,
                    );
                }
            }
            5 => {
                if let Some(l) = pick(s, &mut rng, |l| l.is_read_only() == Ok(false)) {
                    let size = (1 + rng.below(3)) * MIB;
                    let _ = accept(
                        &format!("resize {} to {size}", l.name().unwrap_or_default()),
                        seed,
                        l.resize(size).await,
                    );
                }
            }
            _ => {
                if let Some(l) = pick(s, &mut rng, |_| true) {
                    let uuid = l.uuid();
                    if accept(
                        &format!("delete {}", l.name().unwrap_or_default()),
                        seed,
                        l.delete(&Progress::new()).await,
                    )
                    .is_some()
                    {
                        w.deleted.lock().insert(uuid);
                    }
                }
            }
        }
    }
}

/// Listings and a scrape through handles, checked each time.
async fn lister(w: Arc<World>, seed: u64) {
    let mut rng = Rng::new(seed * 31 + 7);
    for _ in 0..STEPS * 2 {
        pause(&mut rng).await;
        // Deletes that returned before this listing started must not be in it.
        let gone: HashSet<Uuid> = w.deleted.lock().clone();
        let listed = w.store.list_lvols();
        check_references(&listed);
        for i in &listed {
            assert!(
                !gone.contains(&i.uuid),
                "seed {seed}: a listing names {} after its delete returned",
                i.alias
            );
        }
        // The scrape: every handle answers its properties, or that it is gone.
        for l in w.store.lvols() {
            match l.info() {
                Ok(i) => assert!(i.num_allocated_clusters <= i.num_clusters, "{i:?}"),
                Err(LvolError::Deleted | LvolError::Unloaded) => {}
                Err(e) => panic!("seed {seed}: scrape: unexpected error {e}"),
            }
        }
        let _ = w.store.info();
        *w.listings.lock() += 1;
    }
}

/// I/O on a descriptor that delete may close: 4 KiB writes at 4 KiB-aligned places in the
/// first MiB (resize never goes below 1 MiB), each read back later while the lvol lives.
async fn io(w: Arc<World>, seed: u64, lvol: Lvol) {
    let mut rng = Rng::new(seed * 31 + 11);
    let Ok(d) = lvol.open(OpenMode::ForceClosable) else {
        return;
    };
    let mut written: HashMap<u64, u64> = HashMap::new();
    for step in 0..STEPS as u64 {
        pause(&mut rng).await;
        *w.steps.lock() += 1;
        let page = rng.below(MIB / 4096);
        let v = seed * 1000 + step;
        match d.write(page * 4096, pattern(v, 4096), false).await {
            Ok(()) => {
                written.insert(page, v);
            }
            Err(LvolError::Deleted | LvolError::Unloaded | LvolError::NoSpace { .. }) => return,
            Err(e) => panic!("seed {seed}: write: {e}"),
        }
        let mut pages: Vec<_> = written.iter().map(|(p, v)| (*p, *v)).collect();
        pages.sort_unstable();
        let pick = usize::try_from(rng.below(pages.len() as u64)).unwrap_or(0);
        let Some(&(page, v)) = pages.get(pick) else {
            continue;
        };
        let mut buf = bytes::BytesMut::new();
        match d.read(page * 4096, 4096, &mut buf).await {
            Ok(()) => assert_eq!(
                &buf[..],
                &pattern(v, 4096)[..],
                "seed {seed}: page {page} lost its write"
            ),
            Err(LvolError::Deleted | LvolError::Unloaded) => return,
            Err(e) => panic!("seed {seed}: read: {e}"),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Teardown {
    None,
    Destroy,
    Unload,
}

async fn one_schedule(seed: u64) -> (u64, u64, Teardown) {
    let dev = FaultDevice::new(48 * MIB, 512).unwrap();
    let reg = Registry::new();
    let opts = LvstoreOptions {
        clear_method: crate::ClearMethod::None,
        ..small_opts()
    };
    let store = reg
        .create_lvstore(Device::Fault(dev.clone()), "f0", "lvs", &opts)
        .await
        .unwrap();
    let base = store.create_lvol("base", 2 * MIB, &thin()).await.unwrap();
    {
        let d = base.open(OpenMode::Shared).unwrap();
        d.write(0, pattern(seed, 8192), false).await.unwrap();
    }
    let snap = base.snapshot("basesnap").await.unwrap();
    let _clone = snap.create_clone("baseclone").await.unwrap();
    dev.set_yielding(true);
    let w = Arc::new(World {
        store: store.clone(),
        deleted: Mutex::new(HashSet::new()),
        listings: Mutex::new(0),
        steps: Mutex::new(0),
    });
    let mut rng = Rng::new(seed);
    let teardown = match rng.below(4) {
        0 => Teardown::Destroy,
        1 => Teardown::Unload,
        _ => Teardown::None,
    };
    let mut tasks = vec![
        tokio::spawn(manager(Arc::clone(&w), seed, 1)),
        tokio::spawn(manager(Arc::clone(&w), seed, 2)),
        tokio::spawn(lister(Arc::clone(&w), seed)),
        tokio::spawn(io(Arc::clone(&w), seed, base.clone())),
    ];
    // The teardown, if any, at a point of the schedule the seed picks.
    let mut after_teardown = None;
    if !matches!(teardown, Teardown::None) {
        for _ in 0..rng.below(200) {
            tokio::task::yield_now().await;
        }
        let r = match teardown {
            Teardown::Destroy => reg.destroy_lvstore(&store).await,
            _ => reg.unload_lvstore(&store).await,
        };
        match r {
            Ok(()) => after_teardown = Some(dev.writes()),
            // An lvol opened by a descriptor that did not agree to be closed: the actors'
            // descriptors are force-closable, so only the I/O actor's open can say Busy.
            Err(LvolError::Busy(_)) => {}
            Err(e) => panic!("seed {seed}: {teardown:?}: {e}"),
        }
    }
    for t in tasks.drain(..) {
        tokio::time::timeout(std::time::Duration::from_mins(1), t)
            .await
            .unwrap_or_else(|_| panic!("seed {seed}: an actor hung"))
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    }
    let listings = *w.listings.lock();
    let steps = *w.steps.lock();
    let deleted = w.deleted.lock().clone();
    if let Some(writes) = after_teardown {
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            dev.writes(),
            writes,
            "seed {seed}: the device was written after {teardown:?} returned"
        );
        if matches!(teardown, Teardown::Unload) {
            dev.set_yielding(false);
            let back = Registry::new()
                .load_lvstore(Device::Fault(dev.clone()), "f0")
                .await
                .unwrap_or_else(|e| panic!("seed {seed}: does not load after unload: {e}"));
            check_loaded(&back, &deleted, seed, "after unload").await;
        }
        return (steps, listings, teardown);
    }
    dev.set_yielding(false);
    let report = store.settle().await;
    assert!(report.is_consistent(), "seed {seed}: {:?}", report.problems);
    assert_eq!(report.reserved_clusters, 0, "seed {seed}: reserved leaked");
    assert_eq!(
        report.quarantined_clusters, 0,
        "seed {seed}: quarantined leaked"
    );
    reg.unload_lvstore(&store).await.unwrap();
    let back = Registry::new()
        .load_lvstore(Device::Fault(dev.clone()), "f0")
        .await
        .unwrap_or_else(|e| panic!("seed {seed}: does not load: {e}"));
    check_loaded(&back, &deleted, seed, "after the schedule").await;
    (steps, listings, teardown)
}

async fn check_loaded(store: &LvolStore, deleted: &HashSet<Uuid>, seed: u64, when: &str) {
    let listed = store.list_lvols();
    check_references(&listed);
    for i in &listed {
        assert!(
            !deleted.contains(&i.uuid),
            "seed {seed}: {} came back {when}",
            i.alias
        );
    }
    let r = store.check().await.unwrap();
    assert!(r.is_consistent(), "seed {seed} {when}: {:?}", r.problems);
}

#[test]
fn random_schedules_keep_the_lifecycle_invariants() {
    let seeds: Vec<u64> = match std::env::var("LAMINA_INTERLEAVE_SEED") {
        Ok(s) => vec![s.parse().expect("LAMINA_INTERLEAVE_SEED is a number")],
        Err(_) => (0..scaled("LAMINA_INTERLEAVE_SEEDS", 200) as u64).collect(),
    };
    let (mut steps, mut listings, mut destroys, mut unloads) = (0, 0, 0, 0);
    for &seed in &seeds {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let (s, l, t) = rt.block_on(one_schedule(seed));
        steps += s;
        listings += l;
        match t {
            Teardown::Destroy => destroys += 1,
            Teardown::Unload => unloads += 1,
            Teardown::None => {}
        }
    }
    eprintln!(
        "interleave: {} schedules, {steps} actor steps, {listings} listings validated, \
         {destroys} with destroy and {unloads} with unload",
        seeds.len()
    );
    assert!(listings > 0 && steps > 0);
}
