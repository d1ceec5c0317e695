//! The checks and the repair against a store damaged the way issue 12 §1 saw it: a release
//! record that never reached the journal, followed by a map of the same cluster, so replay
//! meets a map onto a mapped entry and refuses the lvstore.

use bytes::Bytes;

use super::support::*;
use crate::device::{CrashMode, Device, FaultDevice};
use crate::format::record::Op;
use crate::{OpenMode, Registry, check_device, repair_device};

/// An lvstore whose journal holds a map of `vol` cluster 0 over an existing mapping, the
/// newest data being 0x77 at the start of cluster 0.
async fn damaged() -> FaultDevice {
    let dev = FaultDevice::new(16 * MIB, 512).unwrap();
    let reg = Registry::new();
    let store = reg
        .create_lvstore(Device::Fault(dev.clone()), "f0", "lvs", &small_opts())
        .await
        .unwrap();
    let vol = store.create_lvol("vol", 4 * MIB, &thin()).await.unwrap();
    let desc = vol.open(OpenMode::Export).unwrap();
    desc.write(0, pattern(1, 4096), false).await.unwrap();
    desc.write(MIB, pattern(2, 4096), false).await.unwrap();
    desc.flush().await.unwrap();
    // The lost record: the release applies in memory only, as when a dropped writer took it.
    {
        let mut m = store.0.md.meta.lock();
        let op = Op::Release {
            uuid: vol.uuid(),
            start: 0,
            count: 1,
            zero: false,
        };
        let freed = m.state.apply(&op).unwrap().freed;
        assert_eq!(freed.len(), 1);
    }
    desc.write(0, Bytes::from(vec![0x77; 4096]), true)
        .await
        .unwrap();
    let online = store.check().await.unwrap();
    assert!(
        online
            .problems
            .iter()
            .any(|p| p.contains("does not load") || p.contains("disagree")),
        "the online check must see the lost record: {:?}",
        online.problems
    );
    FaultDevice::from_image(dev.crash_image(CrashMode::KeepAll), 512)
}

#[tokio::test]
async fn the_offline_check_reports_and_the_repair_recovers_the_newest_data() {
    let dev = damaged().await;
    let err = Registry::new()
        .load_lvstore(Device::Fault(dev.clone()), "f0")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not mappable"), "{err}");

    let report = check_device(&Device::Fault(dev.clone())).await.unwrap();
    assert!(!report.is_consistent());
    assert!(report.problems[0].contains("does not load"), "{report:?}");
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("newer mapping was kept")),
        "the check says what a repair would do: {report:?}"
    );

    let r = repair_device(Device::Fault(dev.clone())).await.unwrap();
    assert_eq!(r.changes.len(), 1, "{:?}", r.changes);
    assert!(r.after.is_consistent(), "{:?}", r.after.problems);
    assert_eq!(
        r.after.journal_batches, 0,
        "the repair supersedes the journal"
    );

    let store = Registry::new()
        .load_lvstore(Device::Fault(dev), "f0")
        .await
        .unwrap();
    let d = store.lvol("vol").unwrap().open(OpenMode::Shared).unwrap();
    assert_eq!(read(&d, 0, 4096).await, vec![0x77; 4096]);
    assert_eq!(read(&d, MIB, 4096).await, pattern(2, 4096).to_vec());
    let online = store.check().await.unwrap();
    assert!(online.is_consistent(), "{:?}", online.problems);
}

#[tokio::test]
async fn a_consistent_store_checks_clean_and_repair_changes_nothing() {
    let (_reg, store, ram) = ram_store(16).await;
    let vol = store.create_lvol("vol", 2 * MIB, &thin()).await.unwrap();
    let snap = vol.snapshot("snap").await.unwrap();
    snap.create_clone("clone").await.unwrap();
    let online = store.check().await.unwrap();
    assert!(online.is_consistent(), "{:?}", online.problems);
    assert_eq!(online.lvols, 3);
    let offline = check_device(&Device::Ram(ram.clone())).await.unwrap();
    assert!(offline.is_consistent(), "{:?}", offline.problems);
    assert!(offline.journal_records > 0);
}
