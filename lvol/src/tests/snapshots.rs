//! Snapshots, clones, inflate, decouple and the snapshot deletion rule.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::support::*;
use crate::{LvolError, OpenMode, Progress};

#[tokio::test]
async fn snapshot_keeps_identity_and_freezes_data() {
    let (reg, store, _) = ram_store(64).await;
    let l = store.create_lvol("v", 2 * MIB, &thick()).await.unwrap();
    let d = l.open(OpenMode::Export).unwrap();
    d.write(0, pattern(1, 8192), false).await.unwrap();
    let s = l.snapshot("snap").await.unwrap();
    let li = l.info().unwrap();
    assert_eq!(li.uuid, d.lvol().uuid());
    assert!(li.is_clone && li.is_thin_provisioned && !li.is_snapshot);
    assert_eq!(li.parent.as_ref().unwrap().name, "snap");
    assert_eq!(li.num_allocated_clusters, 0);
    let si = s.info().unwrap();
    assert!(si.is_snapshot && si.is_read_only && !si.is_clone);
    assert_eq!(si.num_allocated_clusters, 2);
    assert_eq!(
        si.clones
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["v"]
    );
    // Writes after the snapshot go to the lvol, copy-on-write; the snapshot is unchanged.
    d.write(4096, pattern(2, 512), false).await.unwrap();
    let mut want = pattern(1, 8192).to_vec();
    want[4096..4608].copy_from_slice(&pattern(2, 512));
    assert_eq!(read(&d, 0, 8192).await, want);
    let sd = s.open(OpenMode::Shared).unwrap();
    assert_eq!(read(&sd, 0, 8192).await, pattern(1, 8192).to_vec());
    assert!(matches!(
        sd.write(0, pattern(0, 512), false).await,
        Err(LvolError::ReadOnly)
    ));
    assert!(matches!(
        s.snapshot("s2").await,
        Err(LvolError::InvalidArgument(_))
    ));
    assert!(matches!(
        l.snapshot("snap").await,
        Err(LvolError::Exists(_))
    ));
    assert_eq!(reg.lvol("lvs/snap").unwrap().uuid(), s.uuid());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_under_concurrent_writes_is_a_prefix() {
    let (_reg, store, _) = ram_store(64).await;
    let l = store.create_lvol("v", MIB, &thin()).await.unwrap();
    let d = Arc::new(l.open(OpenMode::Export).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writer = {
        let (d, stop, progress) = (Arc::clone(&d), Arc::clone(&stop), Arc::clone(&progress));
        tokio::spawn(async move {
            let mut i = 1u64;
            while !stop.load(Ordering::SeqCst) || i < 200 {
                let mut block = vec![0u8; 512];
                block[..8].copy_from_slice(&i.to_le_bytes());
                d.write((i % 64) * 512, bytes::Bytes::from(block), false)
                    .await
                    .unwrap();
                progress.store(i, Ordering::SeqCst);
                i += 1;
            }
            i
        })
    };
    // Snapshot in the middle of the stream: once the writer is well under way.
    while progress.load(Ordering::SeqCst) < 50 {
        tokio::task::yield_now().await;
    }
    let s = l.snapshot("snap").await.unwrap();
    stop.store(true, Ordering::SeqCst);
    let n = writer.await.unwrap();
    let value = |bytes: &[u8]| u64::from_le_bytes(bytes[..8].try_into().unwrap());
    // The lvol holds every write.
    for b in 0..64u64 {
        let last = (1..n).filter(|i| i % 64 == b).max().unwrap_or(0);
        assert_eq!(value(&read(&d, b * 512, 512).await), last, "block {b}");
    }
    // The snapshot holds exactly the writes before some point t.
    let sd = s.open(OpenMode::Shared).unwrap();
    let snap: Vec<u64> = {
        let all = read(&sd, 0, 64 * 512).await;
        (0..64).map(|b| value(&all[b * 512..])).collect()
    };
    let t = *snap.iter().max().unwrap();
    for (b, &v) in snap.iter().enumerate() {
        let want = (1..=t).filter(|i| i % 64 == b as u64).max().unwrap_or(0);
        assert_eq!(v, want, "snapshot block {b} is not the prefix up to {t}");
    }
}

#[tokio::test]
async fn clones_copy_on_write_from_their_parent() {
    let (_reg, store, _) = ram_store(64).await;
    let l = store.create_lvol("base", 2 * MIB, &thin()).await.unwrap();
    assert!(matches!(
        l.create_clone("c").await,
        Err(LvolError::InvalidArgument(_))
    ));
    {
        let d = l.open(OpenMode::Shared).unwrap();
        d.write(0, pattern(1, 2 * MIB as usize), false)
            .await
            .unwrap();
    }
    let s = l.snapshot("s").await.unwrap();
    let c = s.create_clone("c").await.unwrap();
    assert!(matches!(
        s.create_clone("c").await,
        Err(LvolError::Exists(_))
    ));
    let cd = c.open(OpenMode::Shared).unwrap();
    assert_eq!(
        read(&cd, 0, 4096).await,
        pattern(1, 2 * MIB as usize)[..4096].to_vec()
    );
    cd.write(MIB + 512, pattern(2, 512), false).await.unwrap();
    let mut want = pattern(1, 2 * MIB as usize)[MIB as usize..].to_vec();
    want[512..1024].copy_from_slice(&pattern(2, 512));
    assert_eq!(
        read(&cd, MIB, MIB as usize).await,
        want,
        "first write filled from the parent"
    );
    assert_eq!(c.num_allocated_clusters().unwrap(), 1);
    // Deallocating a clone's cluster reads zeros, not the parent's data.
    cd.deallocate(0, MIB).await.unwrap();
    assert_eq!(read(&cd, 0, 4096).await, zeros(4096));
    // Shrink then grow: the regrown part reads zeros too.
    c.resize(MIB).await.unwrap();
    c.resize(2 * MIB).await.unwrap();
    assert_eq!(read(&cd, MIB, 4096).await, zeros(4096));
    let sd = s.open(OpenMode::Shared).unwrap();
    assert_eq!(
        read(&sd, 0, 2 * MIB as usize).await,
        pattern(1, 2 * MIB as usize).to_vec()
    );
}

#[tokio::test]
async fn snapshot_delete_rule_refuses_two_clones_and_merges_one() {
    let (reg, store, ram) = ram_store(64).await;
    let l = store.create_lvol("v", 3 * MIB, &thick()).await.unwrap();
    let d = l.open(OpenMode::Export).unwrap();
    d.write(0, pattern(1, 3 * MIB as usize), false)
        .await
        .unwrap();
    let s = l.snapshot("s").await.unwrap();
    let c2 = s.create_clone("c2").await.unwrap();
    assert!(matches!(
        s.delete(&Progress::new()).await,
        Err(LvolError::HasClones(2))
    ));
    assert!(reg.lvol("lvs/s").is_ok());
    c2.delete(&Progress::new()).await.unwrap();
    // One clone (the exported origin): merged into it while it stays exported.
    d.write(MIB, pattern(2, 4096), false).await.unwrap();
    let free = store.info().unwrap().free_clusters;
    s.delete(&Progress::new()).await.unwrap();
    assert!(reg.lvol("lvs/s").is_err());
    let li = l.info().unwrap();
    assert!(!li.is_clone);
    assert_eq!(li.num_allocated_clusters, 3);
    assert_eq!(
        store.info().unwrap().free_clusters,
        free + 1,
        "the overwritten cluster was freed"
    );
    let mut want = pattern(1, 3 * MIB as usize).to_vec();
    want[MIB as usize..MIB as usize + 4096].copy_from_slice(&pattern(2, 4096));
    assert_eq!(read(&d, 0, want.len()).await, want);
    drop(d);
    reg.unload_lvstore(&store).await.unwrap();
    let back = reg.load_lvstore(ram.into(), "ram0").await.unwrap();
    let bd = back.lvol("v").unwrap().open(OpenMode::Shared).unwrap();
    assert_eq!(read(&bd, 0, want.len()).await, want);
}

#[tokio::test]
async fn chains_merge_down_to_the_grandparent() {
    let (_reg, store, _) = ram_store(64).await;
    let l = store.create_lvol("v", 2 * MIB, &thin()).await.unwrap();
    let d = l.open(OpenMode::Shared).unwrap();
    d.write(0, pattern(1, 4096), false).await.unwrap();
    let s1 = l.snapshot("s1").await.unwrap();
    d.write(MIB, pattern(2, 4096), false).await.unwrap();
    let s2 = l.snapshot("s2").await.unwrap();
    assert_eq!(s2.info().unwrap().parent.unwrap().name, "s1");
    d.write(8192, pattern(3, 512), false).await.unwrap();
    s2.delete(&Progress::new()).await.unwrap();
    assert_eq!(l.info().unwrap().parent.unwrap().name, "s1");
    assert_eq!(s1.info().unwrap().clones[0].name, "v");
    assert_eq!(read(&d, 0, 4096).await[..512], pattern(1, 4096)[..512]);
    assert_eq!(read(&d, 8192, 512).await, pattern(3, 512).to_vec());
    assert_eq!(read(&d, MIB, 4096).await, pattern(2, 4096).to_vec());
}

#[tokio::test]
async fn inflate_and_decouple() {
    let (_reg, store, _) = ram_store(64).await;
    let l = store.create_lvol("v", 4 * MIB, &thin()).await.unwrap();
    {
        let d = l.open(OpenMode::Shared).unwrap();
        d.write(0, pattern(1, 4096), false).await.unwrap();
        d.write(2 * MIB, pattern(2, 4096), false).await.unwrap();
    }
    let s = l.snapshot("s").await.unwrap();
    let a = s.create_clone("a").await.unwrap();
    let b = s.create_clone("b").await.unwrap();
    let p = Progress::new();
    a.inflate(&p).await.unwrap();
    assert_eq!((p.done(), p.total()), (4, 4));
    let ai = a.info().unwrap();
    assert!(!ai.is_clone && !ai.is_thin_provisioned);
    assert_eq!(ai.num_allocated_clusters, 4);
    b.decouple_parent(&Progress::new()).await.unwrap();
    let bi = b.info().unwrap();
    assert!(!bi.is_clone && bi.is_thin_provisioned);
    assert_eq!(bi.num_allocated_clusters, 2);
    for x in [&a, &b] {
        let d = x.open(OpenMode::Shared).unwrap();
        assert_eq!(read(&d, 0, 4096).await, pattern(1, 4096).to_vec());
        assert_eq!(read(&d, 2 * MIB, 4096).await, pattern(2, 4096).to_vec());
        assert_eq!(read(&d, MIB, 4096).await, zeros(4096));
    }
    assert_eq!(s.info().unwrap().clones.len(), 1, "only the origin is left");
    assert!(matches!(
        b.decouple_parent(&Progress::new()).await,
        Err(LvolError::InvalidArgument(_))
    ));
    assert!(matches!(
        s.inflate(&Progress::new()).await,
        Err(LvolError::ReadOnly)
    ));
    // A plain thin lvol inflates to thick.
    let t = store.create_lvol("t", 2 * MIB, &thin()).await.unwrap();
    t.inflate(&Progress::new()).await.unwrap();
    assert!(!t.info().unwrap().is_thin_provisioned);
    assert_eq!(t.num_allocated_clusters().unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inflate_runs_alongside_io() {
    let (_reg, store, _) = ram_store(64).await;
    let l = store.create_lvol("v", 8 * MIB, &thin()).await.unwrap();
    {
        let d = l.open(OpenMode::Shared).unwrap();
        d.write(0, pattern(1, 8 * MIB as usize), false)
            .await
            .unwrap();
    }
    let s = l.snapshot("s").await.unwrap();
    let c = s.create_clone("c").await.unwrap();
    let d = Arc::new(c.open(OpenMode::Shared).unwrap());
    let io = {
        let d = Arc::clone(&d);
        tokio::spawn(async move {
            for i in 0..64u64 {
                d.write(i * 131_072, pattern(100 + i, 4096), false)
                    .await
                    .unwrap();
            }
        })
    };
    c.inflate(&Progress::new()).await.unwrap();
    io.await.unwrap();
    let base = pattern(1, 8 * MIB as usize);
    for i in 0..64u64 {
        let at = i * 131_072;
        assert_eq!(read(&d, at, 4096).await, pattern(100 + i, 4096).to_vec());
        assert_eq!(
            read(&d, at + 4096, 512).await,
            base[(at + 4096) as usize..][..512].to_vec()
        );
    }
    assert_eq!(c.num_allocated_clusters().unwrap(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_chain_of_snapshots_concurrently() {
    let (_reg, store, _) = ram_store(64).await;
    for round in 0..20u64 {
        let l = store
            .create_lvol(&format!("v{round}"), 2 * MIB, &thin())
            .await
            .unwrap();
        let d = l.open(OpenMode::Shared).unwrap();
        d.write(0, pattern(round, 4096), false).await.unwrap();
        let s1 = l.snapshot(&format!("a{round}")).await.unwrap();
        d.write(MIB, pattern(round + 1, 4096), false).await.unwrap();
        let s2 = l.snapshot(&format!("b{round}")).await.unwrap();
        let (r1, r2) = tokio::join!(
            tokio::spawn(async move { s1.delete(&Progress::new()).await }),
            tokio::spawn(async move { s2.delete(&Progress::new()).await }),
        );
        r1.unwrap().unwrap();
        r2.unwrap().unwrap();
        let info = l.info().unwrap();
        assert!(!info.is_clone, "{info:?}");
        assert_eq!(read(&d, 0, 4096).await, pattern(round, 4096).to_vec());
        assert_eq!(read(&d, MIB, 4096).await, pattern(round + 1, 4096).to_vec());
        assert_eq!(store.list_lvols().len(), 1);
        drop(d);
        l.delete(&Progress::new()).await.unwrap();
    }
}
