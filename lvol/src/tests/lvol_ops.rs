//! Lvol operations and their failure paths: create, lookups, resize, rename, read-only,
//! open modes and the delete state machine.

use super::support::*;
use crate::{ClearMethod, LvolError, LvolOptions, OpenMode, Progress};

#[tokio::test]
async fn create_rounds_up_and_reports_properties() {
    let (reg, store, _) = ram_store(64).await;
    let t = store.create_lvol("thin", MIB + 1, &thin()).await.unwrap();
    let k = store.create_lvol("thick", 3 * MIB, &thick()).await.unwrap();
    let ti = t.info().unwrap();
    assert_eq!(
        (ti.size_bytes, ti.num_clusters, ti.num_allocated_clusters),
        (2 * MIB, 2, 0)
    );
    assert!(ti.is_thin_provisioned && !ti.is_snapshot && !ti.is_clone && !ti.is_read_only);
    assert_eq!(ti.alias, "lvs/thin");
    assert_eq!(ti.lvs_uuid, store.uuid());
    let ki = k.info().unwrap();
    assert_eq!(ki.num_allocated_clusters, 3);
    assert!(!ki.is_thin_provisioned);
    assert_eq!(ki.clear_method, ClearMethod::Unmap);
    let free = store.info().unwrap().free_clusters;
    assert_eq!(free, store.info().unwrap().total_data_clusters - 3);
    assert_eq!(reg.lvol("lvs/thick").unwrap().uuid(), k.uuid());
    assert_eq!(
        reg.lvol(&t.uuid().to_string()).unwrap().name().unwrap(),
        "thin"
    );
    assert!(matches!(reg.lvol("lvs/nope"), Err(LvolError::NotFound(_))));
    assert!(matches!(reg.lvol("nope/thin"), Err(LvolError::NotFound(_))));
    assert!(matches!(reg.lvol("no-slash"), Err(LvolError::NotFound(_))));
    let names: Vec<_> = reg.list_lvols(None).into_iter().map(|i| i.alias).collect();
    assert_eq!(names, ["lvs/thick", "lvs/thin"]);
}

#[tokio::test]
async fn create_failures() {
    let (_reg, store, _) = ram_store(32).await;
    store.create_lvol("v", MIB, &thin()).await.unwrap();
    assert!(matches!(
        store.create_lvol("v", MIB, &thin()).await,
        Err(LvolError::Exists(_))
    ));
    assert!(matches!(
        store.create_lvol("a/b", MIB, &thin()).await,
        Err(LvolError::InvalidArgument(_))
    ));
    assert!(matches!(
        store.create_lvol("", MIB, &thin()).await,
        Err(LvolError::InvalidArgument(_))
    ));
    assert!(matches!(
        store.create_lvol("z", 0, &thin()).await,
        Err(LvolError::InvalidArgument(_))
    ));
    let free = store.info().unwrap().free_clusters;
    let r = store.create_lvol("huge", (free + 1) * MIB, &thick()).await;
    assert!(
        matches!(r, Err(LvolError::NoSpace { needed_clusters, free_clusters })
        if needed_clusters == free + 1 && free_clusters == free)
    );
    assert_eq!(
        store.info().unwrap().free_clusters,
        free,
        "a failed thick create reserves nothing"
    );
    // Thin lvols may overcommit.
    store
        .create_lvol("huge", (free + 100) * MIB, &thin())
        .await
        .unwrap();
}

