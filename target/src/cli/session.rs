//! What every management subcommand shares: the `--socket` and `--json` flags, the connection
//! to the server, the error type and the exit codes.
//!
//! Exit codes (stable, for scripts): 0 success; 1 the server answered with an error (the
//! message and the JSON-RPC code are printed on stderr); 2 usage error (bad flags, a size or
//! address that does not parse); 3 the server cannot be reached (no socket, connection
//! refused, broken connection or malformed answer).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

use super::rpc::{EXIT_RPC_ERROR, EXIT_UNREACHABLE, EXIT_USAGE};
use crate::mgmt::rpc::client::{ClientError, RpcClient};

/// Flags every management subcommand takes (before or after the action).
#[derive(Debug, Clone, Args)]
pub struct ClientOpts {
    /// The server's JSON-RPC Unix socket.
    #[arg(
        long,
        short = 's',
        value_name = "PATH",
        env = "LAMINA_RPC_SOCKET",
        default_value = "./lamina-data/lamina.sock",
        global = true
    )]
    pub socket: PathBuf,
    /// Print the JSON-RPC result as JSON instead of a table or a sentence (for scripts).
    #[arg(long, global = true)]
    pub json: bool,
}

/// Why a subcommand failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A call failed: the server refused it, or could not be reached.
    #[error("{method}: {source}")]
    Call {
        /// The JSON-RPC method.
        method: String,
        /// What went wrong.
        source: ClientError,
    },
    /// The command line asks for something impossible.
    #[error("{0}")]
    Usage(String),
}

impl CliError {
    /// The exit code scripts can rely on.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Call {
                source: ClientError::Rpc(_),
                ..
            } => EXIT_RPC_ERROR,
            Self::Call { .. } => EXIT_UNREACHABLE,
            Self::Usage(_) => EXIT_USAGE,
        }
    }

    /// The message printed on stderr.
    pub fn message(&self) -> String {
        match self {
            Self::Call {
                method,
                source: ClientError::Rpc(e),
            } => format!(
                "{method} failed: {} (JSON-RPC error {}, {})",
                e.message,
                e.code,
                e.code_label()
            ),
            Self::Call { source, .. } => format!(
                "{source} (is `lamina serve` running? --socket PATH or LAMINA_RPC_SOCKET picks \
                 the socket)"
            ),
            Self::Usage(m) => m.clone(),
        }
    }
}

/// A connection to the server, with the output mode.
#[derive(Debug)]
pub struct Session {
    client: RpcClient,
    opts: ClientOpts,
}

impl Session {
    /// Connects to the socket of `opts`.
    pub async fn connect(opts: &ClientOpts) -> Result<Self, CliError> {
        let client = RpcClient::connect(&opts.socket)
            .await
            .map_err(|source| CliError::Call {
                method: "connect".into(),
                source,
            })?;
        Ok(Self {
            client,
            opts: opts.clone(),
        })
    }

    /// The flags this session was opened with.
    pub fn opts(&self) -> &ClientOpts {
        &self.opts
    }

    /// Calls `method` with `params`.
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value, CliError> {
        let params = (!params.is_null()).then_some(params);
        self.client
            .call(method, params)
            .await
            .map_err(|source| CliError::Call {
                method: method.to_owned(),
                source,
            })
    }

    /// Prints `result` as JSON with `--json`, else the human `text` (when not empty).
    pub fn emit(&self, result: &Value, text: &str) {
        if self.opts.json {
            println!(
                "{}",
                serde_json::to_string_pretty(result).unwrap_or_else(|_| result.to_string())
            );
        } else if !text.is_empty() {
            println!("{}", text.trim_end());
        }
    }
}

/// Turns a subcommand's outcome into its exit code, printing the error if any.
pub fn finish(outcome: Result<(), CliError>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.message());
            ExitCode::from(e.exit_code())
        }
    }
}

/// A string field of a JSON object, or "" when absent.
pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// An unsigned field of a JSON object, or 0 when absent.
pub fn u64_of(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// A boolean field of a JSON object, or false when absent.
pub fn bool_of(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// The elements of a JSON array result (none if it is not an array).
pub fn items(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mgmt::rpc::RpcError;

    #[test]
    fn exit_codes_are_stable() {
        let rpc = CliError::Call {
            method: "bdev_lvol_delete".into(),
            source: ClientError::Rpc(RpcError::busy("lvol is exported")),
        };
        assert_eq!(rpc.exit_code(), 1);
        assert!(
            rpc.message()
                .contains("bdev_lvol_delete failed: lvol is exported")
        );
        assert!(rpc.message().contains("-16"));
        let io = CliError::Call {
            method: "connect".into(),
            source: ClientError::Io {
                path: "/x".into(),
                source: std::io::ErrorKind::NotFound.into(),
            },
        };
        assert_eq!(io.exit_code(), 3);
        assert!(io.message().contains("--socket"));
        assert_eq!(CliError::Usage("bad".into()).exit_code(), 2);
    }
}
