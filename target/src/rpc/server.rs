//! The JSON-RPC listeners: a Unix socket (mode 0600) and optionally a loopback TCP address.
//!
//! Each client connection is its own task, so a slow, silent or vanished client only ever holds
//! its own task: a request left half-written for [`RpcServerConfig::idle_timeout`] closes the
//! connection, as does a response the client does not read within the same time, a request
//! larger than [`RpcServerConfig::max_request_bytes`] or malformed JSON (after a -32700
//! answer). Requests on one connection are answered in order, one response per request,
//! each followed by a newline (as SPDK's server writes them).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::dispatch::{Methods, error_response};
use super::error::RpcError;
use super::framing::{FramingError, JsonStream};

/// Limits of the RPC listeners.
#[derive(Debug, Clone)]
pub struct RpcServerConfig {
    /// Largest single request accepted, in bytes.
    pub max_request_bytes: usize,
    /// How long a half-received request or an unread response may wait.
    pub idle_timeout: Duration,
}

impl Default for RpcServerConfig {
    fn default() -> Self {
        Self {
            max_request_bytes: 4 * 1024 * 1024,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// Binds the Unix socket at `path` with mode 0600.
///
/// A stale socket file left by a crashed server is replaced; a socket another live server
/// answers on is an error, so two servers never share one data dir.
pub async fn bind_unix(path: &Path) -> io::Result<UnixListener> {
    if path.exists() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "another server answers on {}; stop it or use --rpc-socket",
                    path.display()
                ),
            ));
        }
        std::fs::remove_file(path)?;
    }
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves `methods` on a Unix listener until `cancel` fires; removes the socket file on exit.
pub async fn serve_unix(
    listener: UnixListener,
    path: PathBuf,
    methods: Arc<Methods>,
    config: RpcServerConfig,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let accept = || async { listener.accept().await.map(|(s, _)| s) };
    accept_loop(accept, &methods, &config, &cancel, &tracker).await;
    let _ = std::fs::remove_file(&path);
}

/// Serves `methods` on a TCP listener until `cancel` fires.
pub async fn serve_tcp(
    listener: TcpListener,
    methods: Arc<Methods>,
    config: RpcServerConfig,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let accept = || async { listener.accept().await.map(|(s, _)| s) };
    accept_loop(accept, &methods, &config, &cancel, &tracker).await;
}

/// Accepts clients with `accept` until `cancel` fires, one task each; a failed accept (e.g.
/// EMFILE) backs off briefly instead of spinning.
async fn accept_loop<A, F, S>(
    mut accept: A,
    methods: &Arc<Methods>,
    config: &RpcServerConfig,
    cancel: &CancellationToken,
    tracker: &TaskTracker,
) where
    A: FnMut() -> F,
    F: Future<Output = io::Result<S>>,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            a = accept() => a,
        };
        match accepted {
            Ok(stream) => {
                let (m, c, k) = (methods.clone(), config.clone(), cancel.child_token());
                tracker.spawn(async move { serve_connection(stream, &m, &c, &k).await });
            }
            Err(e) => {
                tracing::warn!(error = %e, "rpc accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Binds a TCP RPC listener; refuses non-loopback addresses (the RPC has no authentication).
pub async fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    if !addr.ip().is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "--rpc-listen {addr}: the JSON-RPC server has no authentication and only \
                 listens on loopback addresses"
            ),
        ));
    }
    TcpListener::bind(addr).await
}

