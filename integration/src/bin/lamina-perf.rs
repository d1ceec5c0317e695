//! `lamina-perf`: NVMe/TCP load generator (see `lamina_integration::perf`).
//!
//! Exit status: 0 when every command succeeded and `--verify` found nothing, 1 on I/O errors,
//! verification mismatches or a failed run, 2 on bad arguments.

use std::process::ExitCode;

use clap::Parser;
use lamina_integration::perf::{self, PerfArgs};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cfg = match PerfArgs::parse().into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lamina-perf: {e}");
            return ExitCode::from(2);
        }
    };
    let json = cfg.json;
    // The admin queue and the live line run here; the I/O runs on worker threads.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lamina-perf: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(perf::run(cfg)) {
        Ok(report) => {
            if json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_text());
            }
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("lamina-perf: {e}");
            ExitCode::FAILURE
        }
    }
}
