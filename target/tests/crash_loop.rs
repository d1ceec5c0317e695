//! The crash loop (issue 12 §1): the real `lamina` binary on its embedded default (a
//! file-backed lvstore, `vol0` exported) is killed with SIGKILL again and again in the middle
//! of mixed I/O (writes with and without FUA, flushes and deallocates from three queues) and
//! metadata churn over JSON-RPC (lvol create, resize and delete, snapshots of the exported
//! lvol and their deletion, which merges them). After every kill it must start again, its
//! lvstore must load and pass the online check, every write acknowledged as durable (FUA, or
//! followed by an acknowledged flush) must read back, every other block must hold one of the
//! values it may hold, and every acknowledged management operation must be there.
//!
//! `LAMINA_CRASH_CYCLES` sets the number of kills (default 12; the nightly stress runs 150).

#![allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    clippy::many_single_char_names
)] // a panic is a failure; short names mirror the model

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use lamina_integration::host::{ConnectOptions, Controller, Namespace, Queue};
use lamina_protocol::nvme::DsmRange;
use lamina_target::mgmt::rpc::client::RpcClient;
use parking_lot::Mutex;
use serde_json::json;
use tokio::process::{Child, Command};

const NQN: &str = lamina_target::server::DEFAULT_NQN;
const CLUSTER: u64 = 4 << 20;
const BLOCK: u64 = 4096;
const CLUSTER_BLOCKS: u64 = CLUSTER / BLOCK;
const WRITERS: u64 = 3;
const REGION_CLUSTERS: u64 = 12;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Val {
    Zero,
    Seed(u32),
}

fn data(block: u64, v: Val) -> Bytes {
    match v {
        Val::Zero => Bytes::from(vec![0u8; BLOCK as usize]),
        Val::Seed(s) => {
            let mut x = (u64::from(s) << 24 | block).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut v = Vec::with_capacity(BLOCK as usize);
            while v.len() < BLOCK as usize {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                v.extend_from_slice(&x.to_le_bytes());
            }
            Bytes::from(v)
        }
    }
}

/// What one block may hold: its durable value, plus values written since that a crash may or
/// may not have kept (in flight, or acknowledged without FUA and not flushed yet).
#[derive(Debug, Clone)]
struct BlockModel {
    durable: Val,
    maybe: Vec<Val>,
}

type Blocks = Arc<Mutex<HashMap<u64, BlockModel>>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Exists,
    Absent,
    Either,
}

#[derive(Debug, Default)]
struct Counts {
    writes: AtomicU64,
    flushes: AtomicU64,
    deallocs: AtomicU64,
    mgmt: AtomicU64,
}

