//! `lamina-probe`: interoperability probe of Lamina's NVMe/TCP host against a real target (see
//! `lamina_integration::probe`). Prints `lamina-probe: PASS ...` and exits 0 when every check
//! held, `lamina-probe: FAIL <step>: <why>` and exits 1 otherwise.

use std::process::ExitCode;

use clap::Parser;
use lamina_integration::probe::{self, ProbeArgs};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = ProbeArgs::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lamina-probe: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(probe::run(&args)) {
        Ok(summary) => {
            println!("lamina-probe: PASS ({summary})");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("lamina-probe: FAIL {e}");
            ExitCode::FAILURE
        }
    }
}
