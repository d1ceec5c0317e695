//! The per-command counting switch (`LAMINA_IO_STATS=off`, `stats::set_counting`): off, the
//! counters stand still and `lamina_io_stats_enabled` says so; flipped while commands run on two
//! queues, nothing breaks, the in-flight gauge comes back to 0 and counting resumes exactly. A
//! test binary of its own because the switch is process-wide.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; a panic is a failure
#![allow(clippy::float_cmp)] // counters are integers carried as f64: exact comparison is meant

mod metrics_support;

use bytes::Bytes;
use lamina_target::plane::stats::set_counting;
use metrics_support::{Metered, NQN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switched_off_counters_stand_still_and_stay_balanced() {
    let t = Metered::start().await;
    let host = t.host(2).await;
    let ns = host.namespace(1).await.unwrap();
    let block = Bytes::from(vec![7u8; usize::try_from(ns.block_size).unwrap()]);
    let q = host.io_queue(0).unwrap();
    for i in 0..10 {
        q.write(&ns, i, block.clone(), false).await.unwrap();
    }
    let write = [("subsystem", NQN), ("nsid", "1"), ("opcode", "write")];
    let before = t.scrape().await;
    assert_eq!(before.value("lamina_commands_total", &write), 10.0);
    let pdus = before.value("lamina_pdus_received_total", &[("type", "capsule_cmd")]);

    set_counting(false);
    for i in 0..10 {
        q.write(&ns, i, block.clone(), false).await.unwrap();
    }
    let off = t.scrape().await;
    assert_eq!(off.value("lamina_io_stats_enabled", &[]), 0.0);
    assert_eq!(off.value("lamina_commands_total", &write), 10.0);
    let ns1 = [("subsystem", NQN), ("nsid", "1")];
    assert_eq!(
        off.value("lamina_written_bytes_total", &ns1),
        before.value("lamina_written_bytes_total", &ns1)
    );
    assert_eq!(
        off.value("lamina_pdus_received_total", &[("type", "capsule_cmd")]),
        pdus
    );

    // Flip the switch while two queues keep commands in flight.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flipper = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut on = true;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                set_counting(on);
                on = !on;
                tokio::task::yield_now().await;
            }
        })
    };
    let io = async |qi: usize| {
        let q = host.io_queue(qi).unwrap();
        for batch in 0..25u64 {
            let writes =
                (0..16u64).map(|i| q.write(&ns, (batch * 16 + i) % 64, block.clone(), false));
            for r in futures::future::join_all(writes).await {
                r.unwrap();
            }
        }
    };
    tokio::join!(io(0), io(1));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flipper.await.unwrap();
    set_counting(true);
    let e = t.scrape().await;
    assert_eq!(e.value("lamina_commands_in_flight", &ns1), 0.0);
    let counted = e.value("lamina_commands_total", &write);
    assert!((10.0..=810.0).contains(&counted), "{counted}");

    for i in 0..5 {
        q.write(&ns, i, block.clone(), false).await.unwrap();
    }
    let e = t.scrape().await;
    assert_eq!(e.value("lamina_io_stats_enabled", &[]), 1.0);
    assert_eq!(e.value("lamina_commands_total", &write), counted + 5.0);
    host.shutdown().await.unwrap();
    t.scrape_until(|e| e.value("lamina_connections", &[]) == 0.0)
        .await;
    t.stop().await;
}
