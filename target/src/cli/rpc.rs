//! `lamina rpc METHOD [PARAMS_JSON]`: send any method and print its result as JSON.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

use crate::mgmt::rpc::client::{ClientError, RpcClient};

/// Arguments of `lamina rpc`.
#[derive(Debug, Clone, Args)]
pub struct RpcArgs {
    /// The JSON-RPC Unix socket.
    #[arg(
        long,
        short = 's',
        value_name = "PATH",
        env = "LAMINA_RPC_SOCKET",
        default_value = "./lamina-data/lamina.sock"
    )]
    pub socket: PathBuf,
    /// The method name, e.g. bdev_lvol_get_lvols.
    pub method: String,
    /// The params as a JSON object, e.g. '{"lvs_name":"lvs0"}'.
    pub params: Option<String>,
}

/// Exit code for a JSON-RPC error answered by the server.
pub const EXIT_RPC_ERROR: u8 = 1;
/// Exit code for a usage error (bad JSON given on the command line).
pub const EXIT_USAGE: u8 = 2;
/// Exit code when the server cannot be reached.
pub const EXIT_UNREACHABLE: u8 = 3;

/// Runs `lamina rpc`.
pub async fn run(args: RpcArgs) -> ExitCode {
    let params = match args.params.as_deref().map(serde_json::from_str::<Value>) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => {
            eprintln!("error: PARAMS_JSON is not valid JSON: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let result = async {
        let mut client = RpcClient::connect(&args.socket).await?;
        client.call(&args.method, params).await
    }
    .await;
    match result {
        Ok(v) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string())
            );
            ExitCode::SUCCESS
        }
        Err(e) => report(&e),
    }
}

/// Prints a client error and picks the exit code scripts can rely on.
pub fn report(e: &ClientError) -> ExitCode {
    match e {
        ClientError::Rpc(err) => {
            eprintln!("error {}: {}", err.code, err.message);
            ExitCode::from(EXIT_RPC_ERROR)
        }
        ClientError::Io { .. } => {
            eprintln!("error: {e} (is `lamina serve` running? --socket PATH picks the socket)");
            ExitCode::from(EXIT_UNREACHABLE)
        }
        ClientError::Protocol(_) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_UNREACHABLE)
        }
    }
}
