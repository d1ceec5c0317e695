//! Lvstore teardown racing work in progress (issue 14 §1): a destroy or unload issued while a
//! delete is still clearing its clusters, while a thick create is still zeroing, or while an
//! inflate is copying, must wait for that work before it wipes or checkpoints, so nothing
//! touches the device afterwards (a new lvstore created on the same device then keeps its
//! data). On a device that yields around every operation, so the work really is in progress.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;

use super::support::*;
use crate::device::{Device, FaultDevice};
use crate::{LvolError, LvolStore, LvstoreOptions, OpenMode, Progress, Registry};

async fn store_on(dev: &FaultDevice, reg: &Registry) -> LvolStore {
    let opts = LvstoreOptions {
        clear_method: crate::ClearMethod::None,
        ..small_opts()
    };
    reg.create_lvstore(Device::Fault(dev.clone()), "f0", "lvs", &opts)
        .await
        .unwrap()
}

/// Starts `work` in its own task, lets it run a few steps, then destroys the lvstore and
/// checks that, once destroy returned, the device is never written again, and that a new
/// lvstore on it keeps what is written to it.
async fn destroy_during<F, Fut>(
    what: &str,
    dev: FaultDevice,
    reg: Registry,
    store: LvolStore,
    work: F,
) where
    F: FnOnce(LvolStore) -> Fut,
    Fut: Future<Output = Result<(), LvolError>> + Send + 'static,
{
    dev.set_yielding(true);
    let running = tokio::spawn(work(store.clone()));
    for _ in 0..2 {
        tokio::task::yield_now().await;
    }
    assert!(
        !running.is_finished(),
        "{what}: finished before the destroy started"
    );
    let destroyed = reg.destroy_lvstore(&store).await;
    let after = dev.writes();
    // Whatever the work answers (done, or refused once the store closed)...
    let _ = running.await.unwrap();
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        dev.writes(),
        after,
        "{what}: the device was written after destroy returned"
    );
    destroyed.unwrap_or_else(|e| panic!("{what}: destroy failed: {e}"));
    // ...a new lvstore on the device keeps its data.
    dev.set_yielding(false);
    let reg2 = Registry::new();
    let fresh = reg2
        .create_lvstore(Device::Fault(dev.clone()), "f0", "again", &small_opts())
        .await
        .unwrap();
    let v = fresh.create_lvol("v", 8 * MIB, &thick()).await.unwrap();
    let d = v.open(OpenMode::Shared).unwrap();
    for c in 0..8u64 {
        d.write(c * MIB, pattern(c, 4096), false).await.unwrap();
    }
    d.flush().await.unwrap();
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    for c in 0..8u64 {
        assert_eq!(
            read(&d, c * MIB, 4096).await,
            pattern(c, 4096).to_vec(),
            "{what}"
        );
    }
}

#[tokio::test]
async fn destroy_waits_for_a_delete_still_clearing() {
    let dev = FaultDevice::new(64 * MIB, 512).unwrap();
    let reg = Registry::new();
    let store = store_on(&dev, &reg).await;
    let opts = crate::LvolOptions {
        clear_method: crate::ClearMethod::WriteZeroes,
        ..thick()
    };
    // Two thick lvols grown in turn, so the doomed one's clusters are not contiguous and
    // every one of them is a clear of its own.
    let doomed = store.create_lvol("doomed", MIB, &opts).await.unwrap();
    let other = store.create_lvol("other", MIB, &opts).await.unwrap();
    for mib in 2..=24 {
        doomed.resize(mib * MIB).await.unwrap();
        other.resize(mib * MIB).await.unwrap();
    }
    destroy_during("delete clearing", dev, reg, store, |s| async move {
        s.lvol("doomed")?.delete(&Progress::new()).await
    })
    .await;
}

#[tokio::test]
async fn destroy_waits_for_a_thick_create_still_zeroing() {
    let dev = FaultDevice::new(64 * MIB, 512).unwrap();
    let reg = Registry::new();
    let store = store_on(&dev, &reg).await;
    // Free space in holes one cluster wide: the new thick lvol is zeroed hole by hole.
    let a = store.create_lvol("a", MIB, &thick()).await.unwrap();
    let b = store.create_lvol("b", MIB, &thick()).await.unwrap();
    for mib in 2..=24 {
        a.resize(mib * MIB).await.unwrap();
        b.resize(mib * MIB).await.unwrap();
    }
    a.delete(&Progress::new()).await.unwrap();
    destroy_during("thick create", dev, reg, store, |s| async move {
        s.create_lvol("thick", 20 * MIB, &thick()).await.map(drop)
    })
    .await;
}

