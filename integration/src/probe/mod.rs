//! `lamina-probe`: proves that Lamina's host interoperates with a real NVMe/TCP target (the
//! Linux kernel's nvmet-tcp in the VM harness, later Lamina's own). It brings a controller up,
//! runs the admin command set (Identify CNS 00h/01h/02h/03h/06h, log pages with offsets,
//! features, Keep Alive), writes and reads back patterns through in-capsule data and the
//! R2T/H2CData path (and reads through CapsuleResp or C2HData SUCCESS, depending on SQ flow
//! control), pipelines a burst over every I/O queue, optionally waits for an asynchronous
//! event and for KATO expiry, disconnects, shuts the controller down, and prints
//! `lamina-probe: PASS` when everything held.
//!
//! Each check prints one `ok:` line; the first failure ends the run with `FAIL <step>: <why>`.

mod admin;
mod events;
mod io;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser;

use crate::host::{ConnectOptions, Controller, HostError};

/// Command line of `lamina-probe`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "lamina-probe",
    version,
    about = "Interoperability probe of Lamina's NVMe/TCP host"
)]
pub struct ProbeArgs {
    /// Target address.
    #[arg(short = 'a', long = "addr", value_name = "ADDR:PORT")]
    pub addr: SocketAddr,
    /// Subsystem NQN.
    #[arg(short = 'n', long = "subnqn")]
    pub subnqn: String,
    /// Namespace to exercise (its first 64 MiB are overwritten; it must hold at least that).
    #[arg(long, default_value_t = 1)]
    pub nsid: u32,
    /// Negotiate header and data digests.
    #[arg(long)]
    pub digests: bool,
    /// Disable SQ flow control in Connect (lets the target complete reads with SUCCESS).
    #[arg(long)]
    pub disable_sqflow: bool,
    /// I/O queues to create.
    #[arg(long, default_value_t = 2)]
    pub io_queues: u16,
    /// Arm an AER, run this shell command (which must change a namespace) and expect a
    /// Namespace Attribute Changed event.
    #[arg(long, value_name = "CMD")]
    pub aen_command: Option<String>,
    /// Also check that the target tears the controller down when Keep Alive stops (KATO 3 s).
    #[arg(long)]
    pub kato_expiry: bool,
    /// Skip the write of one block sent by R2T although it fits the capsule (Linux nvmet 6.1
    /// never answers it: it sends no R2T and no completion).
    #[arg(long)]
    pub no_forced_r2t: bool,
    /// Random 4 KiB writes (each read back and checked) in the pipelined burst.
    #[arg(long, default_value_t = 512)]
    pub burst: u32,
}

/// Why the probe failed: the step and the error.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {why}")]
pub struct ProbeError {
    /// Step that failed.
    pub step: &'static str,
    /// What went wrong.
    pub why: String,
}

impl ProbeError {
    pub(crate) fn new(step: &'static str, why: impl std::fmt::Display) -> Self {
        Self {
            step,
            why: why.to_string(),
        }
    }
}

/// Shorthand for step results.
pub(crate) type Step<T = ()> = Result<T, ProbeError>;

/// Adds the step name to a host error.
pub(crate) trait StepContext<T> {
    fn step(self, step: &'static str) -> Step<T>;
}

impl<T> StepContext<T> for Result<T, HostError> {
    fn step(self, step: &'static str) -> Step<T> {
        self.map_err(|e| ProbeError::new(step, e))
    }
}

/// Fails `step` unless `cond`.
pub(crate) fn ensure(cond: bool, step: &'static str, why: impl FnOnce() -> String) -> Step {
    if cond {
        Ok(())
    } else {
        Err(ProbeError::new(step, why()))
    }
}

/// Prints one passed check.
pub(crate) fn ok(text: impl std::fmt::Display) {
    println!("probe: ok: {text}");
}

/// Runs every check; returns a one-line summary on success.
pub async fn run(args: &ProbeArgs) -> Step<String> {
    let started = Instant::now();
    let ctrl = connect(args).await?;
    admin::run(&ctrl, args).await?;
    let ns = ctrl.namespace(args.nsid).await.step("identify namespace")?;
    io::run(&ctrl, &ns, args).await?;
    if let Some(cmd) = &args.aen_command {
        events::aen(&ctrl, cmd).await?;
    }
    events::disconnect_queue(&ctrl).await?;
    events::shutdown(ctrl).await?;
    if args.kato_expiry {
        events::kato_expiry(args).await?;
    }
    Ok(format!(
        "digests {}, SQ flow control {}, {:.1} s",
        if args.digests { "hdr+data" } else { "none" },
        if args.disable_sqflow {
            "disabled"
        } else {
            "enabled"
        },
        started.elapsed().as_secs_f64()
    ))
}

pub(crate) fn options(args: &ProbeArgs) -> Step<ConnectOptions> {
    let mut o = ConnectOptions::new(&args.subnqn).step("options")?;
    o = o.with_digests(args.digests, args.digests);
    o.disable_sq_flow_control = args.disable_sqflow;
    o.io_queues = args.io_queues;
    o.io_queue_size = 32;
    o.command_timeout = Duration::from_mins(1);
    Ok(o)
}

async fn connect(args: &ProbeArgs) -> Step<Controller> {
    let ctrl = Controller::connect(args.addr, options(args)?)
        .await
        .step("connect")?;
    let adm = ctrl.admin().negotiated();
    ensure(
        adm.digests.header == args.digests && adm.digests.data == args.digests,
        "connect",
        || format!("digests negotiated {:?}", adm.digests),
    )?;
    ok(format_args!(
        "connected to {} cntlid {:#x}: ICResp digests {:?}, MAXH2CDATA {}, CAP {:#x} (MQES {}, TO {}), VS {}.{}.{}, {} I/O queue(s) of {}",
        args.addr,
        ctrl.cntlid(),
        adm.digests,
        adm.maxh2cdata,
        ctrl.cap().0,
        ctrl.cap().mqes(),
        ctrl.cap().timeout(),
        ctrl.vs().major(),
        ctrl.vs().minor(),
        ctrl.vs().tertiary(),
        ctrl.io_queues().len(),
        ctrl.io_queue_size(),
    ));
    ensure(
        usize::from(args.io_queues) == ctrl.io_queues().len(),
        "connect",
        || {
            format!(
                "asked {} I/O queues, got {}",
                args.io_queues,
                ctrl.io_queues().len()
            )
        },
    )?;
    Ok(ctrl)
}
