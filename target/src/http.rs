//! The HTTP endpoint for operators' tools: `GET /metrics` (Prometheus text format),
//! `GET /healthz` (the process is alive and its runtime answers) and `GET /readyz` (lvstores
//! are loaded and NVMe/TCP listeners are up: ready to serve hosts).
//!
//! HTTP/1.1 via hyper; one task per connection; every other path is a 404 and every other method
//! a 405. Rendering the metrics takes a snapshot of refcounted handles (see `metrics`), so a
//! scrape running while lvols are deleted reads only live objects.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The Prometheus text exposition content type.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The default metrics port (`--metrics 127.0.0.1:9440` and `0.0.0.0:9440` in containers).
pub const DEFAULT_METRICS_PORT: u16 = 9440;

/// Renders the metrics text on demand.
pub type Render = Arc<dyn Fn() -> Result<String, String> + Send + Sync>;

/// Readiness: set once lvstores are loaded and the NVMe/TCP listeners are up.
#[derive(Debug, Default)]
pub struct Readiness(AtomicBool);

impl Readiness {
    /// Marks the server ready (or not).
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Release);
    }

    /// Whether the server is ready.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Serves the endpoint on `listener` until `cancel` fires.
pub async fn serve(
    listener: TcpListener,
    render: Render,
    ready: Arc<Readiness>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            a = listener.accept() => a,
        };
        let Ok((stream, _peer)) = accepted else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let (render, ready, cancel) = (render.clone(), ready.clone(), cancel.clone());
        tracker.spawn(async move {
            let service = service_fn(move |req| {
                let (render, ready) = (render.clone(), ready.clone());
                async move { Ok::<_, Infallible>(route(&req, &render, &ready)) }
            });
            let conn = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = cancel.cancelled() => conn.as_mut().graceful_shutdown(),
            }
        });
    }
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
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
    }
    match path {
        "/metrics" => match render() {
            Ok(body) => Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)
                .body(Full::new(Bytes::from(body)))
                .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "response\n")),
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e}\n")),
        },
        "/healthz" => text(StatusCode::OK, "ok\n"),
        _ if ready.is_ready() => text(StatusCode::OK, "ready\n"),
        _ => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
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

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn endpoints_answer() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let ready = Arc::new(Readiness::default());
        let render: Render = Arc::new(|| Ok("lamina_up 1\n".to_string()));
        let cancel = CancellationToken::new();
        tokio::spawn(serve(
            listener,
            render,
            ready.clone(),
            cancel.clone(),
            TaskTracker::new(),
        ));
        let m = get(addr, "/metrics").await;
        assert!(m.starts_with("HTTP/1.1 200"), "{m}");
        assert!(m.contains("text/plain; version=0.0.4"));
        assert!(m.ends_with("lamina_up 1\n"));
        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 503"));
        ready.set(true);
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 200"));
        assert!(get(addr, "/nope").await.starts_with("HTTP/1.1 404"));
        cancel.cancel();
    }
}
