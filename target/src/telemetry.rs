//! Logging: `tracing` events formatted by `tracing-subscriber`, as text or JSON, on stderr.
//!
//! The filter comes from `--log-level` when given (any `EnvFilter` directive such as `debug` or
//! `info,lamina_target::transport=debug`), else from `RUST_LOG`, else `info`. JSON output is
//! one object per line (`timestamp`, `level`, `target`, the event's fields flattened in, and
//! `span` holding the current span's name and fields), for container log collectors.
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

/// Builds the filter from the flag, `RUST_LOG` or the default.
pub fn filter(level: Option<&str>) -> Result<EnvFilter, String> {
    match level {
        Some(l) => EnvFilter::try_new(l).map_err(|e| format!("--log-level '{l}': {e}")),
        None => Ok(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))),
    }
}

/// Installs the global subscriber; a second call (tests) is a no-op.
pub fn init(level: Option<&str>, format: LogFormat) -> Result<(), String> {
    let filter = filter(level)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_span_events(FmtSpan::NONE);
    let result = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false)
            .try_init(),
        // Never colour JSON: escape codes inside string values break collectors.
        LogFormat::Json => builder
            .with_ansi(false)
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    // Already installed (a test, or an embedding program): keep the existing subscriber.
    let _ = result;
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
/// let mut log = lamina_target::telemetry::ViolationLog::default();
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