#[tokio::test]
async fn destroy_waits_for_an_inflate_still_copying() {
    let dev = FaultDevice::new(64 * MIB, 512).unwrap();
    let reg = Registry::new();
    let store = store_on(&dev, &reg).await;
    let v = store.create_lvol("v", 6 * MIB, &thin()).await.unwrap();
    {
        let d = v.open(OpenMode::Shared).unwrap();
        for c in 0..6u64 {
            d.write(c * MIB, Bytes::from(vec![9u8; 4096]), false)
                .await
                .unwrap();
        }
    }
    v.snapshot("s").await.unwrap();
    let v = Arc::new(v);
    destroy_during("inflate", dev, reg, store, move |_| async move {
        v.inflate(&Progress::new()).await
    })
    .await;
}

/// A delete whose metadata operation is refused (here: the lvstore stopped accepting changes
/// after a failed metadata write) changes nothing: the lvol is listed again, live, under its
/// name, and can be opened and read (issue 14 §1: it used to stay half-deleted, gone from
/// listings but in the metadata, its name taken, back after a restart).
#[tokio::test]
async fn a_refused_delete_leaves_the_lvol_as_it_was() {
    let dev = FaultDevice::new(16 * MIB, 512).unwrap();
    let reg = Registry::new();
    let store = store_on(&dev, &reg).await;
    let v = store.create_lvol("v", 2 * MIB, &thick()).await.unwrap();
    {
        let d = v.open(OpenMode::Shared).unwrap();
        d.write(0, pattern(5, 4096), true).await.unwrap();
    }
    // The next metadata write fails: the lvstore then refuses every change.
    dev.fail_after(dev.writes(), crate::device::FaultMode::Error);
    let other = store.create_lvol("w", MIB, &thin()).await;
    assert!(other.is_err());
    let err = v.delete(&Progress::new()).await.unwrap_err();
    assert!(matches!(err, LvolError::StoreFailed), "{err}");
    let listed: Vec<String> = store.list_lvols().into_iter().map(|i| i.name).collect();
    assert!(
        listed.contains(&"v".to_owned()),
        "the lvol vanished from listings: {listed:?}"
    );
    let again = store.lvol("v").unwrap();
    assert_eq!(again.uuid(), v.uuid());
    let d = again.open(OpenMode::Shared).unwrap();
    assert_eq!(read(&d, 0, 4096).await, pattern(5, 4096).to_vec());
}

/// Destroy racing a delete that is then refused (issue 14 §2, the window the old lifecycle
/// word left open): destroy finds the lvol being deleted and leaves it to the delete; the
/// delete is called off and publishes the lvol again, live, with a descriptor still writing.
/// Destroy must then close and drain that lvol too before it wipes: once destroy returned,
/// the device is never written again and the writer's next write is refused.
#[tokio::test]
async fn destroy_closes_an_lvol_a_refused_delete_published_again() {
    use crate::lifecycle::{LvolState, StoreState};
    use std::sync::atomic::{AtomicU64, Ordering};

    let dev = FaultDevice::new(16 * MIB, 512).unwrap();
    let reg = Registry::new();
    let store = store_on(&dev, &reg).await;
    let v = store.create_lvol("v", 4 * MIB, &thick()).await.unwrap();
    let desc = Arc::new(v.open(OpenMode::ForceClosable).unwrap());
    let written = Arc::new(AtomicU64::new(0));
    // Writes until refused, one at a time, each held at the device until released.
    let writer = {
        let (desc, written) = (desc.clone(), written.clone());
        tokio::spawn(async move {
            loop {
                match desc.write(0, pattern(1, 4096), false).await {
                    Ok(()) => written.fetch_add(1, Ordering::SeqCst),
                    Err(e) => return e,
                };
                tokio::task::yield_now().await;
            }
        })
    };
    dev.set_write_hold(true);
    while dev.held_writes() == 0 {
        tokio::task::yield_now().await;
    }
    store.0.refuse_next_removal.store(true, Ordering::SeqCst);
    let deleting = {
        let v = v.clone();
        tokio::spawn(async move { v.delete(&Progress::new()).await })
    };
    while v.core.life.state() != LvolState::Deleting {
        tokio::task::yield_now().await;
    }
    let destroying = {
        let (reg, store) = (reg.clone(), store.clone());
        tokio::spawn(async move { reg.destroy_lvstore(&store).await })
    };
    while store.0.state.get() != StoreState::Closing {
        tokio::task::yield_now().await;
    }
    // The held write finishes; the delete drains, is refused, and publishes the lvol again.
    dev.set_write_hold(false);
    let refused = deleting.await.unwrap().unwrap_err();
    assert!(matches!(refused, LvolError::MetadataFull(_)), "{refused}");
    destroying.await.unwrap().expect("destroy");
    let after = dev.writes();
    let err = tokio::time::timeout(std::time::Duration::from_secs(30), writer)
        .await
        .expect("the writer's writes are still accepted after destroy")
        .unwrap();
    assert!(matches!(err, LvolError::Unloaded), "{err}");
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        dev.writes(),
        after,
        "a write reached the device after destroy"
    );
    assert_eq!(v.core.life.state(), LvolState::Unloaded);
    assert!(written.load(Ordering::SeqCst) >= 1);
}

