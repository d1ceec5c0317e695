//! The HTTP endpoint for operators' tools, on `--metrics ADDR:PORT` (port 9440 by convention,
//! [`DEFAULT_METRICS_PORT`]; `0.0.0.0:9440` in the container image, compose, the systemd unit
//! and the DaemonSet):
//!
//! - `GET /metrics`: the Prometheus text exposition (see `crate::observe::metrics`).
//! - `GET /healthz`: 200 while the process runs and its runtime answers (liveness).
//! - `GET /readyz`: 200 once start-up finished: NVMe/TCP listeners bound, the persisted
//!   configuration replayed (lvstores loaded, subsystems and namespaces restored) and the RPC
//!   socket open; 503 before that and from the moment shutdown starts (readiness: take the
//!   node out of rotation, keep the process alive). Also 503 while any configuration entry is
//!   pending (a device missing at start-up, see `crate::mgmt::config`): the target then serves only
//!   part of its configuration, and hosts of the missing namespaces would find nothing. The
//!   503 body names each pending entry and why; `/healthz` stays 200, since restarting the
//!   process does not bring a device back.
//!
//! The endpoint comes up first and goes down last: during a long start-up `/healthz` already
//! answers and `/readyz` says 503, and during the shutdown drain `/readyz` says 503 while
//! `/metrics` still serves the final counters. It has its own cancellation token for that
//! reason, not a child of the target's root token.
//!
//! HTTP/1.1 via hyper; one task per connection, at most [`MAX_CONNECTIONS`] at once (a new
//! connection closes the oldest when full, see [`crate::observe::http_limits`]), only from the
//! addresses of `--metrics-allow` when it is given; request headers (the first and every next
//! one on a keep-alive connection) must arrive within [`HEADER_TIMEOUT`]; every other path is
//! a 404, every other method a 405.
//!
//! Exposure: `/metrics` names every subsystem (NQNs that discovery hides from hosts without
//! access), namespace, lvstore and lvol with its UUID. Bind it to loopback, or to the address
//! your Prometheus reaches (the pod or node IP), and list your scrapers in `--metrics-allow`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::observe::http_limits::{AllowList, ConnTable};
use tokio_util::task::TaskTracker;

/// The Prometheus text exposition content type.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The conventional metrics port (`--metrics 127.0.0.1:9440`, `0.0.0.0:9440` in containers).
pub const DEFAULT_METRICS_PORT: u16 = 9440;

/// Most HTTP connections open at once; a new one closes the oldest.
pub const MAX_CONNECTIONS: usize = 64;

/// How long a client may take to send request headers (and idle between keep-alive requests).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// How long [`Endpoint::stop`] waits for open connections.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// Renders the metrics text on demand.
pub type Render = Arc<dyn Fn() -> Result<String, String> + Send + Sync>;

/// What else may hold readiness back: `Some(body)` says why (pending configuration).
pub type ReadyCheck = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// Readiness: set once start-up finished, cleared when shutdown starts, and held back while
/// its check answers a reason.
#[derive(Default)]
pub struct Readiness {
    started: AtomicBool,
    check: parking_lot::RwLock<Option<ReadyCheck>>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("started", &self.started.load(Ordering::Relaxed))
            .field("check", &self.check.read().is_some())
            .finish()
    }
}

impl Readiness {
    /// Marks start-up finished (or shutdown started).
    pub fn set(&self, ready: bool) {
        self.started.store(ready, Ordering::Release);
    }

    /// Also holds readiness back while `check` answers a reason.
    pub fn set_check(&self, check: ReadyCheck) {
        *self.check.write() = Some(check);
    }

    /// Whether the server is ready.
    pub fn is_ready(&self) -> bool {
        self.status().is_ok()
    }

