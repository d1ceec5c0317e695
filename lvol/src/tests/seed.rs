//! The seed scenario (issue 3 §7; SPDK #3505, Mayastor #2055): lvols — thin, with I/O in
//! flight, with snapshots and clones — are deleted over and over while 8 threads list lvols
//! and lvstores and read every property in a tight loop. Zero panics, and every listing is
//! internally consistent. `LAMINA_SEED_ITERATIONS` scales it (default 2000 iterations, three
//! deletes each), next to 32 lvols that stay, so listings are not trivially short.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::support::*;
use crate::{LvolError, LvolInfo, OpenMode, Progress, Registry};

/// What one lvol's properties must satisfy however they were read: fields read from different
/// places (its data, its lvstore, the metadata) agree with each other. A torn read (say, the
/// name of one generation and the map of another) breaks one of these.
fn check_info(i: &LvolInfo, stores: &HashMap<uuid::Uuid, String>) {
    assert_eq!(
        stores.get(&i.lvs_uuid),
        Some(&i.lvs_name),
        "{}: lvstore name and UUID disagree",
        i.alias
    );
    assert!(i.alias.ends_with(&format!("/{}", i.name)), "{i:?}");
    assert!(i.num_allocated_clusters <= i.num_clusters, "{i:?}");
    assert_eq!(i.is_clone, i.parent.is_some(), "{i:?}");
    assert!(!i.is_snapshot || i.is_read_only, "{i:?}");
    assert!(i.clones.is_empty() || i.is_snapshot, "{i:?}");
    if !i.is_thin_provisioned && !i.is_clone {
        assert_eq!(i.num_allocated_clusters, i.num_clusters, "{i:?}");
    }
    // The scenario names every lvol it creates after its role; any other name is garbage.
    assert!(
        ["keep", "v", "s", "c"]
            .iter()
            .any(|p| i.name.starts_with(p)),
        "unexpected name {:?}",
        i.name
    );
    assert!(!i.is_esnap_clone && !i.is_degraded);
}

/// One listing is one view: every parent and clone it names is in it, the two directions
/// agree (a clone's parent lists it among its clones, and the other way round), and no lvol
/// or name appears twice.
pub(super) fn check_references(listed: &[LvolInfo]) {
    let by_uuid: HashMap<uuid::Uuid, &LvolInfo> = listed.iter().map(|i| (i.uuid, i)).collect();
    assert_eq!(by_uuid.len(), listed.len(), "an lvol is listed twice");
    let names: std::collections::HashSet<&str> = listed.iter().map(|i| i.alias.as_str()).collect();
    assert_eq!(names.len(), listed.len(), "a name is listed twice");
    for i in listed {
        for r in i.parent.iter().chain(&i.clones) {
            let Some(other) = by_uuid.get(&r.uuid) else {
                panic!(
                    "{} names {} ({}), which the same listing does not hold",
                    i.alias, r.name, r.uuid
                )
            };
            assert_eq!(
                other.name, r.name,
                "{} names {} by another name",
                i.alias, r.uuid
            );
        }
        if let Some(p) = &i.parent {
            assert!(
                by_uuid[&p.uuid].clones.iter().any(|c| c.uuid == i.uuid),
                "{}'s parent {} does not list it as a clone",
                i.alias,
                p.name
            );
        }
        for c in &i.clones {
            assert_eq!(
                by_uuid[&c.uuid].parent.as_ref().map(|p| p.uuid),
                Some(i.uuid),
                "{} lists {} as a clone, whose parent is another",
                i.alias,
                c.name
            );
        }
    }
}

/// One lister: everything a JSON-RPC listing or a metrics scrape reads.
fn lister(reg: &Registry, stop: &AtomicBool, count: &AtomicU64) {
    while !stop.load(Ordering::Relaxed) {
        let mut stores = HashMap::new();
        for s in reg.list_lvstores() {
            assert!(s.free_clusters <= s.total_data_clusters, "{s:?}");
            stores.insert(s.uuid, s.name);
        }
        let listed = reg.list_lvols(None);
        for i in &listed {
            check_info(i, &stores);
        }
        check_references(&listed);
        for store in reg.lvstores() {
            for l in store.lvols() {
                match l.info() {
                    Ok(i) => check_info(&i, &stores),
                    Err(LvolError::Deleted) => {}
                    Err(e) => panic!("unexpected listing error {e}"),
                }
                let _ = (
                    l.num_allocated_clusters(),
                    l.size_bytes(),
                    l.is_read_only(),
                    l.name(),
                );
            }
        }
        count.fetch_add(1, Ordering::Relaxed);
    }
}

