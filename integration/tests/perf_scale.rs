//! Scale measurements of issue 8 §6, against the release `lamina` binary run as its own
//! process (so its memory is measured alone). They are ignored by default: they take minutes,
//! print figures for `integration/PERFORMANCE.md` and only fail when the target misbehaves
//! (errors, lost lvols), never on a speed.
//!
//! ```sh
//! cargo build --release -p lamina-target
//! LAMINA_BIN=build/release/lamina cargo test --release -p lamina-integration \
//!     --test perf_scale -- --ignored --nocapture --test-threads 1
//! ```
//!
//! `LAMINA_SCALE_CONNECTIONS` (default 256) and `LAMINA_SCALE_LVOLS` (default 10,000) size
//! them.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns; a panic is a failure

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use lamina_integration::host::{ConnectOptions, Controller};
use lamina_target::mgmt::rpc::client::RpcClient;
use serde_json::{Value, json};

const NQN: &str = "nqn.2026-11.io.lamina:scale";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn lamina_bin() -> PathBuf {
    if let Ok(p) = std::env::var("LAMINA_BIN") {
        return p.into();
    }
    let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "../build".into());
    Path::new(&dir).join("release/lamina")
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A `lamina serve` process on a data directory.
struct Server {
    child: Child,
    socket: PathBuf,
}

impl Server {
    fn start(data: &Path, config: Option<&Path>) -> (Self, Duration) {
        let t0 = Instant::now();
        let mut cmd = Command::new(lamina_bin());
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data)
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", free_port()))
            .arg("--log-level")
            .arg("warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        let child = cmd.spawn().expect("lamina binary (set LAMINA_BIN)");
        let socket = data.join("lamina.sock");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_mins(10);
        loop {
            let up = rt.block_on(async {
                let Ok(mut c) = RpcClient::connect(&socket).await else {
                    return false;
                };
                c.call("spdk_get_version", None).await.is_ok()
            });
            if up {
                break;
            }
            assert!(Instant::now() < deadline, "lamina did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        (Self { child, socket }, t0.elapsed())
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

async fn call(rpc: &mut RpcClient, method: &str, params: Value) -> Value {
    rpc.call(method, Some(params))
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"))
}

#[test]
#[ignore = "a measurement: minutes, needs the release binary"]
fn memory_per_idle_connection() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("scale.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[bdev]]\nname = \"null0\"\ntype = \"null\"\nsize = \"64G\"\nblock_size = 4096\n\
             [[subsystem]]\nnqn = \"{NQN}\"\nallow_any_host = true\n\
             listeners = [\"127.0.0.1:{port}\"]\n[[subsystem.namespace]]\nbdev = \"null0\"\n"
        ),
    )
    .unwrap();
    let (server, _) = Server::start(&dir.path().join("data"), Some(&cfg));
    std::thread::sleep(Duration::from_millis(500));
    let before = server.rss_kib();
    let wanted = env_or("LAMINA_SCALE_CONNECTIONS", 256);
    let per_ctrl = 32usize;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ctrls = rt.block_on(async {
        let mut ctrls = Vec::new();
        for _ in 0..wanted.div_ceil(per_ctrl) {
            let mut o = ConnectOptions::new(NQN).unwrap();
            o.io_queues = u16::try_from(per_ctrl).unwrap();
            o.io_queue_size = 129;
            let c = Controller::connect(addr, o).await.unwrap();
            let ns = c.namespace(1).await.unwrap();
            // Warm each queue up the way a busy one is: a burst of 128 4 KiB I/Os in flight.
            let mut burst = Vec::new();
            for q in c.io_queues() {
                for i in 0..64u64 {
                    let ns = &ns;
                    burst.push(async move {
                        q.write(ns, i, Bytes::from(vec![1u8; 4096]), false).await?;
                        q.read(ns, i, 1, BytesMut::with_capacity(4096))
                            .await
                            .map(|_| ())
                    });
                }
            }
            for r in futures::future::join_all(burst).await {
                r.unwrap();
            }
            ctrls.push(c);
        }
        ctrls
    });
    std::thread::sleep(Duration::from_secs(1));
    let after = server.rss_kib();
    let conns = ctrls.iter().map(|c| c.io_queues().len() + 1).sum::<usize>();
    println!(
        "idle connections: {conns} (I/O and admin queues); RSS {before} KiB -> {after} KiB: \
         {:.1} KiB per connection after a QD128 burst each",
        (after.saturating_sub(before)) as f64 / conns as f64
    );
    for c in &ctrls {
        c.close();
    }
    drop(ctrls);
    drop(rt);
    server.stop();
}

#[test]
#[ignore = "a measurement: minutes, needs the release binary"]
fn ten_thousand_lvols() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("lvs.toml");
    let img = dir.path().join("lvs.img");
    std::fs::write(
        &cfg,
        format!(
            "[[bdev]]\nname = \"disk\"\ntype = \"aio\"\nfilename = \"{}\"\nsize = \"64G\"\n\
             block_size = 4096\n[[lvstore]]\nname = \"lvs\"\nbdev = \"disk\"\n\
             cluster_size = \"1M\"\n",
            img.display()
        ),
    )
    .unwrap();
    let (server, _) = Server::start(&data, Some(&cfg));
    let count = env_or("LAMINA_SCALE_LVOLS", 10_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let before = server.rss_kib();
    let created = Instant::now();
    rt.block_on(async {
        let mut rpc = RpcClient::connect(&server.socket).await.unwrap();
        for i in 0..count {
            let p = json!({"lvs_name": "lvs", "lvol_name": format!("v{i}"),
                "size_in_mib": 1024, "thin_provision": true});
            call(&mut rpc, "bdev_lvol_create", p).await;
        }
    });
    let created = created.elapsed();
    let after = server.rss_kib();
    let list = |server: &Server| {
        rt.block_on(async {
            let mut rpc = RpcClient::connect(&server.socket).await.unwrap();
            let t = Instant::now();
            let v = call(&mut rpc, "bdev_lvol_get_lvols", json!({})).await;
            (t.elapsed(), v.as_array().map_or(0, Vec::len))
        })
    };
    let (t_list, n) = list(&server);
    assert_eq!(n, count);
    let (t_list2, _) = list(&server);
    println!(
        "{count} thin lvols: created in {created:?} ({:.2} ms each); RSS {before} KiB -> \
         {after} KiB: {:.2} KiB per lvol; bdev_lvol_get_lvols {t_list:?} (again {t_list2:?})",
        created.as_secs_f64() * 1000.0 / count as f64,
        (after.saturating_sub(before)) as f64 / count as f64
    );
    server.stop();
    let (server, started) = Server::start(&data, Some(&cfg));
    let (t_list, n) = list(&server);
    assert_eq!(n, count, "every lvol is back after the restart");
    println!("restart: ready (RPC answering, lvstore loaded) in {started:?}; listing {t_list:?}");
    server.stop();
}
