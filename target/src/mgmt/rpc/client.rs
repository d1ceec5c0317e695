//! A JSON-RPC client for the `lamina rpc` CLI and for tests: one request, one answer.

use std::io;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::error::RpcError;
use super::framing::JsonStream;

/// Why a call did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket could not be reached or the connection broke.
    #[error("cannot talk to the server at {path}: {source}")]
    Io {
        /// The socket path.
        path: String,
        /// The I/O error.
        source: io::Error,
    },
    /// The server answered with a JSON-RPC error.
    #[error("{}", .0.message)]
    Rpc(RpcError),
    /// The answer was not a JSON-RPC response.
    #[error("malformed answer from the server: {0}")]
    Protocol(String),
}

/// A connection to a Lamina JSON-RPC Unix socket.
#[derive(Debug)]
pub struct RpcClient {
    stream: UnixStream,
    frames: JsonStream,
    path: String,
    next_id: u64,
    timeout: Duration,
}

impl RpcClient {
    /// Connects to the socket at `path`.
    pub async fn connect(path: &Path) -> Result<Self, ClientError> {
        let display = path.display().to_string();
        let stream = UnixStream::connect(path)
            .await
            .map_err(|source| ClientError::Io {
                path: display.clone(),
                source,
            })?;
        Ok(Self {
            stream,
            frames: JsonStream::new(256 * 1024 * 1024),
            path: display,
            next_id: 1,
            timeout: Duration::from_hours(1),
        })
    }

    /// Sets how long one call may take before the client gives up.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Calls `method` with `params` (omitted when `None`) and returns its result.
    pub async fn call(
        &mut self,
        method: &str,
        params: Option<Value>,
    ) -> Result<Value, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut request = json!({"jsonrpc": "2.0", "id": id, "method": method});
        if let Some(p) = params {
            request["params"] = p;
        }
        let timeout = self.timeout;
        tokio::time::timeout(timeout, self.exchange(&request, id))
            .await
            .map_err(|_| self.io_error(io::ErrorKind::TimedOut.into()))?
    }

    async fn exchange(&mut self, request: &Value, id: u64) -> Result<Value, ClientError> {
        let bytes =
            serde_json::to_vec(request).map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.stream
            .write_all(&bytes)
            .await
            .map_err(|e| self.io_error(e))?;
        loop {
            match self.frames.next_value() {
                Ok(Some(answer)) => return Self::unpack(answer, id),
                Ok(None) => {}
                Err(e) => return Err(ClientError::Protocol(e.to_string())),
            }
            let n = self
                .stream
                .read_buf(self.frames.buffer())
                .await
                .map_err(|e| self.io_error(e))?;
            if n == 0 {
                return Err(self.io_error(io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }

    fn unpack(mut answer: Value, id: u64) -> Result<Value, ClientError> {
        if answer.get("id") != Some(&json!(id)) {
            return Err(ClientError::Protocol(format!(
                "answer to another request: {answer}"
            )));
        }
        if let Some(err) = answer.get_mut("error") {
            let err: RpcError = serde_json::from_value(err.take())
                .map_err(|e| ClientError::Protocol(e.to_string()))?;
            return Err(ClientError::Rpc(err));
        }
        answer
            .get_mut("result")
            .map(Value::take)
            .ok_or_else(|| ClientError::Protocol("answer has neither result nor error".into()))
    }

    fn io_error(&self, source: io::Error) -> ClientError {
        ClientError::Io {
            path: self.path.clone(),
            source,
        }
    }
}
