//! The JSON-RPC listeners: a Unix socket (mode 0600) and optionally a loopback TCP address,
//! each serving only clients of the target's own user or root (see [`super::peer`]; others get
//! one JSON-RPC error naming their uid, then the connection closes).
//!
//! Each client connection is its own task, so a slow, silent or vanished client only ever holds
//! its own task: a request not received whole within [`RpcServerConfig::idle_timeout`] of its
//! first byte closes the connection (however slowly its bytes trickle in), as does a response
//! the client does not read within the same time, a request larger than
//! [`RpcServerConfig::max_request_bytes`] or malformed JSON (after a -32700 answer). Requests on one connection are answered in order, one response per request,
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
    let accept = || async {
        let (s, _) = listener.accept().await?;
        let verdict =
            super::peer::unix_peer_uid(&s).map(|uid| (uid, super::peer::allowed_uid(uid)));
        Ok((s, verdict))
    };
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
    let accept = || async {
        let (s, peer) = listener.accept().await?;
        let verdict = s.local_addr().map_err(|e| e.to_string()).and_then(|local| {
            super::peer::tcp_peer_uid(peer, local).map(|uid| (uid, super::peer::allowed_uid(uid)))
        });
        Ok((s, verdict))
    };
    accept_loop(accept, &methods, &config, &cancel, &tracker).await;
}

/// What the listener learnt of a client: its uid and whether it may use the RPC, or why its
/// user could not be found.
type Verdict = Result<(u32, bool), String>;

/// Accepts clients with `accept` until `cancel` fires, one task each (see `crate::transport::accept`).
async fn accept_loop<A, F, S>(
    accept: A,
    methods: &Arc<Methods>,
    config: &RpcServerConfig,
    cancel: &CancellationToken,
    tracker: &TaskTracker,
) where
    A: FnMut() -> F,
    F: Future<Output = io::Result<(S, Verdict)>>,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    crate::transport::accept::accept_loop(
        cancel,
        "rpc",
        Duration::from_millis(50),
        accept,
        |(stream, verdict)| match verdict {
            Ok((_, true)) => {
                let (m, c, k) = (methods.clone(), config.clone(), cancel.child_token());
                tracker.spawn(async move { serve_connection(stream, &m, &c, &k).await });
            }
            verdict => {
                let why = match verdict {
                    Ok((uid, _)) => format!(
                        "uid {uid} may not use this RPC server: only the target's own user and \
                         root may"
                    ),
                    Err(e) => format!("the client's user is unknown ({e}): refused"),
                };
                tracing::warn!(reason = %why, "rpc client refused");
                tracker.spawn(refuse(stream, why, config.clone()));
            }
        },
    )
    .await;
}

/// Answers a refused client with one JSON-RPC error, then closes.
async fn refuse<S: AsyncWrite + Unpin>(mut stream: S, why: String, config: RpcServerConfig) {
    let e = RpcError::new(super::error::EPERM, why);
    let _ = write_answer(&mut stream, &error_response(Value::Null, &e), &config).await;
}

/// Binds a TCP RPC listener; refuses non-loopback addresses (clients are authorised by their
/// user, which only loopback connections reveal).
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
    // When the request being received started: it must be whole by this plus idle_timeout.
    let mut started: Option<tokio::time::Instant> = None;
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
        let deadline = if frames.has_partial() {
            Some(*started.get_or_insert_with(tokio::time::Instant::now) + config.idle_timeout)
        } else {
            started = None;
            None
        };
        let read = async {
            match deadline {
                Some(d) => tokio::time::timeout_at(d, stream.read_buf(frames.buffer()))
                    .await
                    .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into())),
                None => stream.read_buf(frames.buffer()).await,
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
            let _: super::super::fields::NoParams = p.parse()?;
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
    async fn a_request_trickling_in_is_dropped_at_its_deadline() {
        let config = RpcServerConfig {
            idle_timeout: Duration::from_millis(300),
            ..RpcServerConfig::default()
        };
        let (path, cancel, _dir) = start(config).await;
        let mut s = tokio::net::UnixStream::connect(&path).await.unwrap();
        let started = std::time::Instant::now();
        // One byte every 100 ms: never idle for the timeout, but never whole either.
        for b in b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"" {
            if s.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
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
