//! CPU cost of per-command counting: what `io::counted` and the transport add to one read when
//! counting is on (two clock reads, a latency bucket and sum, the byte counter, a received and
//! a sent PDU) against what it costs when `LAMINA_IO_STATS=off` (one relaxed load of the
//! switch). Uncontended, and with a second thread hammering the same
//! namespace's counters (two I/O queues of one namespace on two cores: the cache lines bounce).
//! Also one scrape of a target with 64 namespaces on one subsystem.
//!
//! Divide the difference by lamina's CPU time per I/O (`integration/prometheus/overhead.sh`
//! prints it) for the relative overhead.
//!
//! Run: `cargo bench -p lamina-target --bench io_stats`.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use lamina_protocol::tcp::PduType;
use lamina_target::options::TransportOptions;
use lamina_target::plane::stats::{NsStats, OpClass, TransportStats, is_counting};

/// What one counted read does to the counters (see `io::counted` and `transport`).
fn counted_read(ns: &NsStats, transport: &TransportStats) {
    if !is_counting() {
        return;
    }
    let started = Instant::now();
    transport.on_pdu_rx(PduType::CAPSULE_CMD.0);
    ns.add_read(4096);
    ns.end(OpClass::Read, started.elapsed(), None);
    transport.on_pdu_tx(PduType::C2H_DATA.0);
}

fn counting(c: &mut Criterion) {
    let ns = NsStats::default();
    let transport = TransportStats::default();
    let mut g = c.benchmark_group("per_command");
    lamina_target::plane::stats::set_counting(false);
    g.bench_function("off", |b| {
        b.iter(|| counted_read(black_box(&ns), black_box(&transport)));
    });
    lamina_target::plane::stats::set_counting(true);
    g.bench_function("on", |b| {
        b.iter(|| counted_read(black_box(&ns), black_box(&transport)));
    });
    // The parts, to see where the time goes.
    g.bench_function("part_clock_pair", |b| {
        b.iter(|| black_box(Instant::now()).elapsed());
    });
    g.bench_function("part_latency_observe", |b| {
        let l = ns.latency(OpClass::Read).expect("read histogram");
        b.iter(|| l.observe(black_box(Duration::from_micros(35))));
    });
    g.bench_function("part_pdu_pair", |b| {
        b.iter(|| {
            transport.on_pdu_rx(black_box(PduType::CAPSULE_CMD.0));
            transport.on_pdu_tx(black_box(PduType::C2H_DATA.0));
        });
    });
    g.bench_function("on_contended", |b| {
        let ns = Arc::new(NsStats::default());
        let transport = Arc::new(TransportStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let other = {
            let (ns, transport, stop) = (ns.clone(), transport.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    counted_read(&ns, &transport);
                }
            })
        };
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                counted_read(black_box(&ns), black_box(&transport));
            }
            start.elapsed()
        });
        stop.store(true, Ordering::Relaxed);
        let _ = other.join();
    });
    g.finish();
}

fn scrape(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let target = rt.block_on(async {
        let target = lamina_target::mgmt::context::Target::new(TransportOptions::default());
        let mut methods = lamina_target::mgmt::methods(&target);
        let rpc = lamina_target::plane::stats::RpcStats::new(&methods.names());
        methods.set_observer(lamina_target::observe::metrics::rpc_observer(&rpc));
        let call = async |method: &str, params: serde_json::Value| {
            let req = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method,
                "params": params});
            let answer = methods.handle_value(req).await.expect("answer");
            assert!(answer.get("error").is_none(), "{method}: {answer}");
        };
        let nqn = "nqn.2026-11.io.lamina:bench";
        call(
            "nvmf_create_subsystem",
            serde_json::json!({"nqn": nqn,
            "allow_any_host": true, "max_namespaces": 64}),
        )
        .await;
        for i in 0..64 {
            let name = format!("m{i}");
            call(
                "bdev_malloc_create",
                serde_json::json!({"name": name,
                "num_blocks": 256, "block_size": 4096}),
            )
            .await;
            call(
                "nvmf_subsystem_add_ns",
                serde_json::json!({"nqn": nqn,
                "namespace": {"bdev_name": name}}),
            )
            .await;
        }
        (target, rpc)
    });
    let exporter =
        lamina_target::observe::metrics::Exporter::new(&target.0, Some(target.1.clone()))
            .expect("exporter");
    let mut g = c.benchmark_group("scrape");
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("64_namespaces", |b| {
        b.iter(|| black_box(exporter.render().expect("render").len()));
    });
    g.finish();
}

criterion_group!(benches, counting, scrape);
criterion_main!(benches);
