//! Logging: `tracing` events formatted by `tracing-subscriber`, as text or JSON, on stderr.
//!
//! The filter comes from `--log-level` when given (any `EnvFilter` directive such as `debug` or
//! `info,lamina_target::transport=debug`), else from `RUST_LOG`, else `info`. JSON output is
//! one object per line (`timestamp`, `level`, `target`, the event's fields flattened in, and
//! `span` holding the current span's name and fields), for container log collectors.
//!
//! The filter can be changed at run time through the SPDK log RPCs (see
//! [`crate::logs::log_control`]).
//!
//! What is logged where (the contract operators rely on):
//! - Spans: `conn` per NVMe/TCP connection (`peer`, then `qid`, `cntlid`, `hostnqn` once the
//!   Fabrics Connect binds it) and `rpc` per JSON-RPC call (`method`).
//! - Info: lifecycle — listener up, metrics endpoint up, host connected and disconnected,
//!   controller removed, namespace added or removed, subsystem, lvstore and lvol created or
//!   deleted, configuration restored, shutdown. Keep-alive expiry is a warning.
//! - Warn: protocol violations, at most once per connection ([`ViolationLog`] and
//!   [`violation!`](crate::violation)); failures an operator must act on.
//! - Debug: everything per command or per I/O, and every further violation on a connection.

use std::str::FromStr;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::logs::log_control::LogControl;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("unknown log format '{other}' (text or json)")),
        }
    }
}

/// The filter directives from the flag, `RUST_LOG` (when it parses) or the default.
pub fn directives(level: Option<&str>) -> String {
    match level {
        Some(l) => l.to_owned(),
        None => std::env::var(EnvFilter::DEFAULT_ENV)
            .ok()
            .filter(|v| EnvFilter::try_new(v).is_ok())
            .unwrap_or_else(|| "info".to_owned()),
    }
}

/// Builds the filter from the flag, `RUST_LOG` or the default.
pub fn filter(level: Option<&str>) -> Result<EnvFilter, String> {
    let d = directives(level);
    EnvFilter::try_new(&d).map_err(|e| format!("--log-level '{d}': {e}"))
}

/// Installs the global subscriber, with a reloadable filter that [`LogControl`] drives; a
/// second call (tests) is a no-op.
pub fn init(level: Option<&str>, format: LogFormat) -> Result<(), String> {
    let directives = directives(level);
    let filter = filter(Some(&directives))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_span_events(FmtSpan::NONE);
    match format {
        LogFormat::Text => {
            let b = builder
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_target(false)
                .with_filter_reloading();
            let handle = b.reload_handle();
            if b.try_init().is_ok() {
                let apply = move |f: EnvFilter| handle.reload(f).map_err(|e| e.to_string());
                LogControl::new(&directives, Box::new(apply)).install();
            }
        }
        // Never colour JSON: escape codes inside string values break collectors.
        LogFormat::Json => {
            let b = builder
                .with_ansi(false)
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_filter_reloading();
            let handle = b.reload_handle();
            if b.try_init().is_ok() {
                let apply = move |f: EnvFilter| handle.reload(f).map_err(|e| e.to_string());
                LogControl::new(&directives, Box::new(apply)).install();
            }
        }
    }
    // Already installed (a test, or an embedding program): keep the existing subscriber.
    Ok(())
}

/// Per-connection memory of protocol violations already reported: the first is logged at warn,
/// the rest at debug, so a misbehaving host cannot flood the log.
#[derive(Debug, Default, Clone, Copy)]
pub struct ViolationLog {
    warned: bool,
}

impl ViolationLog {
    /// True the first time (log at warn), false afterwards (log at debug).
    pub fn first(&mut self) -> bool {
        !std::mem::replace(&mut self.warned, true)
    }
}

/// Logs a protocol violation: `warn!` the first time for this [`ViolationLog`], `debug!` after.
///
/// ```
/// let mut log = lamina_target::logs::telemetry::ViolationLog::default();
/// lamina_target::violation!(log, cid = 3u16, "data digest error");
/// lamina_target::violation!(log, cid = 4u16, "data digest error"); // at debug
/// ```
#[macro_export]
macro_rules! violation {
    ($log:expr, $($arg:tt)+) => {
        if $log.first() {
            ::tracing::warn!($($arg)+);
        } else {
            ::tracing::debug!($($arg)+);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_level_is_reported() {
        assert!(filter(Some("info,[")).is_err());
        assert!(filter(Some("debug")).is_ok());
        assert!(filter(Some("info,lamina_target=trace")).is_ok());
    }

    #[test]
    fn formats_parse() {
        assert_eq!("json".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert_eq!("text".parse::<LogFormat>().unwrap(), LogFormat::Text);
        assert!("xml".parse::<LogFormat>().is_err());
    }

    #[test]
    fn violations_warn_once() {
        let mut log = ViolationLog::default();
        assert!(log.first());
        assert!(!log.first());
        assert!(!log.first());
        violation!(log, what = "x", "still compiles and logs at debug");
    }
}
