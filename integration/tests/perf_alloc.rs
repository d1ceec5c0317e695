//! `lamina-perf`'s engine allocates nothing per I/O in steady state. A counting global
//! allocator counts the allocations made on the engine's thread only (the mock target runs on
//! other threads); the same load is run for a short and a long window, and the extra I/Os of
//! the long run must not bring extra allocations.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use lamina_integration::alloc_count::{self, CountingAlloc};
use lamina_integration::host::{ConnectOptions, Controller};
use lamina_integration::perf::engine::{Engine, Timing};
use lamina_integration::perf::live::Live;
use lamina_integration::perf::plan::ConnPlan;
use lamina_integration::perf::workload::WorkloadKind;
use support::mock::{MOCK_NQN, MockConfig, MockTarget};

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

/// Runs one engine for `secs` (after 0.2 s of warm-up) on a fresh thread; returns the I/Os
/// measured and the allocations made on that thread while the engine ran.
fn run_engine(addr: std::net::SocketAddr, kind: WorkloadKind, secs: f64) -> (u64, u64) {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("engine run");
        rt.block_on(async move {
            let mut o = ConnectOptions::new(MOCK_NQN).expect("engine run");
            o.io_queues = 0;
            o.keep_alive = false;
            o.disable_sq_flow_control = true;
            let ctrl = Controller::connect(addr, o).await.expect("engine run");
            ctrl.request_io_queues(1).await.expect("engine run");
            let q = ctrl.io_connector().connect(1, 9).await.expect("engine run");
            let plan = ConnPlan {
                qid: 1,
                live_index: 0,
                nsid: 1,
                block_size: 4096,
                io_size: 4096,
                queue_depth: 8,
                kind,
                read_percent: kind.read_percent(50),
                seed: 3,
                units: 0..1024,
                verify: true,
            };
            let engine = Engine::new(q, plan, Arc::new(Live::new(1))).expect("engine run");
            let start = Instant::now();
            let warm_end = start + Duration::from_millis(200);
            let timing = Timing {
                warm_end,
                end: warm_end + Duration::from_secs_f64(secs),
                stall_limit: Duration::from_secs(10),
            };
            let before = alloc_count::thread_count();
            alloc_count::track_this_thread(true);
            let result = engine.run(timing).await;
            alloc_count::track_this_thread(false);
            let allocs = alloc_count::thread_count() - before;
            let result = result.expect("engine run");
            assert_eq!(result.stats.verify.mismatches, 0);
            let ios = result.stats.read.ios + result.stats.write.ios;
            ctrl.close();
            (ios, allocs)
        })
    })
    .join()
    .expect("engine run")
}

#[test]
fn engine_does_not_allocate_per_io() {
    let target_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let target = target_rt.block_on(MockTarget::start(MockConfig::default()));
    for kind in [WorkloadKind::Randrw, WorkloadKind::Randread] {
        let (short_ios, short_allocs) = run_engine(target.addr(), kind, 0.3);
        let (long_ios, long_allocs) = run_engine(target.addr(), kind, 1.2);
        let extra_ios = long_ios.saturating_sub(short_ios);
        let extra_allocs = long_allocs.saturating_sub(short_allocs);
        eprintln!(
            "{kind:?}: {short_ios} I/Os -> {short_allocs} allocations; {long_ios} I/Os -> {long_allocs}"
        );
        assert!(extra_ios > 1000, "too few I/Os to tell: {extra_ios}");
        // Nothing per I/O; a handful of one-off growths (timer wheel, buffers) may differ.
        assert!(
            extra_allocs <= 16,
            "{extra_allocs} more allocations for {extra_ios} more I/Os"
        );
    }
    drop(target);
}
