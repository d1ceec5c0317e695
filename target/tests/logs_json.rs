//! `lamina serve --log-format json` as a container runs it: the real binary, stderr read line
//! by line. Every line is one JSON object; lifecycle events are at info with their span
//! (`conn` with peer, qid, cntlid, hostnqn; `rpc` with method); hundreds of I/Os add no line
//! above debug; a host's repeated protocol violations warn once per connection; SIGTERM ends
//! in a clean exit.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; a panic is a failure
#![allow(clippy::float_cmp)] // counters are integers carried as f64: exact comparison is meant

mod metrics_support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use lamina_integration::host::{ConnectOptions, Controller, RawHost};
use lamina_protocol::Pdu;
use lamina_protocol::fabrics::{ConnectCommand, ConnectData};
use lamina_protocol::nvme::{SglDescriptor, StatusCode};
use lamina_protocol::tcp::{CapsuleCmd, Digests, IcReq};
use metrics_support::{NQN, call, http_get, rpc_client};
use serde_json::{Value, json};

const WRITES: u64 = 300;

/// The running binary and its parsed log lines.
struct Serve {
    child: Child,
    lines: mpsc::Receiver<Value>,
    seen: Vec<Value>,
    _dir: tempfile::TempDir,
    data_dir: std::path::PathBuf,
}

