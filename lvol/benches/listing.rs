//! Listing 10,000 lvols (every property, as `bdev_lvol_get_lvols` and a metrics scrape do)
//! while another thread creates and deletes lvols as fast as it can.
//!
//! `cargo bench -p lamina-lvol --bench listing`

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use lamina_lvol::device::RamDevice;
use lamina_lvol::{LvolOptions, LvstoreOptions, Progress, Registry};

const LVOLS: usize = 10_000;

fn setup(rt: &tokio::runtime::Runtime) -> Registry {
    rt.block_on(async {
        let ram = RamDevice::new(64 << 30, 512).expect("ram device");
        let reg = Registry::new();
        let opts = LvstoreOptions {
            max_lvols: Some(12_000),
            ..LvstoreOptions::default()
        };
        let store = reg
            .create_lvstore(ram.into(), "ram0", "lvs", &opts)
            .await
            .expect("lvstore");
        let thin = LvolOptions {
            thin: true,
            ..LvolOptions::default()
        };
        for i in 0..LVOLS {
            store
                .create_lvol(&format!("vol{i:05}"), 1 << 30, &thin)
                .await
                .expect("lvol");
        }
        reg
    })
}

fn churn(reg: Registry, stop: Arc<AtomicBool>, deletes: Arc<AtomicU64>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let store = reg.lvstore("lvs").expect("lvstore");
        let thin = LvolOptions {
            thin: true,
            ..LvolOptions::default()
        };
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let l = store
                .create_lvol(&format!("churn{i}"), 1 << 30, &thin)
                .await
                .expect("create");
            let s = l
                .snapshot(&format!("churn{i}-snap"))
                .await
                .expect("snapshot");
            l.delete(&Progress::new()).await.expect("delete");
            s.delete(&Progress::new()).await.expect("delete snapshot");
            deletes.fetch_add(2, Ordering::Relaxed);
            i += 1;
        }
    });
}

fn listing(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let reg = setup(&rt);
    let mut g = c.benchmark_group("listing");
    g.sample_size(20).measurement_time(Duration::from_secs(8));
    g.bench_function("list_10000_lvols_idle", |b| {
        b.iter(|| black_box(reg.list_lvols(None)).len());
    });
    let stop = Arc::new(AtomicBool::new(false));
    let deletes = Arc::new(AtomicU64::new(0));
    let worker = {
        let (reg, stop, deletes) = (reg.clone(), Arc::clone(&stop), Arc::clone(&deletes));
        std::thread::spawn(move || churn(reg, stop, deletes))
    };
    g.bench_function("list_10000_lvols_while_deleting", |b| {
        b.iter(|| {
            let list = reg.list_lvols(None);
            assert!(list.len() >= LVOLS);
            black_box(list).len()
        });
    });
    g.finish();
    stop.store(true, Ordering::SeqCst);
    worker.join().expect("churn thread");
    eprintln!(
        "lvols deleted during the listing benchmark: {}",
        deletes.load(Ordering::SeqCst)
    );
}

criterion_group!(benches, listing);
criterion_main!(benches);
