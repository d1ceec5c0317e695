//! What idle connections cost (issue 12 §2): the resident memory of the target process with
//! `LAMINA_IDLE_CONNECTIONS` (default 2000) connections that completed the ICReq and a Fabrics
//! Connect and then went quiet, per connection. A measurement, not a timed test: it prints the
//! figure and checks only a generous bound. Run with `--ignored`.

#![allow(clippy::unwrap_used, clippy::cast_precision_loss)]

use std::net::SocketAddr;

use lamina_integration::fixtures::TestTarget;
use lamina_integration::host::RawHost;
use lamina_protocol::nvme::Status;
use lamina_protocol::tcp::IcReq;
use lamina_target::cli::LimitArgs;

fn rss() -> u64 {
    lamina_integration::fuzz::rss_bytes(None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run with --ignored"]
async fn idle_connections_cost_a_known_amount() {
    let n: usize = std::env::var("LAMINA_IDLE_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let t = TestTarget::start_with_limits(LimitArgs {
        max_connections_per_source: n + 16,
        max_connections: n + 16,
        connect_timeout: 600,
        ..LimitArgs::default()
    })
    .await;
    let addr: SocketAddr = t.addr();
    let opts = t.options();
    let before = rss();
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let mut raw = RawHost::connect(addr).await.unwrap();
        raw.handshake(IcReq::default()).await.unwrap();
        let cqe = raw.connect_queue(&opts, 0, 32, 0xffff).await.unwrap();
        assert_eq!(cqe.status, Status::SUCCESS);
        held.push(raw);
    }
    let after = rss();
    let per = (after.saturating_sub(before)) as f64 / n as f64;
    eprintln!(
        "{n} idle connected admin queues: resident {} -> {} MiB, {:.1} KiB each (both ends of \
         each connection are in this process: the host side is counted too)",
        before >> 20,
        after >> 20,
        per / 1024.0
    );
    assert!(per < 512.0 * 1024.0, "{per} bytes per idle connection");
    drop(held);
    t.stop().await;
}
