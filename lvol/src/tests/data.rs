//! Data semantics (issue 3 §5): zeros for unallocated clusters, fill on first write (no stale
//! data), release on whole-cluster write-zeroes/deallocate, flush and FUA durability across a
//! simulated power loss, concurrent first writes, and running out of space.

use std::sync::Arc;

use super::support::*;
use crate::device::{CrashMode, Device, FaultDevice};
use crate::{ClearMethod, LvolError, LvolOptions, OpenMode, Progress, Registry};

#[tokio::test]
async fn unallocated_reads_zeros_and_writes_span_clusters() {
    let (_reg, store, _) = ram_store(32).await;
    let l = store.create_lvol("v", 4 * MIB, &thin()).await.unwrap();
    let d = l.open(OpenMode::Shared).unwrap();
    assert_eq!(read(&d, 0, 8192).await, zeros(8192));
    let data = pattern(7, 2 * MIB as usize);
    d.write(MIB - 4096, data.clone(), false).await.unwrap();
    assert_eq!(l.num_allocated_clusters().unwrap(), 3);
    assert_eq!(read(&d, MIB - 4096, data.len()).await, data.to_vec());
    assert_eq!(read(&d, 0, 4096).await, zeros(4096));
    assert_eq!(
        read(&d, 3 * MIB - 4096, 8192).await[4096..],
        zeros(4096)[..]
    );
}

#[tokio::test]
async fn first_write_never_exposes_stale_data() {
    let (_reg, store, _) = ram_store(16).await;
    let free = store.info().unwrap().free_clusters;
    let none = LvolOptions {
        clear_method: ClearMethod::None,
        ..thick()
    };
    let old = store.create_lvol("old", free * MIB, &none).await.unwrap();
    {
        let d = old.open(OpenMode::Shared).unwrap();
        for c in 0..free {
            d.write(c * MIB, pattern(100 + c, MIB as usize), false)
                .await
                .unwrap();
        }
    }
    old.delete(&Progress::new()).await.unwrap();
    let new = store.create_lvol("new", free * MIB, &thin()).await.unwrap();
    let d = new.open(OpenMode::Shared).unwrap();
    for c in 0..free {
        d.write(c * MIB + 8192, pattern(c, 512), false)
            .await
            .unwrap();
        let got = read(&d, c * MIB, MIB as usize).await;
        let mut want = zeros(MIB as usize);
        want[8192..8704].copy_from_slice(&pattern(c, 512));
        assert!(got == want, "cluster {c} shows stale data");
    }
}

#[tokio::test]
async fn zeroing_releases_whole_clusters_and_zeroes_partial_ranges() {
    let (_reg, store, _) = ram_store(32).await;
    let l = store.create_lvol("v", 4 * MIB, &thin()).await.unwrap();
    let d = l.open(OpenMode::Shared).unwrap();
    d.write(0, pattern(1, 4 * MIB as usize), false)
        .await
        .unwrap();
    assert_eq!(l.num_allocated_clusters().unwrap(), 4);
    let free = store.info().unwrap().free_clusters;
    // Cluster 1 whole plus half of cluster 2.
    d.deallocate(MIB, MIB + MIB / 2).await.unwrap();
    assert_eq!(l.num_allocated_clusters().unwrap(), 3);
    assert_eq!(store.info().unwrap().free_clusters, free + 1);
    assert_eq!(
        read(&d, MIB, (MIB + MIB / 2) as usize).await,
        zeros((MIB + MIB / 2) as usize)
    );
    let tail = read(&d, 2 * MIB + MIB / 2, 4096).await;
    assert_eq!(
        tail,
        pattern(1, 4 * MIB as usize)[(2 * MIB + MIB / 2) as usize..][..4096].to_vec()
    );
    d.write_zeroes(3 * MIB, MIB, true).await.unwrap();
    assert_eq!(l.num_allocated_clusters().unwrap(), 2);
    assert_eq!(read(&d, 3 * MIB, 4096).await, zeros(4096));
    // Zeroing unallocated space allocates nothing.
    d.write_zeroes(MIB, 4096, false).await.unwrap();
    assert_eq!(l.num_allocated_clusters().unwrap(), 2);
    // Thick lvols keep their clusters and read zeros.
    let k = store.create_lvol("k", 2 * MIB, &thick()).await.unwrap();
    let kd = k.open(OpenMode::Shared).unwrap();
    kd.write(0, pattern(2, 2 * MIB as usize), false)
        .await
        .unwrap();
    kd.deallocate(0, 2 * MIB).await.unwrap();
    assert_eq!(k.num_allocated_clusters().unwrap(), 2);
    assert_eq!(
        read(&kd, 0, 2 * MIB as usize).await,
        zeros(2 * MIB as usize)
    );
}

