//! Lvstore operations: create, load, unload, destroy, rename, grow, list, and their refusals.

use super::support::*;
use crate::device::{BlockDevice, Device, RamDevice};
use crate::{LvolError, LvstoreOptions, OpenMode, Progress, Registry};

#[tokio::test]
async fn create_lists_geometry_and_refuses_duplicates() {
    let (reg, store, ram) = ram_store(64).await;
    let info = store.info().unwrap();
    assert_eq!(info.name, "lvs");
    assert_eq!(info.base_bdev, "ram0");
    assert_eq!(info.cluster_size, MIB);
    assert_eq!(info.block_size, 512);
    assert!(info.total_data_clusters > 50 && info.total_data_clusters < 64);
    assert_eq!(info.free_clusters, info.total_data_clusters);
    assert_eq!(reg.list_lvstores(), vec![info.clone()]);
    assert_eq!(reg.lvstore("lvs").unwrap().uuid(), info.uuid);
    assert_eq!(reg.lvstore(&info.uuid.to_string()).unwrap().name(), "lvs");
    let other = RamDevice::new(64 * MIB, 512).unwrap();
    let dup = reg
        .create_lvstore(other.clone().into(), "ram1", "lvs", &small_opts())
        .await;
    assert!(matches!(dup, Err(LvolError::Exists(_))));
    for bad in ["", "a/b", &"n".repeat(64)] {
        let r = reg
            .create_lvstore(other.clone().into(), "ram1", bad, &small_opts())
            .await;
        assert!(matches!(r, Err(LvolError::InvalidArgument(_))), "{bad:?}");
    }
    let odd = LvstoreOptions {
        cluster_size: 3 * MIB,
        ..small_opts()
    };
    let r = reg
        .create_lvstore(other.clone().into(), "ram1", "x", &odd)
        .await;
    assert!(matches!(r, Err(LvolError::InvalidArgument(_))));
    let tiny = RamDevice::new(2 * MIB, 512).unwrap();
    let r = reg
        .create_lvstore(tiny.into(), "tiny", "x", &small_opts())
        .await;
    assert!(matches!(r, Err(LvolError::InvalidArgument(_))));
    // The existing lvstore is never overwritten without asking.
    let r = reg
        .create_lvstore(ram.clone().into(), "ram0", "again", &small_opts())
        .await;
    assert!(matches!(r, Err(LvolError::Exists(m)) if m.contains("lvs")));
    assert!(
        reg.lvstore("again").is_err(),
        "a failed create leaves no name behind"
    );
}

#[tokio::test]
async fn reload_brings_back_every_lvol_and_its_data() {
    let (reg, store, ram) = ram_store(64).await;
    let a = store.create_lvol("thin", 3 * MIB, &thin()).await.unwrap();
    let b = store.create_lvol("thick", 2 * MIB, &thick()).await.unwrap();
    let data = pattern(1, 8192);
    {
        let d = a.open(OpenMode::Shared).unwrap();
        d.write(MIB + 4096, data.clone(), false).await.unwrap();
        d.flush().await.unwrap();
    }
    let snap = b.snapshot("snap").await.unwrap();
    let clone = snap.create_clone("clone").await.unwrap();
    let before = reg.list_lvols(None);
    reg.unload_lvstore(&store).await.unwrap();
    assert!(matches!(a.info(), Err(LvolError::Unloaded)));
    assert!(matches!(store.info(), Err(LvolError::Unloaded)));
    assert!(reg.lvol("lvs/thin").is_err());
    let store2 = reg.load_lvstore(ram.clone().into(), "ram0").await.unwrap();
    assert_eq!(store2.uuid(), store.uuid());
    assert_eq!(reg.list_lvols(None), before);
    let a2 = reg.lvol("lvs/thin").unwrap();
    assert_eq!(a2.uuid(), a.uuid());
    let d = a2.open(OpenMode::Shared).unwrap();
    assert_eq!(read(&d, MIB + 4096, 8192).await, data.to_vec());
    assert_eq!(
        reg.lvol(&clone.uuid().to_string())
            .unwrap()
            .info()
            .unwrap()
            .parent
            .unwrap()
            .name,
        "snap"
    );
    // Loading the same device twice is refused.
    let again = reg.load_lvstore(ram.into(), "ram0").await;
    assert!(matches!(again, Err(LvolError::Exists(_))));
}

#[tokio::test]
async fn crash_without_unload_keeps_committed_metadata() {
    let (_reg, store, ram) = ram_store(64).await;
    let lvol = store.create_lvol("v", 2 * MIB, &thin()).await.unwrap();
    let d = lvol.open(OpenMode::Shared).unwrap();
    d.write(0, pattern(5, 4096), true).await.unwrap();
    // No unload: a new registry loads what was committed.
    let reg2 = Registry::new();
    let store2 = reg2.load_lvstore(ram.into(), "ram0").await.unwrap();
    let d2 = store2.lvol("v").unwrap().open(OpenMode::Shared).unwrap();
    assert_eq!(read(&d2, 0, 4096).await, pattern(5, 4096).to_vec());
    assert_eq!(
        store2.lvol("v").unwrap().num_allocated_clusters().unwrap(),
        1
    );
}

