//! The log filter changed at run time: the state behind SPDK's `log_set_level`,
//! `log_set_print_level`, `log_set_flag`, `log_clear_flag` and their getters.
//!
//! SPDK has two thresholds, one for syslog (the *level*) and one for the console (the *print
//! level*), and per-component debug *flags*. Lamina has one log output, stderr, which journald
//! or the container runtime collects, so that output plays both roles: it carries what either
//! threshold admits, that is the more verbose of the two. A flag turns its components' modules
//! up to debug whatever the thresholds (an operator sets `nvmf_tcp` to see the transport's
//! per-PDU lines without drowning in every other module's). Directives given at start-up
//! (`--log-level` or `RUST_LOG`) other than the bare default level are kept as they are.
//!
//! [`LogControl`] holds the state and rebuilds the filter from it; the subscriber's reload
//! handle is installed once by [`crate::logs::telemetry::init`]. Without it (Lamina embedded in a
//! program that set up its own logging) every change is refused, never silently dropped.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use parking_lot::Mutex;
use tracing_subscriber::EnvFilter;

/// SPDK's log levels, as its RPCs spell them, most severe first.
pub const LEVELS: [&str; 5] = ["ERROR", "WARNING", "NOTICE", "INFO", "DEBUG"];

/// SPDK's flag names Lamina has components for, with the modules each turns up to debug.
pub const FLAGS: &[(&str, &[&str])] = &[
    (
        "nvmf",
        &[
            "lamina_target::plane::controller",
            "lamina_target::plane::admin",
            "lamina_target::plane::discovery",
            "lamina_target::plane::subsystem",
        ],
    ),
    ("nvmf_tcp", &["lamina_target::transport", "lamina_protocol"]),
    (
        "bdev",
        &["lamina_target::plane::bdev", "lamina_target::plane::io"],
    ),
    ("aio", &["lamina_lvol::device"]),
    ("lvol", &["lamina_lvol"]),
    (
        "rpc",
        &["lamina_target::mgmt::rpc", "lamina_target::mgmt::config"],
    ),
];

/// The `tracing` level of an SPDK level (NOTICE has no own: it is INFO's neighbour).
fn tracing_level(spdk: &str) -> &'static str {
    match spdk {
        "ERROR" => "error",
        "WARNING" => "warn",
        "NOTICE" | "INFO" => "info",
        _ => "debug",
    }
}

/// The SPDK level of a `tracing` level directive, when it is one.
fn spdk_level(directive: &str) -> Option<&'static str> {
    Some(match directive.trim().to_ascii_lowercase().as_str() {
        "error" => "ERROR",
        "warn" | "warning" => "WARNING",
        "info" => "INFO",
        "debug" | "trace" => "DEBUG",
        _ => return None,
    })
}

type Apply = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;

/// The run-time log settings and the way to apply them.
pub struct LogControl {
    state: Mutex<State>,
    apply: Apply,
}

impl std::fmt::Debug for LogControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogControl")
            .field("state", &*self.state.lock())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
struct State {
    level: &'static str,
    print_level: &'static str,
    /// Start-up directives other than the default level, kept verbatim.
    extra: Vec<String>,
    flags: BTreeSet<&'static str>,
}

impl State {
    /// The filter directives this state stands for.
    fn directives(&self) -> String {
        let rank = |l: &str| LEVELS.iter().position(|x| *x == l).unwrap_or(0);
        let verbose = if rank(self.level) >= rank(self.print_level) {
            self.level
        } else {
            self.print_level
        };
        let mut d = vec![tracing_level(verbose).to_owned()];
        d.extend(self.extra.iter().cloned());
        for (flag, modules) in FLAGS {
            if self.flags.contains(flag) {
                d.extend(modules.iter().map(|m| format!("{m}=debug")));
            }
        }
        d.join(",")
    }
}

static GLOBAL: OnceLock<LogControl> = OnceLock::new();

impl LogControl {
    /// Control over a filter built from `directives` (what start-up used), applied by `apply`.
    pub fn new(directives: &str, apply: Apply) -> Self {
        let mut level = "INFO";
        let mut extra = Vec::new();
        for d in directives
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
        {
            match spdk_level(d) {
                Some(l) => level = l,
                None => extra.push(d.to_owned()),
            }
        }
        Self {
            state: Mutex::new(State {
                level,
                print_level: level,
                extra,
                flags: BTreeSet::new(),
            }),
            apply,
        }
    }

    /// Makes `self` the process's control (the first call wins).
    pub fn install(self) {
        let _ = GLOBAL.set(self);
    }