async fn fault_store() -> (FaultDevice, crate::LvolStore, crate::Lvol) {
    let dev = FaultDevice::new(32 * MIB, 512).unwrap();
    let reg = Registry::new();
    let store = reg
        .create_lvstore(Device::Fault(dev.clone()), "f", "lvs", &small_opts())
        .await
        .unwrap();
    let l = store.create_lvol("v", 4 * MIB, &thin()).await.unwrap();
    (dev, store, l)
}

async fn reload(image: Vec<u8>) -> crate::LvolStore {
    let dev = FaultDevice::from_image(image, 512);
    Registry::new()
        .load_lvstore(Device::Fault(dev), "f")
        .await
        .unwrap()
}

#[tokio::test]
async fn flush_makes_writes_and_allocations_durable() {
    let (dev, _store, l) = fault_store().await;
    let d = l.open(OpenMode::Shared).unwrap();
    d.write(0, pattern(1, 4096), false).await.unwrap();
    d.write(2 * MIB, pattern(2, 4096), false).await.unwrap();
    d.flush().await.unwrap();
    d.write(3 * MIB, pattern(3, 4096), false).await.unwrap(); // not flushed
    let back = reload(dev.crash_image(CrashMode::LoseUnflushed)).await;
    let bd = back.lvol("v").unwrap().open(OpenMode::Shared).unwrap();
    assert_eq!(read(&bd, 0, 4096).await, pattern(1, 4096).to_vec());
    assert_eq!(read(&bd, 2 * MIB, 4096).await, pattern(2, 4096).to_vec());
    assert_eq!(
        read(&bd, 3 * MIB, 4096).await,
        zeros(4096),
        "unflushed allocation is gone"
    );
    assert_eq!(back.lvol("v").unwrap().num_allocated_clusters().unwrap(), 2);
}

#[tokio::test]
async fn fua_write_is_durable_on_completion() {
    let (dev, _store, l) = fault_store().await;
    let d = l.open(OpenMode::Shared).unwrap();
    d.write(MIB, pattern(4, 8192), true).await.unwrap();
    d.write(MIB + 8192, pattern(5, 512), false).await.unwrap();
    let back = reload(dev.crash_image(CrashMode::LoseUnflushed)).await;
    let bd = back.lvol("v").unwrap().open(OpenMode::Shared).unwrap();
    assert_eq!(read(&bd, MIB, 8192).await, pattern(4, 8192).to_vec());
}

