//! `lamina-perf`'s engine allocates nothing per I/O in steady state. A counting global
//! allocator counts the allocations made on the engine's thread only (the mock target runs on
//! other threads); the same load is run for a short and a long window, and the extra I/Os of
//! the long run must not bring extra allocations.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lamina_integration::host::{ConnectOptions, Controller};
use lamina_integration::perf::engine::{Engine, Timing};
use lamina_integration::perf::live::Live;
use lamina_integration::perf::plan::ConnPlan;
use lamina_integration::perf::workload::WorkloadKind;
use support::mock::{MOCK_NQN, MockConfig, MockTarget};

thread_local! {
    static TRACK: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

struct Counting;

fn note() {
    let tracking = TRACK.try_with(Cell::get).unwrap_or(false);
    if tracking {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
    }
}

#[allow(unsafe_code)]
// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// caller's obligations are exactly the ones `System` needs; the counting touches only
// const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

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
            COUNT.with(|c| c.set(0));
            TRACK.with(|t| t.set(true));
            let result = engine.run(timing).await;
            TRACK.with(|t| t.set(false));
            let allocs = COUNT.with(Cell::get);
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