/// The windows above, on a device that fails (issue 14 §3: fault injection in each window).
#[derive(Debug, Clone, Copy)]
enum Window {
    DeleteClearing,
    ThickCreate,
    Inflate,
}

/// Sets up `window` on a fresh device: the store, and the work that is then in progress.
async fn window_setup(window: Window) -> (FaultDevice, Registry, LvolStore) {
    let dev = FaultDevice::new(64 * MIB, 512).unwrap();
    let reg = Registry::new();
    let store = store_on(&dev, &reg).await;
    let opts = crate::LvolOptions {
        clear_method: crate::ClearMethod::WriteZeroes,
        ..thick()
    };
    match window {
        Window::DeleteClearing | Window::ThickCreate => {
            let a = store.create_lvol("a", MIB, &opts).await.unwrap();
            let b = store.create_lvol("b", MIB, &opts).await.unwrap();
            for mib in 2..=12 {
                a.resize(mib * MIB).await.unwrap();
                b.resize(mib * MIB).await.unwrap();
            }
            if matches!(window, Window::ThickCreate) {
                a.delete(&Progress::new()).await.unwrap();
            }
        }
        Window::Inflate => {
            let v = store.create_lvol("a", 6 * MIB, &thin()).await.unwrap();
            let d = v.open(OpenMode::Shared).unwrap();
            for c in 0..6u64 {
                d.write(c * MIB, pattern(c, 4096), false).await.unwrap();
            }
            drop(d);
            v.snapshot("s").await.unwrap();
        }
    }
    (dev, reg, store)
}

async fn window_work(window: Window, s: LvolStore) -> Result<(), LvolError> {
    match window {
        Window::DeleteClearing => s.lvol("a")?.delete(&Progress::new()).await,
        Window::ThickCreate => s.create_lvol("t", 10 * MIB, &thick()).await.map(drop),
        Window::Inflate => s.lvol("a")?.inflate(&Progress::new()).await,
    }
}

/// In each window, the device starts failing every write after the next `k`, while the
/// lvstore is destroyed. Whatever each side answers: both return; once destroy returned,
/// nothing is written any more; and the media is either wiped (no lvstore) or an lvstore
/// that passes the offline check: a failing disk costs the operation, never the store.
#[tokio::test]
async fn destroy_during_each_window_on_a_failing_device() {
    use crate::device::{CrashMode, FaultMode};
    let mut outcomes = Vec::new();
    for window in [Window::DeleteClearing, Window::ThickCreate, Window::Inflate] {
        for k in [0u64, 1, 3, 8, 20] {
            let what = format!("{window:?}, failing after {k} writes");
            let (dev, reg, store) = window_setup(window).await;
            dev.set_yielding(true);
            dev.fail_after(dev.writes() + k, FaultMode::Error);
            let work = tokio::spawn(window_work(window, store.clone()));
            for _ in 0..2 {
                tokio::task::yield_now().await;
            }
            let destroyed = tokio::time::timeout(
                std::time::Duration::from_secs(30),
                reg.destroy_lvstore(&store),
            )
            .await
            .unwrap_or_else(|_| panic!("{what}: destroy hung"));
            let after = dev.writes();
            let worked = tokio::time::timeout(std::time::Duration::from_secs(30), work)
                .await
                .unwrap_or_else(|_| panic!("{what}: the work hung"))
                .unwrap();
            for _ in 0..50 {
                tokio::task::yield_now().await;
            }
            assert_eq!(
                dev.writes(),
                after,
                "{what}: written after destroy returned"
            );
            let image = Device::Fault(FaultDevice::from_image(
                dev.crash_image(CrashMode::KeepAll),
                512,
            ));
            match crate::check_device(&image).await {
                Ok(r) => assert!(r.is_consistent(), "{what}: {:?}", r.problems),
                Err(LvolError::NoLvstore) => {}
                Err(e) => panic!("{what}: the media is neither wiped nor a store: {e}"),
            }
            outcomes.push(format!(
                "{what}: destroy {:?}, work {:?}",
                destroyed.map_err(|e| e.to_string()),
                worked.map_err(|e| e.to_string())
            ));
        }
    }
    for o in &outcomes {
        eprintln!("{o}");
    }
}