#[tokio::test]
async fn unload_and_destroy_refuse_open_lvols() {
    let (reg, store, ram) = ram_store(64).await;
    let lvol = store.create_lvol("v", MIB, &thin()).await.unwrap();
    let desc = lvol.open(OpenMode::Export).unwrap();
    assert!(matches!(
        reg.unload_lvstore(&store).await,
        Err(LvolError::Busy(_))
    ));
    assert!(matches!(
        reg.destroy_lvstore(&store).await,
        Err(LvolError::Busy(_))
    ));
    assert!(store.is_loaded());
    drop(desc);
    reg.destroy_lvstore(&store).await.unwrap();
    assert!(reg.list_lvstores().is_empty());
    assert!(matches!(
        lvol.open(OpenMode::Shared),
        Err(LvolError::Unloaded)
    ));
    let r = Registry::new()
        .load_lvstore(ram.clone().into(), "ram0")
        .await;
    assert!(matches!(r, Err(LvolError::NoLvstore)));
    // A destroyed device can hold a new lvstore.
    reg.create_lvstore(ram.into(), "ram0", "new", &small_opts())
        .await
        .unwrap();
}

#[tokio::test]
async fn foreign_and_damaged_devices_are_refused() {
    let ram = RamDevice::new(64 * MIB, 512).unwrap();
    ram.write(0, pattern(9, 8192)).await.unwrap();
    let reg = Registry::new();
    assert!(matches!(
        reg.load_lvstore(ram.clone().into(), "r").await,
        Err(LvolError::NoLvstore)
    ));
    let store = reg
        .create_lvstore(ram.clone().into(), "r", "lvs", &small_opts())
        .await
        .unwrap();
    reg.unload_lvstore(&store).await.unwrap();
    // One damaged copy: the other one still loads.
    let mut sb = bytes::BytesMut::new();
    ram.read(0, 8192, &mut sb).await.unwrap();
    sb[200] ^= 0xff;
    ram.write(0, sb.clone().freeze()).await.unwrap();
    let store = reg.load_lvstore(ram.clone().into(), "r").await.unwrap();
    reg.unload_lvstore(&store).await.unwrap();
    // Both damaged: refused, and the device is left untouched.
    sb[4096 + 200] ^= 0xff;
    ram.write(0, sb.clone().freeze()).await.unwrap();
    let r = reg.load_lvstore(ram.clone().into(), "r").await;
    assert!(
        matches!(&r, Err(LvolError::Corrupt(m)) if m.contains("superblock")),
        "{:?}",
        r.err()
    );
    let mut after = bytes::BytesMut::new();
    ram.read(0, 8192, &mut after).await.unwrap();
    assert_eq!(after, sb);
    let r = reg
        .create_lvstore(ram.clone().into(), "r", "lvs2", &small_opts())
        .await;
    assert!(matches!(r, Err(LvolError::Exists(m)) if m.contains("damaged")));
    let overwrite = LvstoreOptions {
        overwrite: true,
        ..small_opts()
    };
    reg.create_lvstore(ram.into(), "r", "lvs2", &overwrite)
        .await
        .unwrap();
}

#[tokio::test]
async fn rename_survives_reload_and_keeps_names_unique() {
    let (reg, store, ram) = ram_store(64).await;
    reg.create_lvstore(
        RamDevice::new(64 * MIB, 512).unwrap().into(),
        "x",
        "taken",
        &small_opts(),
    )
    .await
    .unwrap();
    store.create_lvol("v", MIB, &thin()).await.unwrap();
    assert!(matches!(
        reg.rename_lvstore(&store, "taken").await,
        Err(LvolError::Exists(_))
    ));
    reg.rename_lvstore(&store, "renamed").await.unwrap();
    assert!(reg.lvstore("lvs").is_err());
    let v = reg.lvol("renamed/v").unwrap();
    assert_eq!(v.info().unwrap().alias, "renamed/v");
    reg.unload_lvstore(&store).await.unwrap();
    let back = reg.load_lvstore(ram.into(), "ram0").await.unwrap();
    assert_eq!(back.name(), "renamed");
    // Rename twice more: the superblock slots alternate and the newest wins.
    reg.rename_lvstore(&back, "r2").await.unwrap();
    reg.rename_lvstore(&back, "r3").await.unwrap();
    assert_eq!(reg.lvstore("r3").unwrap().uuid(), back.uuid());
}

