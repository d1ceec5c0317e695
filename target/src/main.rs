//! The `lamina` binary: parses the command line and hands over to `lamina_target`.

use std::process::ExitCode;

use clap::Parser;
use lamina_target::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Serve(_args) => {
            eprintln!(
                "lamina {}: the NVMe/TCP server is not built yet; see README.md",
                lamina_target::VERSION
            );
            ExitCode::FAILURE
        }
        Command::Rpc(args) => runtime.block_on(lamina_target::cli::rpc::run(args)),
    }
}