/// I/O on a force-closable descriptor until the lvol is deleted under it; `started` fires
/// after the first I/O completes, so the caller deletes with I/O already flowing (whatever the
/// scheduler does on a loaded machine).
async fn io_until_deleted(
    desc: crate::LvolDesc,
    seed: u64,
    started: tokio::sync::oneshot::Sender<()>,
) -> u64 {
    let mut started = Some(started);
    let mut i = 0u64;
    loop {
        let off = (i % 16) * 4096;
        let r = if i.is_multiple_of(3) {
            let mut buf = bytes::BytesMut::new();
            desc.read(off, 4096, &mut buf).await
        } else {
            desc.write(off, pattern(seed + i, 4096), false).await
        };
        match r {
            Ok(()) => {
                i += 1;
                if let Some(tx) = started.take() {
                    let _ = tx.send(());
                }
            }
            Err(LvolError::Deleted) => return i,
            Err(e) => panic!("I/O failed with {e} instead of Deleted"),
        }
        // Yield every time so the deleting task gets its turn on a single-threaded runtime.
        tokio::task::yield_now().await;
    }
}

async fn one_round(store: &crate::LvolStore, round: u64) -> u64 {
    let name = format!("v{round}");
    let l = store.create_lvol(&name, 2 * MIB, &thin()).await.unwrap();
    let d = l.open(OpenMode::Shared).unwrap();
    d.write(0, pattern(round, 8192), false).await.unwrap();
    drop(d);
    let s = l.snapshot(&format!("s{round}")).await.unwrap();
    let c = s.create_clone(&format!("c{round}")).await.unwrap();
    let (l_started, l_rx) = tokio::sync::oneshot::channel();
    let (c_started, c_rx) = tokio::sync::oneshot::channel();
    let io_l = tokio::spawn(io_until_deleted(
        l.open(OpenMode::ForceClosable).unwrap(),
        round,
        l_started,
    ));
    let io_c = tokio::spawn(io_until_deleted(
        c.open(OpenMode::ForceClosable).unwrap(),
        round + 1,
        c_started,
    ));
    l_rx.await.unwrap();
    c_rx.await.unwrap();
    let p = Progress::new();
    match round % 3 {
        0 => {
            c.delete(&p).await.unwrap();
            s.delete(&p).await.unwrap(); // merges into l
            l.delete(&p).await.unwrap();
        }
        1 => {
            c.delete(&p).await.unwrap();
            l.delete(&p).await.unwrap();
            s.delete(&p).await.unwrap(); // no clones left
        }
        _ => {
            assert!(matches!(s.delete(&p).await, Err(LvolError::HasClones(2))));
            l.delete(&p).await.unwrap();
            s.delete(&p).await.unwrap(); // merges into c
            c.delete(&p).await.unwrap();
        }
    }
    let ios = io_l.await.unwrap() + io_c.await.unwrap();
    assert!(matches!(l.info(), Err(LvolError::Deleted)));
    ios
}

#[test]
fn seed_scenario_listings_race_deletes() {
    let rounds = scaled("LAMINA_SEED_ITERATIONS", 2000) as u64;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (reg, store, _) = rt.block_on(ram_store(64));
    rt.block_on(async {
        for i in 0..32 {
            store
                .create_lvol(&format!("keep{i}"), MIB, &thin())
                .await
                .unwrap();
        }
    });
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let listers: Vec<_> = (0..8)
        .map(|_| {
            let (reg, stop, count) = (reg.clone(), Arc::clone(&stop), Arc::clone(&count));
            std::thread::spawn(move || lister(&reg, &stop, &count))
        })
        .collect();
    let ios = rt.block_on(async {
        let mut ios = 0;
        for round in 0..rounds {
            ios += one_round(&store, round).await;
        }
        ios
    });
    stop.store(true, Ordering::SeqCst);
    for t in listers {
        t.join().expect("a lister panicked");
    }
    let listings = count.load(Ordering::SeqCst);
    eprintln!(
        "seed scenario: {rounds} rounds, {} deletes, {ios} I/Os racing them, {listings} listings",
        rounds * 3
    );
    assert!(listings > 0);
    assert!(
        ios >= 2 * rounds,
        "I/O must be flowing on both lvols when the deletes start"
    );
    assert_eq!(reg.list_lvols(None).len(), 32);
    let info = store.info().unwrap();
    rt.block_on(store.flush()).unwrap();
    assert_eq!(info.lvol_count, 32);
    // Every cluster came back (parked ones count as free).
    assert_eq!(info.free_clusters, info.total_data_clusters);
}