fn spawn_serve(data_dir: &Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_lamina"))
        .args(["serve", "--log-level", "warn", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn wait_up(socket: &Path, child: &mut Child) -> RpcClient {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut c) = RpcClient::connect(socket).await {
            c.set_timeout(support::CALL_TIMEOUT);
            if c.call("framework_wait_init", None).await.is_ok() {
                return c;
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "lamina serve exited during start-up: the lvstore did not load"
        );
        assert!(Instant::now() < deadline, "lamina serve did not come up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn block_of(writer: u64, n: u64) -> u64 {
    let owned = REGION_CLUSTERS / WRITERS;
    let n = n % (owned * CLUSTER_BLOCKS);
    (writer + WRITERS * (n / CLUSTER_BLOCKS)) * CLUSTER_BLOCKS + n % CLUSTER_BLOCKS
}

fn may(blocks: &Blocks, first: u64, n: u64, v: Val) {
    let mut m = blocks.lock();
    for b in first..first + n {
        let e = m.entry(b).or_insert(BlockModel {
            durable: Val::Zero,
            maybe: Vec::new(),
        });
        e.maybe.push(v);
    }
}

fn durable(blocks: &Blocks, first: u64, n: u64, v: Val) {
    let mut m = blocks.lock();
    for b in first..first + n {
        m.insert(
            b,
            BlockModel {
                durable: v,
                maybe: Vec::new(),
            },
        );
    }
}

/// An acknowledged flush makes the last acknowledged value of each block durable.
fn flushed(blocks: &Blocks, mine: &[u64], acked: &HashMap<u64, Val>) {
    let mut m = blocks.lock();
    for b in mine {
        if let Some(v) = acked.get(b) {
            m.insert(
                *b,
                BlockModel {
                    durable: *v,
                    maybe: Vec::new(),
                },
            );
        }
    }
}

async fn writer(q: Queue, ns: Namespace, blocks: Blocks, w: u64, seed: u64, counts: Arc<Counts>) {
    let mut rng = Rng(seed | 1);
    let mut acked: HashMap<u64, Val> = HashMap::new();
    let mut touched: Vec<u64> = Vec::new();
    let per_block = BLOCK / u64::from(ns.block_size);
    loop {
        let r = match rng.below(12) {
            0 => {
                let r = q.flush(ns.nsid).await;
                if r.is_ok() {
                    flushed(&blocks, &touched, &acked);
                    counts.flushes.fetch_add(1, Ordering::Relaxed);
                }
                r
            }
            1 => {
                let first = block_of(w, rng.below(1 << 20)) / CLUSTER_BLOCKS * CLUSTER_BLOCKS;
                may(&blocks, first, CLUSTER_BLOCKS, Val::Zero);
                let range = DsmRange {
                    context_attributes: 0,
                    nlb: (CLUSTER / u64::from(ns.block_size)) as u32,
                    slba: first * per_block,
                };
                let r = q.dataset_management(ns.nsid, &[range], true).await;
                if r.is_ok() {
                    for b in first..first + CLUSTER_BLOCKS {
                        acked.insert(b, Val::Zero);
                        touched.push(b);
                    }
                    counts.deallocs.fetch_add(1, Ordering::Relaxed);
                }
                r
            }
            _ => {
                let first = block_of(w, rng.below(1 << 20));
                let room = CLUSTER_BLOCKS - first % CLUSTER_BLOCKS;
                let n = (1 + rng.below(8)).min(room);
                let v = Val::Seed(rng.next() as u32);
                let fua = rng.below(4) == 0;
                let mut buf = BytesMut::new();
                for b in first..first + n {
                    buf.extend_from_slice(&data(b, v));
                }
                may(&blocks, first, n, v);
                let r = q.write(&ns, first * per_block, buf.freeze(), fua).await;
                if r.is_ok() {
                    counts.writes.fetch_add(1, Ordering::Relaxed);
                    if fua {
                        durable(&blocks, first, n, v);
                    }
                    for b in first..first + n {
                        acked.insert(b, v);
                        touched.push(b);
                    }
                }
                r
            }
        };
        if r.is_err() {
            return; // the target was killed: what was in flight stays uncertain
        }
        touched.sort_unstable();
        touched.dedup();
    }
}

struct Churn {
    names: HashMap<String, Expect>,
    created: Vec<String>,
    snapshots: Vec<String>,
    next: u64,
}

async fn churn(socket: PathBuf, model: Arc<Mutex<Churn>>, seed: u64, counts: Arc<Counts>) {
    let Ok(mut c) = RpcClient::connect(&socket).await else {
        return;
    };
    c.set_timeout(Duration::from_secs(5));
    let mut rng = Rng(seed | 1);
    loop {
        let (method, params, name, becomes) = {
            let mut m = model.lock();
            m.next += 1;
            let n = m.next;
            match rng.below(5) {
                0 | 1 => {
                    let name = format!("c{n}");
                    m.names.insert(name.clone(), Expect::Either);
                    m.created.push(name.clone());
                    let p = json!({"lvs_name": "lvs0", "lvol_name": name, "size_in_mib": 8,
                        "thin_provision": true});
                    ("bdev_lvol_create", p, name, Expect::Exists)
                }
                2 if !m.created.is_empty() => {
                    let i = rng.below(m.created.len() as u64) as usize;
                    let name = m.created.remove(i);
                    m.names.insert(name.clone(), Expect::Either);
                    let p = json!({"name": format!("lvs0/{name}")});
                    ("bdev_lvol_delete", p, name, Expect::Absent)
                }
                3 if m.snapshots.len() < 3 => {
                    let name = format!("s{n}");
                    m.names.insert(name.clone(), Expect::Either);
                    m.snapshots.push(name.clone());
                    let p = json!({"lvol_name": "lvs0/vol0", "snapshot_name": name});
                    ("bdev_lvol_snapshot", p, name, Expect::Exists)
                }
                4 if !m.snapshots.is_empty() => {
                    let name = m.snapshots.remove(0);
                    m.names.insert(name.clone(), Expect::Either);
                    let p = json!({"name": format!("lvs0/{name}")});
                    ("bdev_lvol_delete", p, name, Expect::Absent)
                }
                _ => continue,
            }
        };
        match c.call(method, Some(params)).await {
            Ok(_) => {
                model.lock().names.insert(name, becomes);
                counts.mgmt.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => return, // killed mid-call: the operation stays uncertain
        }
    }
}

/// After a start: the lvstore checks clean, the lvols are as acknowledged, the data as
/// acknowledged. Collapses every uncertain block and name to what is there now.
async fn verify(
    c: &mut RpcClient,
    addr: std::net::SocketAddr,
    blocks: &Blocks,
    m: &Arc<Mutex<Churn>>,
    cycle: u32,
) {
    let what = format!("after kill {cycle}");
    let r = c
        .call("bdev_lvol_check_lvstore", Some(json!({"lvs_name": "lvs0"})))
        .await
        .unwrap();
    assert_eq!(r[0]["consistent"], true, "{what}: {r}");
    let lvols = c
        .call("bdev_lvol_get_lvols", Some(json!({"lvs_name": "lvs0"})))
        .await
        .unwrap();
    let present: Vec<String> = lvols
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_owned())
        .collect();
    {
        let mut model = m.lock();
        for (name, e) in &mut model.names {
            let here = present.contains(name);
            match e {
                Expect::Exists => assert!(here, "{what}: acknowledged lvol {name} is gone"),
                Expect::Absent => assert!(!here, "{what}: deleted lvol {name} is back"),
                Expect::Either => {}
            }
            *e = if here { Expect::Exists } else { Expect::Absent };
        }
        let names = model.names.clone();
        model
            .created
            .retain(|n| names.get(n) == Some(&Expect::Exists));
        model
            .snapshots
            .retain(|n| names.get(n) == Some(&Expect::Exists));
    }
    let opts = ConnectOptions::new(NQN).unwrap();
    let ctrl = Controller::connect(addr, opts).await.unwrap();
    let ns = ctrl.namespace(1).await.unwrap();
    let q = ctrl.io_queue(0).unwrap();
    let per_block = BLOCK / u64::from(ns.block_size);
    let chunk = 64; // 256 KiB: MDTS
    for first in (0..REGION_CLUSTERS * CLUSTER_BLOCKS).step_by(chunk as usize) {
        let got = q
            .read(
                &ns,
                first * per_block,
                (chunk * per_block) as u32,
                BytesMut::new(),
            )
            .await
            .unwrap();
        let mut model = blocks.lock();
        for b in first..first + chunk {
            let here = &got[((b - first) * BLOCK) as usize..((b - first + 1) * BLOCK) as usize];
            let e = model.entry(b).or_insert(BlockModel {
                durable: Val::Zero,
                maybe: Vec::new(),
            });
            let found = std::iter::once(e.durable)
                .chain(e.maybe.iter().copied())
                .find(|v| here == &data(b, *v)[..]);
            let Some(v) = found else {
                panic!(
                    "{what}: block {b} holds none of {:?} + {:?}",
                    e.durable, e.maybe
                );
            };
            *e = BlockModel {
                durable: v,
                maybe: Vec::new(),
            };
        }
    }
    ctrl.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_io_and_metadata_churn_always_loads_and_keeps_what_was_acknowledged() {
    let cycles: u32 = std::env::var("LAMINA_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let socket = data_dir.join("lamina.sock");
    let port = support::free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let blocks: Blocks = Arc::default();
    let model = Arc::new(Mutex::new(Churn {
        names: HashMap::new(),
        created: Vec::new(),
        snapshots: Vec::new(),
        next: 0,
    }));
    let counts = Arc::new(Counts::default());
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let started = Instant::now();
    for cycle in 0..=cycles {
        let mut child = spawn_serve(&data_dir, port);
        let mut c = wait_up(&socket, &mut child).await;
        verify(&mut c, addr, &blocks, &model, cycle).await;
        if cycle == cycles {
            // The end: a clean shutdown must leave a store that loads too.
            let pid = child.id().unwrap().to_string();
            let sent = std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status();
            assert!(sent.unwrap().success());
            let status = child.wait().await.unwrap();
            assert!(status.success(), "clean shutdown failed: {status}");
            let mut child = spawn_serve(&data_dir, port);
            let mut c = wait_up(&socket, &mut child).await;
            verify(&mut c, addr, &blocks, &model, cycle + 1).await;
            break;
        }
        let mut opts = ConnectOptions::new(NQN).unwrap();
        opts.io_queues = WRITERS as u16;
        opts.command_timeout = Duration::from_secs(10);
        let ctrl = Controller::connect(addr, opts).await.unwrap();
        let ns = ctrl.namespace(1).await.unwrap();
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let q = ctrl.io_queue(w as usize).unwrap().clone();
            let b = blocks.clone();
            tasks.push(tokio::spawn(writer(
                q,
                ns.clone(),
                b,
                w,
                rng.next(),
                counts.clone(),
            )));
        }
        tasks.push(tokio::spawn(churn(
            socket.clone(),
            model.clone(),
            rng.next(),
            counts.clone(),
        )));
        tokio::time::sleep(Duration::from_millis(200 + rng.below(1000))).await;
        child.start_kill().unwrap(); // SIGKILL: no drain, no flush, no checkpoint
        child.wait().await.unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        ctrl.close();
        drop(c);
    }
    eprintln!(
        "crash loop: {cycles} kills in {:?}; acknowledged {} writes, {} flushes, {} deallocates, \
         {} management operations",
        started.elapsed(),
        counts.writes.load(Ordering::Relaxed),
        counts.flushes.load(Ordering::Relaxed),
        counts.deallocs.load(Ordering::Relaxed),
        counts.mgmt.load(Ordering::Relaxed),
    );
}
