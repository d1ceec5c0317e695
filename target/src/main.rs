//! The `lamina` binary: parses the command line and hands over to `lamina_target`.

use std::process::ExitCode;

use clap::Parser;
use lamina_target::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The CPU set first: the runtime sizes itself, and its threads inherit it.
    if let Command::Serve(args) = &cli.command
        && let Some(cores) = &args.cores
        && let Err(e) = lamina_target::cores::apply(cores)
    {
        eprintln!("error: --cores {cores}: {e}");
        return ExitCode::from(2);
    }
    // One worker per usable CPU: tokio asks `available_parallelism`, which sees the affinity
    // set above and a cgroup's CPU quota.
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
        Command::Serve(args) => {
            if let Err(e) =
                lamina_target::logs::telemetry::init(args.log_level.as_deref(), args.log_format)
            {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            match runtime.block_on(lamina_target::server::run(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Rpc(args) => runtime.block_on(lamina_target::cli::rpc::run(args)),
        Command::Lvstore(args) => runtime.block_on(lamina_target::cli::lvstore::run(args)),
        Command::Lvol(args) => runtime.block_on(lamina_target::cli::lvol::run(args)),
        Command::Subsystem(args) => runtime.block_on(lamina_target::cli::subsystem::run(args)),
        Command::Bdev(args) => runtime.block_on(lamina_target::cli::bdev::run(args)),
        Command::Config(args) => runtime.block_on(lamina_target::cli::config::run(args)),
        Command::Keyring(args) => runtime.block_on(lamina_target::cli::keyring::run(args)),
    }
}
