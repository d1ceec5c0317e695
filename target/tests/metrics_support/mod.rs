//! Fixtures of the metrics and logging tests: an in-process target with its metrics endpoint,
//! a scrape over plain HTTP/1.1, a strict parser of the text exposition format, and hosts from
//! `lamina-integration`.

#![allow(dead_code)] // each test binary uses its own subset

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use lamina_integration::host::{ConnectOptions, Controller};
use lamina_target::cli::ServeArgs;
use lamina_target::logs::telemetry::LogFormat;
use lamina_target::mgmt::rpc::client::RpcClient;
use lamina_target::server::{self, Running};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The embedded default's subsystem.
pub const NQN: &str = lamina_target::server::DEFAULT_NQN;

/// How long one step may take before the test calls the target stalled.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// A target with the embedded default (lvstore `lvs0`, thin lvol `vol0` as namespace 1 of
/// [`NQN`]) and its metrics endpoint, on a temporary data directory.
pub struct Metered {
    pub running: Running,
    pub dir: tempfile::TempDir,
}

impl Metered {
    /// Starts it.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let args = ServeArgs {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            data_dir: dir.path().join("data"),
            rpc_socket: None,
            rpc_listen: None,
            metrics: Some("127.0.0.1:0".parse().unwrap()),
            config: None,
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
        let running = server::start(&args).await.unwrap();
        Self { running, dir }
    }

    /// The NVMe/TCP address.
    pub fn nvme_addr(&self) -> SocketAddr {
        self.running.ports[0]
    }

    /// The metrics endpoint's address.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.running.metrics_addr.unwrap()
    }

    /// One scrape, parsed and checked.
    pub async fn scrape(&self) -> Exposition {
        let (status, body) = http_get(self.metrics_addr(), "/metrics").await;
        assert_eq!(status, 200, "{body}");
        Exposition::parse(&body).unwrap_or_else(|e| panic!("{e}\n{body}"))
    }

    /// Scrapes until `done` holds (or panics after [`STEP_TIMEOUT`]); returns that scrape.
    pub async fn scrape_until(&self, done: impl Fn(&Exposition) -> bool) -> Exposition {
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        loop {
            let e = self.scrape().await;
            if done(&e) {
                return e;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "condition never held"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A JSON-RPC client.
    pub async fn rpc(&self) -> RpcClient {
        rpc_client(&self.running.rpc_socket).await
    }

    /// A host controller of the default subsystem with `io_queues` I/O queues.
    pub async fn host(&self, io_queues: u16) -> Controller {
        let mut opts = ConnectOptions::new(NQN).unwrap();
        opts.io_queues = io_queues;
        tokio::time::timeout(STEP_TIMEOUT, Controller::connect(self.nvme_addr(), opts))
            .await
            .expect("connect timed out")
            .unwrap()
    }

    /// Stops the target.
    pub async fn stop(self) {
        server::shutdown(&self.running).await;
    }
}

/// A JSON-RPC client whose calls time out.
pub async fn rpc_client(socket: &Path) -> RpcClient {
    let mut c = RpcClient::connect(socket).await.unwrap();
    c.set_timeout(STEP_TIMEOUT);
    c
}

/// Calls `method`, panicking on error.
pub async fn call(c: &mut RpcClient, method: &str, params: Value) -> Value {
    c.call(method, Some(params))
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"))
}

/// Writes each `(name, text)` key to a mode-600 file in `dir` and adds it to the keyring.
pub async fn add_keys(c: &mut RpcClient, dir: &Path, keys: &[(&str, String)]) {
    use std::os::unix::fs::PermissionsExt as _;
    for (name, text) in keys {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        call(
            c,
            "keyring_file_add_key",
            serde_json::json!({"name": name, "path": p}),
        )
        .await;
    }
}

/// `GET path` over a fresh connection: status and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    try_http_get(addr, path)
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// `GET path` over a fresh connection, or why it failed (refused, timed out, malformed).
pub async fn try_http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: lamina\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await?;
        let mut raw = String::new();
        s.read_to_string(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(STEP_TIMEOUT, exchange)
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let (head, body) = raw.split_once("\r\n\r\n").ok_or("no header end")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Err("the exposition must be sent with a Content-Length".into());
    }
    Ok((status, body.to_owned()))
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed scrape: `# TYPE` per family and every sample.
#[derive(Debug, Default)]
pub struct Exposition {
    pub types: BTreeMap<String, String>,
    pub helps: BTreeMap<String, String>,
    pub samples: Vec<Sample>,
}

impl Exposition {
    /// Parses the text format strictly: every sample belongs to the family whose `# TYPE` came
    /// last (with `_bucket`/`_sum`/`_count` for histograms), no series twice, values are numbers.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut e = Self::default();
        let mut current: Option<(String, String)> = None;
        let mut seen = BTreeSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').ok_or(format!("bad HELP: {line}"))?;
                e.helps.insert(name.to_owned(), help.to_owned());
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').ok_or(format!("bad TYPE: {line}"))?;
                if e.types.insert(name.to_owned(), kind.to_owned()).is_some() {
                    return Err(format!("family {name} declared twice"));
                }
                current = Some((name.to_owned(), kind.to_owned()));
            } else if !line.starts_with('#') && !line.is_empty() {
                let s = parse_sample(line)?;
                let (family, kind) = current.as_ref().ok_or(format!("no TYPE before {line}"))?;
                if !belongs(&s.name, family, kind) {
                    return Err(format!("{} outside its family {family}", s.name));
                }
                let key = format!("{}{:?}", s.name, s.labels);
                if !seen.insert(key.clone()) {
                    return Err(format!("duplicate series {key}"));
                }
                e.samples.push(s);
            }
        }
        Ok(e)
    }

    /// Samples named `name` whose labels include every pair of `labels`.
    pub fn find<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&str, &str)],
    ) -> impl Iterator<Item = &'a Sample> {
        self.samples.iter().filter(move |s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// The value of the one sample matching, panicking if there is not exactly one.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<&Sample> = self.find(name, labels).collect();
        assert_eq!(found.len(), 1, "{name}{labels:?}: {found:?}");
        found[0].value
    }

    /// The sum over the samples matching.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.find(name, labels).map(|s| s.value).sum()
    }

    /// Whether any sample matches.
    pub fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.find(name, labels).next().is_some()
    }
}

