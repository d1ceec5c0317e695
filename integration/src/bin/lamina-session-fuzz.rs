//! `lamina-session-fuzz`: runs the session-level fuzzer (`lamina_integration::fuzz`) against a
//! running NVMe/TCP target for a while, then prints what it did (sessions, PDUs, the target's
//! resident memory at the first and last probe when `--pid` is given) as one JSON object.
//! Exit status 0 when every probe passed and the target never sent a malformed PDU, 1
//! otherwise.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use lamina_integration::fuzz::{self, Config};
use lamina_integration::host::ConnectOptions;

/// Fuzz an NVMe/TCP target with mutated whole sessions.
#[derive(Debug, Parser)]
struct Args {
    /// The target's address.
    #[arg(long, default_value = "127.0.0.1:4420")]
    target: SocketAddr,
    /// The subsystem to connect to.
    #[arg(long, default_value = "nqn.2026-11.io.lamina:default")]
    nqn: String,
    /// Seconds to run.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Seed (the same seed replays the same sessions).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Mutate one PDU in this many.
    #[arg(long, default_value_t = 6)]
    mutate_one_in: u64,
    /// Check the target with a well-behaved host every this many sessions.
    #[arg(long, default_value_t = 25)]
    probe_every: u64,
    /// The target's PID, to follow its resident memory.
    #[arg(long)]
    pid: Option<u32>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let a = Args::parse();
    let opts = match ConnectOptions::new(&a.nqn) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("--nqn: {e}");
            return ExitCode::from(2);
        }
    };
    let cfg = Config {
        target: a.target,
        opts,
        duration: Duration::from_secs(a.seconds),
        seed: a.seed,
        mutate_one_in: a.mutate_one_in,
        probe_every: a.probe_every,
        pid: a.pid,
    };
    let (failure, r) = match fuzz::run(&cfg).await {
        Ok(r) => (None, r),
        Err((why, r)) => (Some(why), r),
    };
    println!(
        "{{\"sessions\":{},\"pdus_sent\":{},\"pdus_received\":{},\"term_reqs\":{},\
         \"malformed\":{},\"probes\":{},\"rss_first\":{},\"rss_last\":{},\"rss_max\":{},\
         \"failure\":{}}}",
        r.sessions,
        r.pdus_sent,
        r.pdus_received,
        r.term_reqs,
        r.malformed,
        r.probes,
        r.rss_first,
        r.rss_last,
        r.rss_max,
        failure
            .as_ref()
            .map_or_else(|| "null".to_owned(), |f| format!("{f:?}"))
    );
    if let Some(f) = failure {
        eprintln!("lamina-session-fuzz: {f}");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