    /// The process's control, when Lamina set up its logging.
    pub fn global() -> Result<&'static Self, String> {
        GLOBAL.get().ok_or_else(|| {
            "this process's logging was not set up by Lamina (embedded use): its filter \
             cannot be changed here"
                .to_owned()
        })
    }

    /// Changes the state with `f` and applies it; on failure the state is left as it was.
    fn change(&self, f: impl FnOnce(&mut State)) -> Result<(), String> {
        let mut state = self.state.lock();
        let mut next = state.clone();
        f(&mut next);
        let filter = EnvFilter::try_new(next.directives()).map_err(|e| e.to_string())?;
        (self.apply)(filter)?;
        *state = next;
        Ok(())
    }

    /// Sets SPDK's level (`ERROR`, `WARNING`, `NOTICE`, `INFO`, `DEBUG`).
    pub fn set_level(&self, level: &str) -> Result<(), String> {
        let l = known_level(level)?;
        self.change(|s| s.level = l)
    }

    /// Sets SPDK's print level.
    pub fn set_print_level(&self, level: &str) -> Result<(), String> {
        let l = known_level(level)?;
        self.change(|s| s.print_level = l)
    }

    /// SPDK's level.
    pub fn level(&self) -> &'static str {
        self.state.lock().level
    }

    /// SPDK's print level.
    pub fn print_level(&self) -> &'static str {
        self.state.lock().print_level
    }

    /// Sets (`on`) or clears a flag; `all` means every flag.
    pub fn set_flag(&self, flag: &str, on: bool) -> Result<(), String> {
        let names: Vec<&'static str> = if flag == "all" {
            FLAGS.iter().map(|(f, _)| *f).collect()
        } else {
            let known = FLAGS.iter().find(|(f, _)| *f == flag).ok_or_else(|| {
                let list: Vec<&str> = FLAGS.iter().map(|(f, _)| *f).collect();
                format!(
                    "unknown log flag '{flag}': Lamina has {} (or all)",
                    list.join(", ")
                )
            })?;
            vec![known.0]
        };
        self.change(|s| {
            for n in names {
                if on {
                    s.flags.insert(n);
                } else {
                    s.flags.remove(n);
                }
            }
        })
    }

    /// Every flag with whether it is set.
    pub fn flags(&self) -> Vec<(&'static str, bool)> {
        let s = self.state.lock();
        FLAGS
            .iter()
            .map(|(f, _)| (*f, s.flags.contains(f)))
            .collect()
    }

    /// The filter directives in force.
    pub fn directives(&self) -> String {
        self.state.lock().directives()
    }
}

fn known_level(level: &str) -> Result<&'static str, String> {
    LEVELS
        .iter()
        .find(|l| l.eq_ignore_ascii_case(level))
        .copied()
        .ok_or_else(|| format!("unknown log level '{level}': one of {}", LEVELS.join(", ")))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn control(start: &str) -> (LogControl, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let c = LogControl::new(
            start,
            Box::new(move |f| {
                s.lock().push(f.to_string());
                Ok(())
            }),
        );
        (c, seen)
    }

    #[test]
    fn start_up_directives_give_the_levels_and_are_kept() {
        let (c, _) = control("warn,lamina_lvol=trace");
        assert_eq!((c.level(), c.print_level()), ("WARNING", "WARNING"));
        assert_eq!(c.directives(), "warn,lamina_lvol=trace");
    }

    #[test]
    fn the_output_carries_the_more_verbose_threshold() {
        let (c, seen) = control("info");
        c.set_level("ERROR").unwrap();
        assert_eq!(c.directives(), "info", "the print level is still INFO");
        c.set_print_level("ERROR").unwrap();
        assert_eq!(c.directives(), "error");
        c.set_print_level("debug").unwrap();
        assert_eq!(c.print_level(), "DEBUG");
        assert_eq!(c.directives(), "debug");
        assert_eq!(seen.lock().len(), 3, "each change was applied");
    }

    #[test]
    fn flags_turn_their_modules_to_debug_and_all_means_every_flag() {
        let (c, _) = control("info");
        c.set_flag("nvmf_tcp", true).unwrap();
        assert!(c.directives().contains("lamina_target::transport=debug"));
        assert!(c.flags().contains(&("nvmf_tcp", true)));
        assert!(c.flags().contains(&("lvol", false)));
        c.set_flag("all", true).unwrap();
        assert!(c.flags().iter().all(|(_, on)| *on));
        c.set_flag("all", false).unwrap();
        assert_eq!(c.directives(), "info");
    }

    #[test]
    fn unknown_names_are_refused_and_change_nothing() {
        let (c, seen) = control("info");
        let e = c.set_flag("iscsi", true).unwrap_err();
        assert!(e.contains("iscsi") && e.contains("nvmf_tcp"), "{e}");
        let e = c.set_level("LOUD").unwrap_err();
        assert!(e.contains("LOUD") && e.contains("NOTICE"), "{e}");
        assert!(seen.lock().is_empty());
    }

    #[test]
    fn a_failed_apply_keeps_the_old_state() {
        let c = LogControl::new("info", Box::new(|_| Err("no subscriber".into())));
        assert!(c.set_level("DEBUG").is_err());
        assert_eq!(c.level(), "INFO");
    }
}
