//! Process settings that code deep in the server reads: whether file bdevs use io_uring, how
//! connection tasks are laid out on runtimes, whether per-command counters are kept, and how
//! long a connection polls for its host's next command before parking, and from what size
//! payloads are sent without a copy. They are decided once, in [`Settings::resolve`], from
//! the `lamina serve` flags (which also read `LAMINA_IO_URING`, `LAMINA_CONN_RUNTIME`,
//! `LAMINA_IO_STATS`, `LAMINA_BUSY_POLL_US` and `LAMINA_ZERO_COPY_MIN`), then the `[runtime]`
//! section of a TOML configuration file, then the defaults; nothing else reads the
//! environment for them.

use std::time::Duration;

use serde::Deserialize;

/// How connection tasks are laid out on runtimes (see `crate::transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ConnRuntime {
    /// On the multi-thread runtime that accepted them (work stealing moves whole connections).
    #[default]
    Shared,
    /// Dealt round-robin to one current-thread runtime per CPU.
    PerCore,
}

/// An on/off switch as flags and environment variables give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch(pub bool);

/// Parses `on`/`off` (also `true`/`false`, `yes`/`no`, `1`/`0`), in any case.
pub fn parse_switch(s: &str) -> Result<Switch, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(Switch(true)),
        "off" | "false" | "no" | "0" => Ok(Switch(false)),
        other => Err(format!("'{other}': give on or off")),
    }
}

/// `[runtime]` of a TOML configuration file.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSection {
    /// File bdevs use io_uring when the kernel offers it.
    pub io_uring: Option<bool>,
    /// Connection runtime layout.
    pub conn_runtime: Option<ConnRuntime>,
    /// Per-command counters (namespace I/O statistics, latency histograms).
    pub io_stats: Option<bool>,
    /// Microseconds a connection polls for the next command before parking (0: never).
    pub busy_poll_us: Option<u32>,
    /// Smallest payload sent with `MSG_ZEROCOPY`, in bytes (0: never).
    pub zero_copy_min: Option<u32>,
}

/// The settings in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// File bdevs use io_uring when the kernel offers it (else the blocking thread pool).
    pub io_uring: bool,
    /// Connection runtime layout.
    pub conn_runtime: ConnRuntime,
    /// Per-command counters are kept.
    pub io_stats: bool,
    /// How long an idle I/O queue polls for its host's next command before parking
    /// (`crate::transport::busy_poll`); zero: never.
    pub busy_poll: Duration,
    /// Smallest payload (bytes) a write sends with `MSG_ZEROCOPY`
    /// (`crate::transport::zero_copy`); zero: never.
    pub zero_copy_min: usize,
}

/// The default busy-poll budget, in microseconds.
pub const DEFAULT_BUSY_POLL_US: u32 = 50;
/// The default smallest zero-copy payload, in bytes: off. Over loopback (and a veth pair)
/// the kernel copies every zero-copy send anyway, so there it only costs; on a NIC with
/// scatter-gather it saves the copy of large reads (32768 is a good start, and
/// `lamina_zero_copy_sends_total{outcome}` says whether the kernel copied after all).
pub const DEFAULT_ZERO_COPY_MIN: u32 = 0;

impl Default for Settings {
    fn default() -> Self {
        Self {
            io_uring: true,
            conn_runtime: ConnRuntime::Shared,
            io_stats: true,
            busy_poll: Duration::from_micros(u64::from(DEFAULT_BUSY_POLL_US)),
            zero_copy_min: DEFAULT_ZERO_COPY_MIN as usize,
        }
    }
}

/// What the flags (or their environment variables) said; `None` where they said nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Given {
    /// `--io-uring` / `LAMINA_IO_URING`.
    pub io_uring: Option<Switch>,
    /// `--conn-runtime` / `LAMINA_CONN_RUNTIME`.
    pub conn_runtime: Option<ConnRuntime>,
    /// `--io-stats` / `LAMINA_IO_STATS`.
    pub io_stats: Option<Switch>,
    /// `--busy-poll-us` / `LAMINA_BUSY_POLL_US`.
    pub busy_poll_us: Option<u32>,
    /// `--zero-copy-min` / `LAMINA_ZERO_COPY_MIN`.
    pub zero_copy_min: Option<u32>,
}

impl Settings {
    /// Flags first, then the file's `[runtime]`, then the defaults.
    pub fn resolve(given: Given, file: RuntimeSection) -> Self {
        let d = Self::default();
        Self {
            io_uring: given
                .io_uring
                .map(|s| s.0)
                .or(file.io_uring)
                .unwrap_or(d.io_uring),
            conn_runtime: given
                .conn_runtime
                .or(file.conn_runtime)
                .unwrap_or(d.conn_runtime),
            io_stats: given
                .io_stats
                .map(|s| s.0)
                .or(file.io_stats)
                .unwrap_or(d.io_stats),
            busy_poll: given
                .busy_poll_us
                .or(file.busy_poll_us)
                .map_or(d.busy_poll, |us| Duration::from_micros(u64::from(us))),
            zero_copy_min: given
                .zero_copy_min
                .or(file.zero_copy_min)
                .map_or(d.zero_copy_min, |b| b as usize),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_parse_as_the_environment_gave_them() {
        for on in ["on", "TRUE", " yes ", "1"] {
            assert_eq!(parse_switch(on), Ok(Switch(true)));
        }
        for off in ["off", "False", "no", "0"] {
            assert_eq!(parse_switch(off), Ok(Switch(false)));
        }
        assert!(parse_switch("maybe").unwrap_err().contains("maybe"));
    }

    #[test]
    fn flags_beat_the_file_which_beats_the_defaults() {
        let file = RuntimeSection {
            io_uring: Some(false),
            conn_runtime: Some(ConnRuntime::PerCore),
            io_stats: None,
            busy_poll_us: Some(20),
            zero_copy_min: Some(0),
        };
        let us = Duration::from_micros;
        let s = Settings::resolve(Given::default(), file);
        assert_eq!(
            (s.io_uring, s.conn_runtime, s.io_stats, s.busy_poll),
            (false, ConnRuntime::PerCore, true, us(20))
        );
        assert_eq!(s.zero_copy_min, 0);
        let given = Given {
            io_uring: Some(Switch(true)),
            conn_runtime: None,
            io_stats: Some(Switch(false)),
            busy_poll_us: Some(0),
            zero_copy_min: Some(65536),
        };
        let s = Settings::resolve(given, file);
        assert_eq!(
            (s.io_uring, s.conn_runtime, s.io_stats, s.busy_poll),
            (true, ConnRuntime::PerCore, false, Duration::ZERO)
        );
        assert_eq!(s.zero_copy_min, 65536);
        assert_eq!(
            Settings::resolve(Given::default(), RuntimeSection::default()),
            Settings::default()
        );
    }
}
