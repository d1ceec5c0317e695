//! Reads and writes done at once (`LvolDesc::read_now`, `write_now`): they answer only when
//! the asynchronous path would not have waited, give the same data and errors, and when they
//! decline they have changed nothing.

use super::support::*;
use crate::{LvolError, OpenMode};

#[tokio::test]
async fn write_now_only_lands_in_allocated_clusters() {
    let (_reg, store, _) = ram_store(32).await;
    let l = store.create_lvol("v", 4 * MIB, &thin()).await.unwrap();
    let d = l.open(OpenMode::Shared).unwrap();
    let data = pattern(1, 4096);
    // Unallocated: declined, nothing allocated.
    assert!(d.write_now(0, &data).is_none());
    assert_eq!(l.num_allocated_clusters().unwrap(), 0);
    d.write(0, data.clone(), false).await.unwrap();
    // Allocated now: written at once, read back at once and by the async path.
    let again = pattern(2, 4096);
    assert!(matches!(d.write_now(8192, &again), Some(Ok(()))));
    let mut buf = bytes::BytesMut::new();
    assert!(matches!(d.read_now(8192, 4096, &mut buf), Some(Ok(()))));
    assert_eq!(buf[..], again[..]);
    assert_eq!(read(&d, 8192, 4096).await, again.to_vec());
    // A write across an allocated and an unallocated cluster: declined whole.
    let across = pattern(3, 8192);
    assert!(d.write_now(MIB - 4096, &across).is_none());
    assert_eq!(read(&d, MIB - 4096, 4096).await, zeros(4096));
    assert_eq!(l.num_allocated_clusters().unwrap(), 1);
    // Unallocated clusters read as zeros at once.
    buf.clear();
    assert!(matches!(d.read_now(2 * MIB, 4096, &mut buf), Some(Ok(()))));
    assert_eq!(buf[..], zeros(4096)[..]);
}

#[tokio::test]
async fn at_once_errors_match_the_async_path() {
    let (_reg, store, _) = ram_store(32).await;
    let l = store.create_lvol("v", 2 * MIB, &thick()).await.unwrap();
    let d = l.open(OpenMode::Shared).unwrap();
    let data = pattern(4, 4096);
    assert!(matches!(
        d.write_now(2 * MIB, &data),
        Some(Err(LvolError::OutOfRange { .. }))
    ));
    assert!(matches!(
        d.write_now(100, &data),
        Some(Err(LvolError::Misaligned { .. }))
    ));
    let mut buf = bytes::BytesMut::from(&b"kept"[..]);
    assert!(matches!(
        d.read_now(2 * MIB - 4096, 8192, &mut buf),
        Some(Err(LvolError::OutOfRange { .. }))
    ));
    assert_eq!(
        &buf[..],
        b"kept",
        "a failed read leaves the buffer as it was"
    );
    // A snapshot is read-only, at once as asynchronously.
    d.write(0, data.clone(), false).await.unwrap();
    let snap = l.snapshot("s").await.unwrap();
    let sd = snap.open(OpenMode::Shared).unwrap();
    assert!(matches!(
        sd.write_now(0, &data),
        Some(Err(LvolError::ReadOnly))
    ));
    assert!(matches!(
        sd.write(0, data.clone(), false).await,
        Err(LvolError::ReadOnly)
    ));
    // The origin's clusters now belong to the snapshot: a write must copy first, so it is
    // declined, and the snapshot keeps its data.
    assert!(d.write_now(0, &pattern(5, 4096)).is_none());
    assert_eq!(read(&sd, 0, 4096).await, data.to_vec());
    // Reads through the parent chain at once.
    buf.clear();
    assert!(matches!(d.read_now(0, 4096, &mut buf), Some(Ok(()))));
    assert_eq!(buf[..], data[..]);
}

#[tokio::test]
async fn declined_while_a_snapshot_holds_the_write_gate() {
    let (_reg, store, _) = ram_store(32).await;
    let l = store.create_lvol("v", 2 * MIB, &thick()).await.unwrap();
    let d = l.open(OpenMode::Shared).unwrap();
    let gate = d.shared().plane.gate.clone();
    let held = gate.write().await;
    assert!(d.write_now(0, &pattern(6, 4096)).is_none());
    drop(held);
    assert!(matches!(d.write_now(0, &pattern(6, 4096)), Some(Ok(()))));
}

#[tokio::test]
async fn a_file_device_is_never_done_at_once() {
    use crate::Registry;
    use crate::device::{FileDevice, FileOptions};
    let dir = tempfile::tempdir().unwrap();
    let opts = FileOptions {
        create_size_bytes: Some(16 * MIB),
        ..FileOptions::default()
    };
    let dev = FileDevice::open(dir.path().join("lvs.img"), &opts).unwrap();
    let reg = Registry::new();
    let store = reg
        .create_lvstore(dev.into(), "file0", "lvs", &small_opts())
        .await
        .unwrap();
    let l = store.create_lvol("v", 2 * MIB, &thick()).await.unwrap();
    let d = l.open(OpenMode::Shared).unwrap();
    let mut buf = bytes::BytesMut::new();
    assert!(d.read_now(0, 4096, &mut buf).is_none());
    assert!(d.write_now(0, &pattern(7, 4096)).is_none());
    assert!(buf.is_empty());
}