#[tokio::test]
async fn thick_create_zeroes_recycled_clusters() {
    let (_reg, store, _) = ram_store(16).await;
    let free = store.info().unwrap().free_clusters;
    let a = store.create_lvol("a", free * MIB, &thick()).await.unwrap();
    {
        let d = a.open(OpenMode::Shared).unwrap();
        for c in 0..free {
            d.write(c * MIB, pattern(c, 4096), false).await.unwrap();
        }
    }
    a.delete(&Progress::new()).await.unwrap();
    let opts = LvolOptions {
        clear_method: ClearMethod::None,
        ..thick()
    };
    let b = store.create_lvol("b", free * MIB, &opts).await.unwrap();
    let d = b.open(OpenMode::Shared).unwrap();
    for c in 0..free {
        assert_eq!(
            read(&d, c * MIB, 4096).await,
            zeros(4096),
            "cluster {c} leaked old data"
        );
    }
}

#[tokio::test]
async fn resize_grows_and_shrinks() {
    let (reg, store, ram) = ram_store(64).await;
    let k = store.create_lvol("k", 2 * MIB, &thick()).await.unwrap();
    let free0 = store.info().unwrap().free_clusters;
    k.resize(4 * MIB).await.unwrap();
    assert_eq!(k.num_allocated_clusters().unwrap(), 4);
    assert_eq!(store.info().unwrap().free_clusters, free0 - 2);
    {
        let d = k.open(OpenMode::Shared).unwrap();
        d.write(3 * MIB, pattern(3, 4096), false).await.unwrap();
        assert_eq!(read(&d, 2 * MIB, 4096).await, zeros(4096));
    }
    k.resize(MIB).await.unwrap();
    assert_eq!(k.size_bytes().unwrap(), MIB);
    assert_eq!(k.num_allocated_clusters().unwrap(), 1);
    assert_eq!(store.info().unwrap().free_clusters, free0 + 1);
    k.resize(3 * MIB).await.unwrap();
    let d = k.open(OpenMode::Shared).unwrap();
    assert_eq!(
        read(&d, 2 * MIB, 4096).await,
        zeros(4096),
        "shrink then grow reads zeros"
    );
    let t = store.create_lvol("t", MIB, &thin()).await.unwrap();
    t.resize(10 * MIB).await.unwrap();
    assert_eq!(t.num_allocated_clusters().unwrap(), 0);
    assert!(matches!(
        t.resize(0).await,
        Err(LvolError::InvalidArgument(_))
    ));
    let free = store.info().unwrap().free_clusters;
    assert!(matches!(
        k.resize((free + 10) * MIB).await,
        Err(LvolError::NoSpace { .. })
    ));
    drop(d);
    reg.unload_lvstore(&store).await.unwrap();
    let back = reg.load_lvstore(ram.into(), "ram0").await.unwrap();
    assert_eq!(back.lvol("k").unwrap().size_bytes().unwrap(), 3 * MIB);
    assert_eq!(back.lvol("t").unwrap().size_bytes().unwrap(), 10 * MIB);
}

/// The I/O path checks range and read-only from an open descriptor's atomics: they follow
/// resize, set-read-only and snapshot while the descriptor stays open.
#[tokio::test]
async fn open_descriptor_sees_size_and_flags_change() {
    let (_reg, store, _) = ram_store(64).await;
    let a = store.create_lvol("a", 2 * MIB, &thin()).await.unwrap();
    let d = a.open(OpenMode::Shared).unwrap();
    assert_eq!((d.size_now(), d.read_only_now()), (2 * MIB, false));
    assert!(matches!(
        d.read(2 * MIB, 4096, &mut bytes::BytesMut::new()).await,
        Err(LvolError::OutOfRange { .. })
    ));
    a.resize(4 * MIB).await.unwrap();
    assert_eq!(d.size_now(), 4 * MIB);
    d.write(3 * MIB, pattern(7, 4096), false).await.unwrap();
    assert_eq!(read(&d, 3 * MIB, 4096).await, pattern(7, 4096).to_vec());
    a.resize(MIB).await.unwrap();
    assert_eq!(d.size_now(), MIB);
    assert!(matches!(
        d.write(MIB, pattern(7, 4096), false).await,
        Err(LvolError::OutOfRange { .. })
    ));
    let snap = a.snapshot("s").await.unwrap();
    let sd = snap.open(OpenMode::Shared).unwrap();
    assert_eq!((sd.size_now(), sd.read_only_now()), (MIB, true));
    assert!(!d.read_only_now(), "the origin stays writable");
    a.set_read_only().await.unwrap();
    assert!(d.read_only_now());
    assert_eq!(d.block_size(), store.block_size());
}

