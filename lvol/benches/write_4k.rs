//! 4 KiB random writes, one at a time: into unallocated clusters of a thin lvol (every write
//! takes the allocation path: reserve, fill the rest of the 4 MiB cluster, map), into a thin
//! lvol whose clusters are already allocated, and into a thick lvol; on the RAM device and on
//! a file (`O_DIRECT` when the filesystem allows it) in the system temp directory.
//!
//! `cargo bench -p lamina-lvol --bench write_4k`

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use lamina_lvol::device::{Device, FileDevice, FileOptions, RamDevice};
use lamina_lvol::{LvolOptions, LvolStore, LvstoreOptions, OpenMode, Progress, Registry};

const CLUSTER: u64 = 4 << 20;
const LVOL_CLUSTERS: u64 = 256; // 1 GiB lvols

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn store(rt: &tokio::runtime::Runtime, device: Device) -> LvolStore {
    rt.block_on(async {
        Registry::new()
            .create_lvstore(device, "dev", "lvs", &LvstoreOptions::default())
            .await
            .expect("lvstore")
    })
}

/// `iters` writes, each into a cluster never written before (fresh thin lvols as needed).
fn allocating(
    rt: &tokio::runtime::Runtime,
    store: &LvolStore,
    iters: u64,
    data: &Bytes,
) -> Duration {
    rt.block_on(async {
        let thin = LvolOptions {
            thin: true,
            ..LvolOptions::default()
        };
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let mut total = Duration::ZERO;
        let mut left = iters;
        let mut round = 0;
        while left > 0 {
            let n = left.min(LVOL_CLUSTERS);
            let l = store
                .create_lvol(&format!("a{round}"), LVOL_CLUSTERS * CLUSTER, &thin)
                .await
                .expect("lvol");
            let d = l.open(OpenMode::Shared).expect("open");
            let mut order: Vec<u64> = (0..LVOL_CLUSTERS).collect();
            for i in (1..order.len()).rev() {
                order.swap(i, usize::try_from(rng.next() % (i as u64 + 1)).unwrap_or(0));
            }
            let start = Instant::now();
            for &c in order.iter().take(usize::try_from(n).unwrap_or(0)) {
                let off = c * CLUSTER + (rng.next() % (CLUSTER / 4096)) * 4096;
                d.write(off, data.clone(), false).await.expect("write");
            }
            total += start.elapsed();
            drop(d);
            l.delete(&Progress::new()).await.expect("delete");
            left -= n;
            round += 1;
        }
        total
    })
}

/// `iters` random writes into an lvol whose clusters are all allocated.
fn steady(
    rt: &tokio::runtime::Runtime,
    desc: &lamina_lvol::LvolDesc,
    iters: u64,
    data: &Bytes,
) -> Duration {
    rt.block_on(async {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let blocks = LVOL_CLUSTERS * CLUSTER / 4096;
        let start = Instant::now();
        for _ in 0..iters {
            desc.write((rng.next() % blocks) * 4096, data.clone(), false)
                .await
                .expect("write");
        }
        start.elapsed()
    })
}

fn bench_device(c: &mut Criterion, label: &str, device: Device) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let store = store(&rt, device);
    let data = Bytes::from(vec![0xa5u8; 4096]);
    let (thick, thin_full) = rt.block_on(async {
        let thick = store
            .create_lvol("thick", LVOL_CLUSTERS * CLUSTER, &LvolOptions::default())
            .await
            .expect("thick");
        let thin = LvolOptions {
            thin: true,
            ..LvolOptions::default()
        };
        let full = store
            .create_lvol("thin-full", LVOL_CLUSTERS * CLUSTER, &thin)
            .await
            .expect("thin");
        let d = full.open(OpenMode::Shared).expect("open");
        for cl in 0..LVOL_CLUSTERS {
            d.write(cl * CLUSTER, data.clone(), false)
                .await
                .expect("prefill");
        }
        (thick.open(OpenMode::Shared).expect("open"), d)
    });
    let mut g = c.benchmark_group(format!("write_4k_{label}"));
    g.sample_size(20).measurement_time(Duration::from_secs(6));
    g.bench_function("thin_allocating", |b| {
        b.iter_custom(|iters| allocating(&rt, &store, iters, &data));
    });
    g.bench_function("thin_allocated", |b| {
        b.iter_custom(|iters| steady(&rt, &thin_full, iters, &data));
    });
    g.bench_function("thick", |b| {
        b.iter_custom(|iters| steady(&rt, &thick, iters, &data));
    });
    g.finish();
}

fn ram(c: &mut Criterion) {
    let dev = RamDevice::new(8 << 30, 512).expect("ram");
    bench_device(c, "ram", dev.into());
}

fn file(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = FileOptions {
        create_size_bytes: Some(8 << 30),
        ..FileOptions::default()
    };
    let dev = FileDevice::open(dir.path().join("bench.img"), &opts).expect("file");
    eprintln!(
        "file device: O_DIRECT {}",
        if dev.is_direct() { "on" } else { "off" }
    );
    bench_device(c, "file", dev.into());
}

criterion_group!(benches, ram, file);
criterion_main!(benches);