impl Serve {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let mut child = Command::new(env!("CARGO_BIN_EXE_lamina"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--metrics",
                "127.0.0.1:0",
            ])
            .args(["--log-format", "json", "--log-level", "info"])
            .arg("--data-dir")
            .arg(&data_dir)
            .env_remove("RUST_LOG")
            .env_remove("LAMINA_LOG_LEVEL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let line = line.unwrap();
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
                assert!(v.is_object(), "{line}");
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
            _dir: dir,
            data_dir,
        }
    }

    /// Waits for the first event whose message is `message`.
    fn wait_for(&mut self, message: &str) -> Value {
        if let Some(v) = self.seen.iter().find(|v| v["message"] == message) {
            return v.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no '{message}' in {:#?}", self.seen));
            self.seen.push(v.clone());
            if v["message"] == message {
                return v;
            }
        }
    }

    /// Everything logged so far.
    fn drain(&mut self) -> &[Value] {
        while let Ok(v) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.seen.push(v);
        }
        &self.seen
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn addr_field(v: &Value, field: &str) -> SocketAddr {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {v}"))
        .parse()
        .unwrap()
}

fn level(v: &Value) -> &str {
    v["level"].as_str().unwrap_or("")
}

/// A Connect whose in-capsule data has a wrong data digest, as raw bytes.
fn connect_with_bad_digest(cid: u16) -> Vec<u8> {
    let opts = ConnectOptions::new(NQN).unwrap();
    let mut sqe = ConnectCommand {
        cid,
        qid: 0,
        sqsize: 31,
        kato_ms: 0,
        ..ConnectCommand::default()
    }
    .to_sqe();
    let mut data = BytesMut::new();
    ConnectData {
        hostid: opts.hostid,
        cntlid: 0xFFFF,
        subnqn: opts.subnqn,
        hostnqn: opts.hostnqn,
    }
    .encode(&mut data);
    sqe.dptr = SglDescriptor::in_capsule(0, u32::try_from(data.len()).unwrap());
    let pdu = Pdu::CapsuleCmd(CapsuleCmd {
        sqe,
        data: data.freeze(),
    });
    let mut tx = lamina_protocol::tcp::TxParams::INITIAL;
    tx.digests = Digests {
        header: false,
        data: true,
    };
    let mut buf = BytesMut::new();
    pdu.encode(tx, &mut buf).unwrap();
    let last = buf.len() - 1;
    buf[last] ^= 0xFF;
    buf.to_vec()
}

/// Start-up: the listener and endpoint events, then readiness; returns both addresses.
async fn started(s: &mut Serve) -> (SocketAddr, SocketAddr) {
    let up = s.wait_for("NVMe/TCP listener up");
    assert_eq!(level(&up), "INFO");
    assert!(
        up["timestamp"].is_string() && up["target"].is_string(),
        "{up}"
    );
    let nvme = addr_field(&up, "addr");
    let endpoint = s.wait_for("metrics endpoint up (/metrics, /healthz, /readyz)");
    let metrics = addr_field(&endpoint, "bound");
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(metrics, "/readyz").await.0 != 200 {
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (nvme, metrics)
}

/// A host connects, writes, disconnects: info events in the conn span, none per I/O.
async fn host_session(s: &mut Serve, nvme: SocketAddr) {
    let before = s.drain().len();
    let mut opts = ConnectOptions::new(NQN).unwrap();
    opts.io_queues = 1;
    let hostnqn = opts.hostnqn.as_str().to_owned();
    let host = Controller::connect(nvme, opts).await.unwrap();
    let ns = host.namespace(1).await.unwrap();
    let block = Bytes::from(vec![3u8; usize::try_from(ns.block_size).unwrap()]);
    let q = host.io_queue(0).unwrap();
    for i in 0..WRITES {
        q.write(&ns, i, block.clone(), false).await.unwrap();
    }
    let cntlid = host.cntlid();
    host.shutdown().await.unwrap();
    let connected = s.wait_for("host connected: controller created");
    assert_eq!(level(&connected), "INFO");
    let span = &connected["span"];
    assert_eq!(span["name"], "conn", "{connected}");
    assert!(
        span["peer"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{span}"
    );
    assert_eq!(span["qid"], 0, "{span}");
    assert_eq!(span["cntlid"], u64::from(cntlid), "{span}");
    assert_eq!(span["hostnqn"], hostnqn.as_str(), "{span}");
    s.wait_for("controller removed");
    let during = s.drain().len() - before;
    assert!(
        during < 20,
        "{during} lines for one host and {WRITES} writes: something logs per I/O above debug"
    );
}

/// RPC lifecycle events carry the rpc span.
async fn rpc_events(s: &mut Serve) {
    let mut rpc = rpc_client(&s.data_dir.join("lamina.sock")).await;
    let lvol = json!({"lvs_name": "lvs0", "lvol_name": "logged", "size_in_mib": 4,
        "thin_provision": true});
    call(&mut rpc, "bdev_lvol_create", lvol).await;
    call(&mut rpc, "bdev_lvol_delete", json!({"name": "lvs0/logged"})).await;
    for (message, method) in [
        ("lvol created", "bdev_lvol_create"),
        ("lvol deleted", "bdev_lvol_delete"),
    ] {
        let v = s.wait_for(message);
        assert_eq!(level(&v), "INFO");
        assert_eq!(v["span"]["name"], "rpc", "{v}");
        assert_eq!(v["span"]["method"], method, "{v}");
    }
}

/// Three data digest errors on one connection: one warning, the rest at debug.
async fn repeated_violations(s: &mut Serve, nvme: SocketAddr, metrics: SocketAddr) {
    let mut raw = RawHost::connect(nvme).await.unwrap();
    let digests = Digests {
        header: false,
        data: true,
    };
    raw.handshake(IcReq {
        digests,
        ..IcReq::default()
    })
    .await
    .unwrap();
    for cid in 1..=3 {
        raw.send_bytes(&connect_with_bad_digest(cid)).await.unwrap();
        match raw.recv_pdu().await.unwrap() {
            Pdu::CapsuleResp(r) => {
                assert_eq!(r.cqe.status.code, StatusCode::TRANSIENT_TRANSPORT_ERROR);
            }
            other => panic!("{other:?}"),
        }
    }
    drop(raw);
    s.wait_for("data digest error: completing the command with Transient Transport Error");
    let warnings: Vec<&Value> = s
        .drain()
        .iter()
        .filter(|v| level(v) == "WARN" || level(v) == "ERROR")
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings[0]["span"]["name"], "conn");
    let (_, body) = http_get(metrics, "/metrics").await;
    assert!(
        body.contains("lamina_digest_errors_total{type=\"data\"} 3"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_spans_and_stay_quiet_per_io() {
    let mut s = Serve::start();
    let (nvme, metrics) = started(&mut s).await;
    host_session(&mut s, nvme).await;
    rpc_events(&mut s).await;
    repeated_violations(&mut s, nvme, metrics).await;
    // SIGTERM: a clean shutdown, logged, exit 0.
    let pid = s.child.id().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(kill.unwrap().success(), "kill -TERM {pid}");
    s.wait_for("shutdown complete");
    let status = s.child.wait().unwrap();
    assert!(status.success(), "{status}");
}