#[tokio::test]
async fn rename_and_read_only() {
    let (reg, store, _) = ram_store(32).await;
    let a = store.create_lvol("a", MIB, &thin()).await.unwrap();
    store.create_lvol("b", MIB, &thin()).await.unwrap();
    assert!(matches!(a.rename("b").await, Err(LvolError::Exists(_))));
    assert!(matches!(
        a.rename("x/y").await,
        Err(LvolError::InvalidArgument(_))
    ));
    a.rename("c").await.unwrap();
    a.rename("c").await.unwrap();
    assert!(reg.lvol("lvs/a").is_err());
    assert_eq!(reg.lvol("lvs/c").unwrap().uuid(), a.uuid());
    store.create_lvol("a", MIB, &thin()).await.unwrap();
    let d = a.open(OpenMode::Shared).unwrap();
    d.write(0, pattern(1, 512), false).await.unwrap();
    a.set_read_only().await.unwrap();
    assert!(a.is_read_only().unwrap());
    assert!(matches!(
        d.write(0, pattern(1, 512), false).await,
        Err(LvolError::ReadOnly)
    ));
    assert!(matches!(
        d.write_zeroes(0, 512, false).await,
        Err(LvolError::ReadOnly)
    ));
    assert!(matches!(a.resize(2 * MIB).await, Err(LvolError::ReadOnly)));
    assert_eq!(read(&d, 0, 512).await, pattern(1, 512).to_vec());
}

#[tokio::test]
async fn io_range_and_alignment_errors() {
    let (_reg, store, _) = ram_store(32).await;
    let a = store.create_lvol("a", MIB, &thin()).await.unwrap();
    let d = a.open(OpenMode::Shared).unwrap();
    let mut buf = bytes::BytesMut::new();
    assert!(matches!(
        d.read(1, 512, &mut buf).await,
        Err(LvolError::Misaligned { .. })
    ));
    assert!(matches!(
        d.read(0, 100, &mut buf).await,
        Err(LvolError::Misaligned { .. })
    ));
    assert!(matches!(
        d.read(MIB, 512, &mut buf).await,
        Err(LvolError::OutOfRange { .. })
    ));
    assert!(matches!(
        d.write(u64::MAX - 511, pattern(0, 512), false).await,
        Err(LvolError::OutOfRange { .. })
    ));
    assert!(matches!(
        d.deallocate(MIB - 512, 1024).await,
        Err(LvolError::OutOfRange { .. })
    ));
    assert!(buf.is_empty());
}

#[tokio::test]
async fn delete_refuses_exported_and_open_lvols() {
    let (reg, store, _) = ram_store(32).await;
    let a = store.create_lvol("a", MIB, &thin()).await.unwrap();
    let export = a.open(OpenMode::Export).unwrap();
    assert!(a.is_exported());
    assert!(matches!(a.open(OpenMode::Export), Err(LvolError::Busy(_))));
    assert!(matches!(
        a.delete(&Progress::new()).await,
        Err(LvolError::Busy(_))
    ));
    assert!(
        reg.lvol("lvs/a").is_ok(),
        "a refused delete changes nothing"
    );
    drop(export);
    let shared = a.open(OpenMode::Shared).unwrap();
    assert!(matches!(
        a.delete(&Progress::new()).await,
        Err(LvolError::Busy(_))
    ));
    drop(shared);
    let closable = a.open(OpenMode::ForceClosable).unwrap();
    let listed = reg.lvol("lvs/a").unwrap();
    a.delete(&Progress::new()).await.unwrap();
    assert!(matches!(reg.lvol("lvs/a"), Err(LvolError::NotFound(_))));
    let mut buf = bytes::BytesMut::new();
    assert!(matches!(
        closable.read(0, 512, &mut buf).await,
        Err(LvolError::Deleted)
    ));
    assert!(matches!(listed.info(), Err(LvolError::Deleted)));
    assert!(matches!(
        listed.open(OpenMode::Shared),
        Err(LvolError::Deleted)
    ));
    assert!(matches!(
        listed.delete(&Progress::new()).await,
        Err(LvolError::Busy(_) | LvolError::Deleted)
    ));
    assert_eq!(listed.uuid(), a.uuid());
    assert!(reg.list_lvols(None).is_empty());
    // The name is free again.
    store.create_lvol("a", MIB, &thin()).await.unwrap();
}