#[tokio::test]
async fn grow_adds_clusters_after_the_device_grew() {
    let (reg, store, ram) = ram_store(32).await;
    let before = store.info().unwrap().total_data_clusters;
    assert_eq!(
        store.grow().await.unwrap().total_data_clusters,
        before,
        "no-op when unchanged"
    );
    ram.grow(64 * MIB).unwrap();
    let info = store.grow().await.unwrap();
    assert_eq!(info.total_data_clusters, before + 32);
    // The new clusters are usable.
    let big = store
        .create_lvol("big", (before + 10) * MIB, &thick())
        .await
        .unwrap();
    assert_eq!(big.num_allocated_clusters().unwrap(), before + 10);
    reg.unload_lvstore(&store).await.unwrap();
    let back = reg.load_lvstore(ram.clone().into(), "ram0").await.unwrap();
    assert_eq!(back.info().unwrap().total_data_clusters, before + 32);
    // Past the size the metadata was laid out for: refused.
    ram.grow(32 * 64 * MIB).unwrap();
    assert!(matches!(
        back.grow().await,
        Err(LvolError::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn metadata_room_is_enforced() {
    let ram = RamDevice::new(64 * MIB, 512).unwrap();
    let reg = Registry::new();
    let opts = LvstoreOptions {
        max_lvols: Some(2),
        ..small_opts()
    };
    let store = reg
        .create_lvstore(ram.into(), "r", "lvs", &opts)
        .await
        .unwrap();
    let a = store.create_lvol("a", MIB, &thin()).await.unwrap();
    store.create_lvol("b", MIB, &thin()).await.unwrap();
    assert!(matches!(
        store.create_lvol("c", MIB, &thin()).await,
        Err(LvolError::MetadataFull(_))
    ));
    assert!(matches!(
        a.snapshot("s").await,
        Err(LvolError::MetadataFull(_))
    ));
    a.delete(&Progress::new()).await.unwrap();
    store.create_lvol("c", MIB, &thin()).await.unwrap();
}

#[tokio::test]
async fn many_operations_roll_the_journal_through_checkpoints() {
    let (reg, store, ram) = ram_store(64).await;
    let lvol = store.create_lvol("v", 4 * MIB, &thin()).await.unwrap();
    // Each rename is one journal batch; 1 MiB of journal holds 256 blocks, so this laps it
    // several times and forces checkpoints into both slots.
    for i in 0..700 {
        lvol.rename(&format!("name{i}")).await.unwrap();
    }
    reg.unload_lvstore(&store).await.unwrap();
    let back = Registry::new()
        .load_lvstore(ram.clone().into(), "r")
        .await
        .unwrap();
    assert_eq!(back.lvols()[0].name().unwrap(), "name699");
    // And without unload (replay from the journal after the last checkpoint).
    let l = back.lvols()[0].clone();
    for i in 0..300 {
        l.rename(&format!("again{i}")).await.unwrap();
    }
    let back2 = Registry::new().load_lvstore(ram.into(), "r").await.unwrap();
    assert_eq!(back2.lvols()[0].name().unwrap(), "again299");
}

#[tokio::test]
async fn device_errors_are_typed_and_fail_the_store_safely() {
    use crate::device::{FaultDevice, FaultMode};
    let dev = FaultDevice::new(64 * MIB, 512).unwrap();
    let reg = Registry::new();
    let store = reg
        .create_lvstore(Device::Fault(dev.clone()), "f", "lvs", &small_opts())
        .await
        .unwrap();
    let lvol = store.create_lvol("v", 2 * MIB, &thin()).await.unwrap();
    let d = lvol.open(OpenMode::Shared).unwrap();
    d.write(0, pattern(1, 4096), true).await.unwrap();
    dev.set_fail_reads(true);
    let mut buf = bytes::BytesMut::new();
    assert!(matches!(
        d.read(0, 4096, &mut buf).await,
        Err(LvolError::Device(_))
    ));
    assert!(buf.is_empty());
    dev.set_fail_reads(false);
    dev.fail_after(dev.writes(), FaultMode::Error);
    assert!(matches!(
        d.write(MIB, pattern(2, 4096), true).await,
        Err(LvolError::Device(_))
    ));
    // The flush or commit failed: the store refuses further metadata changes.
    let r = store.create_lvol("w", MIB, &thin()).await;
    assert!(
        matches!(r, Err(LvolError::StoreFailed | LvolError::Device(_))),
        "{r:?}"
    );
    assert!(store.is_failed() || r.is_err());
}

#[tokio::test]
async fn metadata_room_is_measured_before_refusing() {
    // Tiny checkpoint slots and a journal that never fills: the running size bound would pass
    // the slot capacity long before a checkpoint resets it; the real size stays small.
    let ram = RamDevice::new(64 * MIB, 512).unwrap();
    let opts = LvstoreOptions {
        max_lvols: Some(4),
        max_clusters: Some(64),
        journal_bytes: Some(16 * MIB),
        ..small_opts()
    };
    let reg = Registry::new();
    let store = reg
        .create_lvstore(ram.into(), "r", "lvs", &opts)
        .await
        .unwrap();
    for i in 0..400u64 {
        let l = store.create_lvol("v", 4 * MIB, &thin()).await.unwrap();
        let d = l.open(OpenMode::Shared).unwrap();
        d.write(0, pattern(i, 512), false).await.unwrap();
        d.write(2 * MIB, pattern(i, 512), false).await.unwrap();
        drop(d);
        l.delete(&Progress::new()).await.unwrap();
    }
}