/// Runs one client connection to its end.
pub async fn serve_connection<S>(
    mut stream: S,
    methods: &Methods,
    config: &RpcServerConfig,
    cancel: &CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut frames = JsonStream::new(config.max_request_bytes);
    loop {
        match frames.next_value() {
            Ok(Some(value)) => {
                if let Some(answer) = methods.handle_value(value).await
                    && write_answer(&mut stream, &answer, config).await.is_err()
                {
                    return;
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                let err = match e {
                    FramingError::Malformed(m) => RpcError::parse_error(m),
                    FramingError::TooLarge { limit } => {
                        RpcError::parse_error(format!("request larger than {limit} bytes"))
                    }
                };
                let _ = write_answer(&mut stream, &error_response(Value::Null, &err), config).await;
                return;
            }
        }
        let read = async {
            if frames.has_partial() {
                tokio::time::timeout(config.idle_timeout, stream.read_buf(frames.buffer()))
                    .await
                    .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
            } else {
                stream.read_buf(frames.buffer()).await
            }
        };
        let n = tokio::select! {
            () = cancel.cancelled() => return,
            n = read => n,
        };
        match n {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

async fn write_answer<S>(stream: &mut S, answer: &Value, config: &RpcServerConfig) -> io::Result<()>
where
    S: AsyncWrite + Unpin,
{
    let mut bytes = serde_json::to_vec(answer).map_err(io::Error::other)?;
    bytes.push(b'\n');
    tokio::time::timeout(config.idle_timeout, stream.write_all(&bytes))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
}

#[cfg(test)]
mod tests {
    use super::super::dispatch::Params;
    use super::*;
    use serde_json::json;
    use tokio::io::{AsyncBufReadExt, BufReader};

    fn methods() -> Arc<Methods> {
        let mut m = Methods::new();
        m.register("ping", |p: Params| async move {
            p.none()?;
            Ok(json!("pong"))
        });
        m.register("sleep", |_p: Params| async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok(json!(true))
        });
        Arc::new(m)
    }

    async fn start(config: RpcServerConfig) -> (PathBuf, CancellationToken, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rpc.sock");
        let listener = bind_unix(&path).await.unwrap();
        let cancel = CancellationToken::new();
        tokio::spawn(serve_unix(
            listener,
            path.clone(),
            methods(),
            config,
            cancel.clone(),
            TaskTracker::new(),
        ));
        (path, cancel, dir)
    }

    #[tokio::test]
    async fn socket_is_private_and_answers_pipelined_requests() {
        let (path, cancel, _dir) = start(RpcServerConfig::default()).await;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let s = tokio::net::UnixStream::connect(&path).await.unwrap();
        let (r, mut w) = s.into_split();
        w.write_all(
            br#"{"jsonrpc":"2.0","id":1,"method":"ping"}{"jsonrpc":"2.0","id":2,"method":"ping"}"#,
        )
        .await
        .unwrap();
        let mut lines = BufReader::new(r).lines();
        for id in 1..=2 {
            let line = lines.next_line().await.unwrap().unwrap();
            let v: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["id"], id);
            assert_eq!(v["result"], "pong");
        }
        cancel.cancel();
    }

    #[tokio::test]
    async fn second_server_on_same_socket_is_refused() {
        let (path, cancel, _dir) = start(RpcServerConfig::default()).await;
        let err = bind_unix(&path).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        cancel.cancel();
    }

    #[tokio::test]
    async fn malformed_json_gets_parse_error_then_close() {
        let (path, cancel, _dir) = start(RpcServerConfig::default()).await;
        let mut s = tokio::net::UnixStream::connect(&path).await.unwrap();
        s.write_all(b"{\"jsonrpc\": oops}").await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["error"]["code"], -32700);
        cancel.cancel();
    }

    #[tokio::test]
    async fn stalled_partial_request_is_dropped_and_others_still_served() {
        let config = RpcServerConfig {
            idle_timeout: Duration::from_millis(100),
            ..RpcServerConfig::default()
        };
        let (path, cancel, _dir) = start(config).await;
        let mut stalled = tokio::net::UnixStream::connect(&path).await.unwrap();
        stalled.write_all(b"{\"jsonrpc\":\"2.0\",").await.unwrap();
        let mut other = tokio::net::UnixStream::connect(&path).await.unwrap();
        other
            .write_all(br#"{"jsonrpc":"2.0","id":9,"method":"sleep"}"#)
            .await
            .unwrap();
        let mut buf = vec![0u8; 256];
        let n = other.read(&mut buf).await.unwrap();
        assert!(std::str::from_utf8(&buf[..n]).unwrap().contains("\"id\":9"));
        let mut rest = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(5), stalled.read_to_end(&mut rest))
            .await
            .expect("stalled client must be closed by the server")
            .unwrap();
        assert_eq!(n, 0);
        cancel.cancel();
    }

    #[tokio::test]
    async fn oversized_request_is_refused() {
        let config = RpcServerConfig {
            max_request_bytes: 64,
            ..RpcServerConfig::default()
        };
        let (path, cancel, _dir) = start(config).await;
        let mut s = tokio::net::UnixStream::connect(&path).await.unwrap();
        let big = format!("{{\"jsonrpc\":\"2.0\",\"method\":\"{}", "x".repeat(200));
        s.write_all(big.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(out.contains("-32700"), "{out}");
        cancel.cancel();
    }

    #[tokio::test]
    async fn tcp_listener_refuses_non_loopback() {
        let err = bind_tcp("0.0.0.0:0".parse().unwrap()).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
