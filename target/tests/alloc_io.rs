//! The target allocates nothing per I/O command in steady state.
//!
//! A counting global allocator counts the allocations made on the target's threads only (its
//! runtime's worker and blocking threads, marked by `on_thread_start`); `lamina-perf`'s engine
//! drives the real target over loopback TCP from a thread of its own. For each namespace
//! (a RAM bdev with header and data digests, a null bdev, a thick lvol on a RAM bdev), after a
//! warm-up, `LAMINA_ALLOC_IOS` (default 100,000) 4 KiB random I/Os, half reads and half
//! writes, must leave the target's allocation count where it was, give or take a few one-off
//! growths.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lamina_integration::alloc_count::{self, CountingAlloc};
use lamina_integration::host::{ConnectOptions, Controller};
use lamina_integration::perf::engine::{Engine, Timing};
use lamina_integration::perf::live::Live;
use lamina_integration::perf::plan::ConnPlan;
use lamina_integration::perf::workload::WorkloadKind;
use lamina_target::cli::ServeArgs;
use lamina_target::logs::telemetry::LogFormat;
use lamina_target::mgmt::rpc::client::RpcClient;
use lamina_target::server;
use serde_json::{Value, json};

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

const NQN: &str = "nqn.2026-11.io.lamina:alloc";
/// Measured I/Os per namespace before the run counts as warm.
const WARM_IOS: u64 = 20_000;
/// Allocations tolerated over the whole measured window: one-off growths (a timer wheel
/// level, a pool reaching its steady size), never one per command.
const TOLERANCE: u64 = 32;