    /// `Err(body)` says why the server is not ready.
    pub fn status(&self) -> Result<(), String> {
        if !self.started.load(Ordering::Acquire) {
            return Err("not ready: starting up or shutting down\n".to_owned());
        }
        let check = self.check.read().clone();
        match check.and_then(|c| c()) {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }
}

/// A running endpoint; dropping it stops it.
#[derive(Debug)]
pub struct Endpoint {
    addr: SocketAddr,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl Endpoint {
    /// Binds `addr` and serves until [`Endpoint::stop`] or drop.
    pub async fn start(
        addr: SocketAddr,
        render: Render,
        ready: Arc<Readiness>,
        allow: AllowList,
    ) -> std::io::Result<Self> {
        let listener = bind(addr).await?;
        let addr = listener.local_addr()?;
        let (cancel, tracker) = (CancellationToken::new(), TaskTracker::new());
        tracker.spawn(serve(
            listener,
            render,
            ready,
            allow,
            cancel.clone(),
            tracker.clone(),
        ));
        Ok(Self {
            addr,
            cancel,
            tracker,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets open requests finish (briefly), and returns.
    pub async fn stop(&self) {
        self.cancel.cancel();
        self.tracker.close();
        let _ = tokio::time::timeout(STOP_TIMEOUT, self.tracker.wait()).await;
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Serves the endpoint on `listener` until `cancel` fires; connections run in `tracker`.
pub async fn serve(
    listener: TcpListener,
    render: Render,
    ready: Arc<Readiness>,
    allow: AllowList,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let table = Arc::new(ConnTable::new(MAX_CONNECTIONS));
    let serve_one = |(stream, peer): (tokio::net::TcpStream, std::net::SocketAddr)| {
        if !allow.allows(peer.ip()) {
            tracing::debug!(%peer, "metrics endpoint: not in --metrics-allow, closed");
            return;
        }
        let (render, ready, cancel) = (render.clone(), ready.clone(), cancel.clone());
        let table = table.clone();
        tracker.spawn(async move {
            let (slot, evicted) = table.admit();
            if evicted {
                tracing::debug!("metrics endpoint full: closed its oldest connection");
            }
            let service = service_fn(move |req| {
                let (render, ready) = (render.clone(), ready.clone());
                async move { Ok::<_, Infallible>(route(&req, &render, &ready)) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = slot.token.cancelled() => {}
                () = cancel.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(STOP_TIMEOUT, conn.as_mut()).await;
                }
            }
            drop(slot);
        });
    };
    crate::transport::accept::accept_loop(
        &cancel,
        "metrics",
        Duration::from_millis(50),
        || listener.accept(),
        serve_one,
    )
    .await;
}

/// Binds the endpoint's address.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

fn route(req: &Request<Incoming>, render: &Render, ready: &Readiness) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if !matches!(path, "/metrics" | "/healthz" | "/readyz") {
        return text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /healthz or /readyz\n",
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        resp.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return resp;
    }
    match path {
        "/metrics" => match render() {
            Ok(body) => Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)
                .body(Full::new(Bytes::from(body)))
                .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "response\n")),
            Err(e) => {
                tracing::warn!(error = %e, "metrics rendering failed");
                text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e}\n"))
            }
        },
        "/healthz" => text(StatusCode::OK, "ok\n"),
        _ => match ready.status() {
            Ok(()) => text(StatusCode::OK, "ready\n"),
            Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, &why),
        },
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::copy_from_slice(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn request(addr: SocketAddr, method: &str, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    async fn get(addr: SocketAddr, path: &str) -> String {
        request(addr, "GET", path).await
    }

    fn fixed(body: &'static str) -> Render {
        Arc::new(move || Ok(body.to_string()))
    }

    #[tokio::test]
    async fn endpoints_answer() {
        let ready = Arc::new(Readiness::default());
        let ep = Endpoint::start(
            "127.0.0.1:0".parse().unwrap(),
            fixed("lamina_up 1\n"),
            ready.clone(),
            AllowList::default(),
        )
        .await
        .unwrap();
        let addr = ep.local_addr();
        let m = get(addr, "/metrics").await;
        assert!(m.starts_with("HTTP/1.1 200"), "{m}");
        assert!(m.contains("text/plain; version=0.0.4"));
        assert!(m.ends_with("lamina_up 1\n"));
        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 503"));
        ready.set(true);
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 200"));
        let why = Arc::new(parking_lot::Mutex::new(Some("not ready: bdev x pending\n")));
        let w = why.clone();
        ready.set_check(Arc::new(move || w.lock().map(str::to_owned)));
        let held = get(addr, "/readyz").await;
        assert!(held.starts_with("HTTP/1.1 503"), "{held}");
        assert!(held.ends_with("not ready: bdev x pending\n"), "{held}");
        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
        *why.lock() = None;
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 200"));
        ready.set(false);
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 503"));
        assert!(get(addr, "/nope").await.starts_with("HTTP/1.1 404"));
        let post = request(addr, "POST", "/metrics").await;
        assert!(post.starts_with("HTTP/1.1 405"), "{post}");
        assert!(post.contains("allow: GET, HEAD"), "{post}");
        let head = request(addr, "HEAD", "/metrics").await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(!head.contains("lamina_up"), "HEAD has no body: {head}");
        ep.stop().await;
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn slow_and_idle_clients_cannot_starve_the_probes() {
        let ep = Endpoint::start(
            "127.0.0.1:0".parse().unwrap(),
            fixed(""),
            Arc::new(Readiness::default()),
            AllowList::default(),
        )
        .await
        .unwrap();
        let addr = ep.local_addr();
        // 100 clients that send a request line and never end their headers, and 64 idle
        // keep-alive connections after one request each.
        let mut held = Vec::new();
        for _ in 0..100 {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
            held.push(s);
        }
        for _ in 0..64 {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            let mut buf = [0u8; 256];
            let _ = s.read(&mut buf).await.unwrap();
            held.push(s);
        }
        for _ in 0..20 {
            let probe = tokio::time::timeout(Duration::from_secs(1), get(addr, "/healthz"))
                .await
                .expect("a liveness probe waited behind slow clients");
            assert!(probe.starts_with("HTTP/1.1 200"), "{probe}");
        }
        drop(held);
        ep.stop().await;
    }

    #[tokio::test]
    async fn only_allowed_scrapers_are_served() {
        let allow = AllowList::new(vec!["127.0.0.2".parse().unwrap()]);
        let ep = Endpoint::start(
            "127.0.0.1:0".parse().unwrap(),
            fixed("x 1\n"),
            Arc::new(Readiness::default()),
            allow,
        )
        .await
        .unwrap();
        let mut s = tokio::net::TcpStream::connect(ep.local_addr())
            .await
            .unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        assert!(out.is_empty(), "an address off the list got an answer");
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let mut s = sock.connect(ep.local_addr()).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        ep.stop().await;
    }

    #[tokio::test]
    async fn render_failure_is_a_500() {
        let render: Render = Arc::new(|| Err("boom".to_string()));
        let ep = Endpoint::start(
            "127.0.0.1:0".parse().unwrap(),
            render,
            Arc::new(Readiness::default()),
            AllowList::default(),
        )
        .await
        .unwrap();
        let m = get(ep.local_addr(), "/metrics").await;
        assert!(m.starts_with("HTTP/1.1 500"), "{m}");
        assert!(m.ends_with("boom\n"));
    }

    #[tokio::test]
    async fn dropping_the_endpoint_stops_it() {
        let ep = Endpoint::start(
            "127.0.0.1:0".parse().unwrap(),
            fixed(""),
            Arc::new(Readiness::default()),
            AllowList::default(),
        )
        .await
        .unwrap();
        let addr = ep.local_addr();
        drop(ep);
        // The accept loop sees the token at its next poll.
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("endpoint still accepting after drop");
    }
}
