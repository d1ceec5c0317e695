//! Connections that never finish (issue 20 §3): a connection must complete ICReq and Connect
//! within the connect timeout; connections that have not connected are capped in total and per
//! source address, the oldest going first when a new one arrives; connected queues fill the
//! caps only for their own source. Well-behaved hosts keep being served through a flood of
//! idle handshakes (before, 16,384 ICReq-only connections made every new host time out).

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use lamina_integration::fixtures::TestTarget;
use lamina_integration::host::{RawEvent, RawHost};
use lamina_protocol::Pdu;
use lamina_protocol::tcp::{IcReq, TxParams};
use lamina_target::cli::LimitArgs;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

async fn from(source: [u8; 4], target: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::from((source, 0))).unwrap();
    s.connect(target).await.unwrap()
}

async fn icreq_only(source: [u8; 4], target: SocketAddr) -> TcpStream {
    let mut s = from(source, target).await;
    let mut b = bytes::BytesMut::new();
    Pdu::IcReq(IcReq::default())
        .encode(TxParams::INITIAL, &mut b)
        .unwrap();
    s.write_all(&b).await.unwrap();
    s
}

/// Whether the target has closed `s` (reads EOF or a reset), waiting up to `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 512];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

async fn serves(t: &TestTarget) {
    let ctrl = t.connect().await.expect("a well-behaved host connects");
    let ns = ctrl.namespace(1).await.unwrap();
    ctrl.io_queue(0)
        .unwrap()
        .write(&ns, 0, Bytes::from(vec![3u8; 4096]), false)
        .await
        .unwrap();
    ctrl.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_connects_is_closed_at_the_timeout() {
    let t = TestTarget::start_with_limits(LimitArgs {
        connect_timeout: 1,
        ..LimitArgs::default()
    })
    .await;
    let started = Instant::now();
    // Nothing at all, then an ICReq and nothing else.
    let mut silent = from([127, 0, 0, 1], t.addr()).await;
    let mut raw = RawHost::connect(t.addr()).await.unwrap();
    raw.handshake(IcReq::default()).await.unwrap();
    raw.set_timeout(Duration::from_secs(5));
    assert_eq!(raw.recv().await.unwrap(), RawEvent::Closed);
    assert!(closed_within(&mut silent, Duration::from_secs(5)).await);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    let m = metrics(&t);
    assert!(m.contains("lamina_connect_timeouts_total 2"), "{m}");
    serves(&t).await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_handshakes_cannot_lock_out_a_host() {
    let t = TestTarget::start_with_limits(LimitArgs {
        max_connections: 64,
        max_unconnected: 32,
        max_unconnected_per_source: 16,
        ..LimitArgs::default()
    })
    .await;
    // 300 idle handshakes from two other sources: far past every cap.
    let mut flood = Vec::new();
    for i in 0..300u32 {
        let source = if i % 2 == 0 {
            [127, 0, 0, 2]
        } else {
            [127, 0, 0, 3]
        };
        flood.push(icreq_only(source, t.addr()).await);
    }
    // A host connects from 127.0.0.1, does I/O, several times over.
    for _ in 0..5 {
        tokio::time::timeout(Duration::from_secs(10), serves(&t))
            .await
            .expect("a host was locked out by idle connections");
    }
    let m = metrics(&t);
    let evicted = value(&m, "lamina_connections_evicted_total");
    assert!(evicted >= 300.0 - 32.0, "evictions: {evicted}\n{m}");
    assert!(value(&m, "lamina_connections_unconnected") <= 32.0, "{m}");
    drop(flood);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connected_queues_fill_only_their_own_source_cap() {
    let t = TestTarget::start_with_limits(LimitArgs {
        max_connections_per_source: 3,
        ..LimitArgs::default()
    })
    .await;
    // Admin + 2 I/O queues from 127.0.0.1: its cap is full of connected queues.
    let mut opts = t.options();
    opts.io_queues = 2;
    let ctrl = lamina_integration::host::Controller::connect(t.addr(), opts)
        .await
        .unwrap();
    let mut refused = from([127, 0, 0, 1], t.addr()).await;
    assert!(closed_within(&mut refused, Duration::from_secs(5)).await);
    let m = metrics(&t);
    assert!(
        m.contains("lamina_connections_refused_total{reason=\"per_source\"} 1"),
        "{m}"
    );
    // Another source is served meanwhile.
    let mut raw = from([127, 0, 0, 9], t.addr()).await;
    let mut b = bytes::BytesMut::new();
    Pdu::IcReq(IcReq::default())
        .encode(TxParams::INITIAL, &mut b)
        .unwrap();
    raw.write_all(&b).await.unwrap();
    assert!(!closed_within(&mut raw, Duration::from_millis(300)).await);
    ctrl.shutdown().await.unwrap();
    t.stop().await;
}

fn metrics(t: &TestTarget) -> String {
    lamina_target::observe::metrics::Exporter::new(&t.running().target, None)
        .unwrap()
        .render()
        .unwrap()
}

fn value(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(-1.0)
}