#[tokio::test]
async fn concurrent_first_writes_allocate_once_and_all_land() {
    let (_reg, store, _) = ram_store(32).await;
    let l = store.create_lvol("v", 2 * MIB, &thin()).await.unwrap();
    let d = Arc::new(l.open(OpenMode::Shared).unwrap());
    let mut tasks = Vec::new();
    for i in 0..32u64 {
        let d = Arc::clone(&d);
        tasks.push(tokio::spawn(async move {
            d.write(i * 4096, pattern(i, 4096), false).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(l.num_allocated_clusters().unwrap(), 1);
    for i in 0..32u64 {
        assert_eq!(
            read(&d, i * 4096, 4096).await,
            pattern(i, 4096).to_vec(),
            "write {i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_writes_on_threads() {
    let (_reg, store, _) = ram_store(32).await;
    for round in 0..20u64 {
        let l = store
            .create_lvol(&format!("v{round}"), MIB, &thin())
            .await
            .unwrap();
        let d = Arc::new(l.open(OpenMode::Shared).unwrap());
        let tasks: Vec<_> = (0..8u64)
            .map(|i| {
                let d = Arc::clone(&d);
                tokio::spawn(async move {
                    d.write(i * 65536, pattern(round * 8 + i, 65536), false)
                        .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(l.num_allocated_clusters().unwrap(), 1);
        for i in 0..8u64 {
            assert_eq!(
                read(&d, i * 65536, 65536).await,
                pattern(round * 8 + i, 65536).to_vec()
            );
        }
        drop(d);
        l.delete(&Progress::new()).await.unwrap();
    }
}

#[tokio::test]
async fn running_out_of_space_is_typed_and_consistent() {
    let (reg, store, ram) = ram_store(16).await;
    let free = store.info().unwrap().free_clusters;
    let l = store
        .create_lvol("v", (free + 4) * MIB, &thin())
        .await
        .unwrap();
    let d = l.open(OpenMode::Shared).unwrap();
    for c in 0..free {
        d.write(c * MIB, pattern(c, 4096), false).await.unwrap();
    }
    let r = d.write(free * MIB, pattern(0, 4096), false).await;
    assert!(
        matches!(
            r,
            Err(LvolError::NoSpace {
                needed_clusters: 1,
                ..
            })
        ),
        "{r:?}"
    );
    assert_eq!(l.num_allocated_clusters().unwrap(), free);
    // Writes into allocated clusters still work; freeing space makes room again.
    d.write(512, pattern(9, 512), false).await.unwrap();
    d.deallocate(0, MIB).await.unwrap();
    d.write(free * MIB, pattern(1, 4096), false).await.unwrap();
    d.flush().await.unwrap();
    drop(d);
    reg.unload_lvstore(&store).await.unwrap();
    let back = reg.load_lvstore(ram.into(), "ram0").await.unwrap();
    let bd = back.lvol("v").unwrap().open(OpenMode::Shared).unwrap();
    assert_eq!(read(&bd, free * MIB, 4096).await, pattern(1, 4096).to_vec());
    assert_eq!(read(&bd, MIB, 4096).await, pattern(1, 4096).to_vec());
    assert_eq!(read(&bd, 0, 4096).await, zeros(4096));
}

#[tokio::test]
async fn file_backed_store_roundtrip() {
    use crate::device::{FileDevice, FileOptions};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lvs.img");
    let opts = FileOptions {
        create_size_bytes: Some(64 * MIB),
        ..FileOptions::default()
    };
    let dev = FileDevice::open(&path, &opts).unwrap();
    let reg = Registry::new();
    let store = reg
        .create_lvstore(dev.into(), "file0", "lvs", &small_opts())
        .await
        .unwrap();
    let l = store.create_lvol("v", 8 * MIB, &thin()).await.unwrap();
    let k = store.create_lvol("k", 2 * MIB, &thick()).await.unwrap();
    {
        let d = l.open(OpenMode::Shared).unwrap();
        d.write(5 * MIB + 512, pattern(3, 4096), true)
            .await
            .unwrap();
        d.deallocate(5 * MIB, MIB).await.unwrap();
        d.write(MIB, pattern(4, 4096), false).await.unwrap();
        let kd = k.open(OpenMode::Shared).unwrap();
        kd.write(0, pattern(5, 4096), false).await.unwrap();
        d.flush().await.unwrap();
    }
    reg.unload_lvstore(&store).await.unwrap();
    let dev = FileDevice::open(&path, &FileOptions::default()).unwrap();
    let back = reg.load_lvstore(dev.into(), "file0").await.unwrap();
    let d = back.lvol("v").unwrap().open(OpenMode::Shared).unwrap();
    assert_eq!(read(&d, MIB, 4096).await, pattern(4, 4096).to_vec());
    assert_eq!(read(&d, 5 * MIB, 8192).await, zeros(8192));
    let kd = back.lvol("k").unwrap().open(OpenMode::Shared).unwrap();
    assert_eq!(read(&kd, 0, 4096).await, pattern(5, 4096).to_vec());
}