fn belongs(sample: &str, family: &str, kind: &str) -> bool {
    if sample == family {
        return kind != "histogram";
    }
    kind == "histogram"
        && sample
            .strip_prefix(family)
            .is_some_and(|s| matches!(s, "_bucket" | "_sum" | "_count"))
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let (series, value) = line.rsplit_once(' ').ok_or(format!("bad sample: {line}"))?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().map_err(|_| format!("bad value in {line}"))?,
    };
    let (name, labels) = match series.split_once('{') {
        None => (series, BTreeMap::new()),
        Some((name, rest)) => {
            let body = rest
                .strip_suffix('}')
                .ok_or(format!("bad labels: {line}"))?;
            (
                name,
                parse_labels(body).map_err(|e| format!("{e}: {line}"))?,
            )
        }
    };
    let valid = |s: &str| {
        s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    if !valid(name) || !labels.keys().all(|k| valid(k)) {
        return Err(format!("bad name: {line}"));
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

fn parse_labels(mut body: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    while !body.is_empty() {
        let (key, rest) = body.split_once("=\"").ok_or("label without =\"")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err("dangling escape".into()),
                },
                Some((_, c)) => value.push(c),
                None => return Err("unterminated label value".into()),
            }
        };
        if out.insert(key.to_owned(), value).is_some() {
            return Err(format!("label {key} twice"));
        }
        body = &rest[end + 1..];
        body = body.strip_prefix(',').unwrap_or(body);
    }
    Ok(out)
}