fn measured_ios() -> u64 {
    std::env::var("LAMINA_ALLOC_IOS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

async fn call(rpc: &mut RpcClient, method: &str, params: Value) -> Value {
    rpc.call(method, Some(params))
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"))
}

/// Creates the namespaces: 1 a RAM bdev, 2 a null bdev, 3 a thick lvol on a RAM bdev.
async fn configure(socket: &Path, port: u16) {
    let mut rpc = RpcClient::connect(socket).await.expect("RPC socket");
    let blocks = json!({"num_blocks": 65536, "block_size": 4096});
    for (method, name) in [
        ("bdev_malloc_create", "ram0"),
        ("bdev_null_create", "null0"),
        ("bdev_malloc_create", "ram1"),
    ] {
        let mut p = blocks.clone();
        p["name"] = json!(name);
        call(&mut rpc, method, p).await;
    }
    let p = json!({"bdev_name": "ram1", "lvs_name": "lvs", "cluster_sz": 1 << 20});
    call(&mut rpc, "bdev_lvol_create_lvstore", p).await;
    let p = json!({"lvs_name": "lvs", "lvol_name": "thick", "size_in_mib": 128});
    call(&mut rpc, "bdev_lvol_create", p).await;
    let p = json!({"nqn": NQN, "allow_any_host": true});
    call(&mut rpc, "nvmf_create_subsystem", p).await;
    let la = json!({"trtype": "TCP", "traddr": "127.0.0.1", "trsvcid": port.to_string()});
    let p = json!({"nqn": NQN, "listen_address": la});
    call(&mut rpc, "nvmf_subsystem_add_listener", p).await;
    for (nsid, bdev) in [(1, "ram0"), (2, "null0"), (3, "lvs/thick")] {
        let p = json!({"nqn": NQN, "namespace": {"bdev_name": bdev, "nsid": nsid}});
        call(&mut rpc, "nvmf_subsystem_add_ns", p).await;
    }
}

/// What one namespace's run measured.
struct Window {
    ios: u64,
    allocs: u64,
}

/// Drives namespace `nsid` from a thread of its own; returns the allocations the target made
/// while `measured_ios()` I/Os ran after the warm-up.
fn drive(addr: std::net::SocketAddr, nsid: u32, digests: bool) -> Window {
    let live = Arc::new(Live::new(1));
    let stop = Arc::new(AtomicBool::new(false));
    let (l, s) = (live.clone(), stop.clone());
    let host = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("host runtime");
        rt.block_on(async move {
            let mut o = ConnectOptions::new(NQN)
                .expect("NQN")
                .with_digests(digests, digests);
            o.io_queues = 0;
            o.keep_alive = false;
            o.kato_ms = 0;
            o.disable_sq_flow_control = true;
            let ctrl = Controller::connect(addr, o).await.expect("connect");
            ctrl.request_io_queues(1).await.expect("I/O queues");
            let q = ctrl.io_connector().connect(1, 64).await.expect("I/O queue");
            let plan = ConnPlan {
                qid: 1,
                live_index: 0,
                nsid,
                block_size: 4096,
                io_size: 4096,
                queue_depth: 32,
                kind: WorkloadKind::Randrw,
                read_percent: 50,
                seed: u64::from(nsid),
                units: 0..16_384,
                verify: false,
            };
            let engine = Engine::new(q, plan, l).expect("engine").with_stop(s);
            let now = Instant::now();
            let timing = Timing {
                warm_end: now + Duration::from_millis(200),
                end: now + Duration::from_mins(10),
                stall_limit: Duration::from_secs(20),
            };
            let result = engine.run(timing).await.expect("engine run");
            assert_eq!(result.stats.errors, 0, "I/O errors");
            ctrl.close();
        });
    });
    let wait_for = |ios: u64| {
        let deadline = Instant::now() + Duration::from_mins(5);
        while live.snapshot().ios < ios {
            assert!(Instant::now() < deadline, "the target stalled");
            assert!(!host.is_finished(), "the host ended early");
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    wait_for(WARM_IOS);
    let (ios0, allocs0) = (live.snapshot().ios, alloc_count::total());
    wait_for(ios0 + measured_ios());
    let (ios1, allocs1) = (live.snapshot().ios, alloc_count::total());
    stop.store(true, Ordering::Relaxed);
    host.join().expect("host thread");
    Window {
        ios: ios1 - ios0,
        allocs: allocs1 - allocs0,
    }
}

#[test]
fn steady_state_io_allocates_nothing() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .on_thread_start(|| alloc_count::track_this_thread(true))
        .enable_all()
        .build()
        .expect("target runtime");
    let dir = tempfile::tempdir().expect("data directory");
    let cfg = dir.path().join("empty.toml");
    std::fs::write(&cfg, "# nothing\n").expect("config");
    let args = ServeArgs {
        listen: vec!["127.0.0.1:0".parse().expect("address")],
        data_dir: dir.path().join("data"),
        rpc_socket: None,
        rpc_listen: None,
        metrics: None,
        config: Some(cfg),
        no_default: false,
        log_level: None,
        log_format: LogFormat::Text,
        limits: lamina_target::cli::LimitArgs::default(),
        metrics_allow: Vec::new(),
        allow_path: Vec::new(),
        pending_retry_interval: std::time::Duration::from_secs(30),
        io_uring: None,
        conn_runtime: None,
        io_stats: None,
        busy_poll_us: None,
        zero_copy_min: None,
        cores: None,
    };
    let running = rt.block_on(server::start(&args)).expect("target starts");
    let addr = running.ports[0];
    rt.block_on(configure(&running.rpc_socket, addr.port()));
    for (nsid, what, digests) in [
        (1, "RAM bdev, digests on", true),
        (2, "null bdev", false),
        (3, "thick lvol on RAM", false),
    ] {
        let w = drive(addr, nsid, digests);
        eprintln!("{what}: {} I/Os, {} target allocations", w.ios, w.allocs);
        assert!(w.ios >= measured_ios());
        assert!(
            w.allocs <= TOLERANCE,
            "{what}: {} allocations on the target for {} I/Os",
            w.allocs,
            w.ios
        );
    }
    rt.block_on(server::shutdown(&running));
}