/// Closing a descriptor that is still held (a removed namespace some listing still holds)
/// unexports the lvol at once; the held descriptor then refuses I/O, and its drop closes
/// nothing twice.
#[tokio::test]
async fn a_closed_descriptor_no_longer_exports_and_refuses_io() {
    let (reg, store, _) = ram_store(32).await;
    let a = store.create_lvol("a", MIB, &thin()).await.unwrap();
    let export = a.open(OpenMode::Export).unwrap();
    export.write(0, pattern(1, 4096), false).await.unwrap();
    export.close();
    export.close();
    assert!(!a.is_exported());
    assert_eq!(a.open_count(), 0);
    let mut buf = bytes::BytesMut::new();
    assert_eq!(export.read(0, 4096, &mut buf).await, Err(LvolError::Closed));
    assert_eq!(
        export.read_now(0, 4096, &mut buf),
        Some(Err(LvolError::Closed))
    );
    assert_eq!(
        export.write_now(0, &pattern(2, 4096)),
        Some(Err(LvolError::Closed))
    );
    assert_eq!(
        export.write(0, pattern(2, 4096), false).await,
        Err(LvolError::Closed)
    );
    assert_eq!(export.flush().await, Err(LvolError::Closed));
    assert_eq!(export.deallocate(0, 4096).await, Err(LvolError::Closed));
    assert_eq!(
        export.write_zeroes(0, 4096, false).await,
        Err(LvolError::Closed)
    );
    // Re-exportable while the closed descriptor is still alive, and deletable once that
    // second export is gone: the stale one's drop must not undo the new export.
    let again = a.open(OpenMode::Export).unwrap();
    drop(export);
    assert!(a.is_exported());
    drop(again);
    a.delete(&Progress::new()).await.unwrap();
    assert!(reg.list_lvols(None).is_empty());
}

#[tokio::test]
async fn delete_clears_with_the_clear_method_and_reports_progress() {
    let (_reg, store, ram) = ram_store(32).await;
    let free0 = store.info().unwrap().free_clusters;
    for (name, method) in [
        ("u", ClearMethod::Unmap),
        ("z", ClearMethod::WriteZeroes),
        ("n", ClearMethod::None),
    ] {
        let opts = LvolOptions {
            clear_method: method,
            ..thick()
        };
        let l = store.create_lvol(name, 4 * MIB, &opts).await.unwrap();
        {
            let d = l.open(OpenMode::Shared).unwrap();
            for c in 0..4 {
                d.write(c * MIB, pattern(c, MIB as usize), false)
                    .await
                    .unwrap();
            }
        }
        let before = ram.allocated_bytes();
        let p = Progress::new();
        l.delete(&p).await.unwrap();
        assert_eq!((p.done(), p.total()), (4, 4));
        let after = ram.allocated_bytes();
        match method {
            ClearMethod::None => assert_eq!(after, before),
            _ => assert_eq!(after, before - 4 * MIB, "{method}"),
        }
        assert_eq!(store.info().unwrap().free_clusters, free0);
    }
}
