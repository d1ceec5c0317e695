//! Retrying pending configuration: a task that applies the pending entries again, front to
//! back, until none is left, so an entry and everything that depends on it apply in order
//! once what they need is there (a file or block device that shows up, an lvstore that loads
//! after a repair, a listen address that gets configured).
//!
//! When: after a wait that starts at [`RetryPolicy::first`] and doubles after every pass that
//! applied nothing, up to [`RetryPolicy::max`] (`lamina serve --pending-retry-interval`); at
//! once after any successful configuration change over JSON-RPC (it may be what an entry
//! waited for) and on `lamina_retry_pending_config`. A pass that applies something starts the
//! wait over. Passes never overlap. An entry whose lvstore did not load is left to the passes
//! an operator asks for (see `super::pending::NotApplied::on_request`).
//!
//! Log: an entry that applies is logged at info; one that fails is logged at warn when its
//! reason changed, else at most once every `pending::REPEAT_LOG_INTERVAL` (debug
//! otherwise), so a device missing for days costs a line every ten minutes per entry, not one
//! per retry.

use std::sync::Arc;
use std::time::Duration;

use super::pending::Logged;
use super::replay::{Outcome, apply_entry};
use crate::mgmt::context::Target;
use crate::mgmt::rpc::dispatch::Methods;

/// When pending entries are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first wait, and the wait after a pass that applied something.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl RetryPolicy {
    /// The policy of `--pending-retry-interval MAX`: from 1 s (or MAX if shorter), doubling
    /// up to MAX.
    pub fn up_to(max: Duration) -> Self {
        let max = max.max(Duration::from_millis(10));
        Self {
            first: max.min(Duration::from_secs(1)),
            max,
        }
    }

    fn next(&self, wait: Duration) -> Duration {
        (wait * 2).min(self.max)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::up_to(Duration::from_secs(30))
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    /// Entries that applied (or were found already there).
    pub applied: usize,
    /// Entries still pending after the pass.
    pub pending: usize,
}

/// Tries every pending entry once, in order (those retried on request only when
/// `requested`); persists the configuration when anything changed.
pub async fn run_pass(t: &Arc<Target>, methods: &Methods, requested: bool) -> PassReport {
    let _pass = t.pending.pass_lock().await;
    let mut applied = 0;
    for entry in t.pending.list() {
        if t.cancel.is_cancelled() {
            break;
        }
        if entry.on_request && !requested {
            continue;
        }
        // Dropped by an operator since the list was taken.
        if t.pending.get(entry.id).is_none() {
            continue;
        }
        match apply_entry(t, methods, &entry.method, &entry.params).await {
            Ok(outcome) => {
                t.pending.remove(entry.id);
                applied += 1;
                tracing::info!(id = entry.id, entry = %entry.object(), attempts = entry.attempts + 1,
                    existing = outcome == Outcome::Existing, "pending configuration entry applied");
            }
            Err(why) => match t.pending.record_failure(entry.id, &why) {
                Logged::Log => tracing::warn!(id = entry.id, entry = %entry.object(),
                    method = %entry.method, reason = %why.reason,
                    "pending configuration entry still not applied"),
                Logged::Quiet => tracing::debug!(id = entry.id, entry = %entry.object(),
                    reason = %why.reason, "pending configuration entry still not applied"),
            },
        }
    }
    // A bdev opened and closed again (its lvstore did not load) was persisted meanwhile: the
    // write after the pass puts the file back; it is skipped when nothing changed.
    super::persist(t).await;
    let pending = t.pending.len();
    if applied > 0 {
        tracing::info!(
            applied,
            pending,
            "pending configuration retried: {applied} applied, {pending} still pending"
        );
    }
    PassReport { applied, pending }
}

/// Runs passes while anything is pending, until the target shuts down.
pub async fn run(t: Arc<Target>, methods: Arc<Methods>, policy: RetryPolicy) {
    let mut wait = policy.first;
    loop {
        if t.pending.is_empty() {
            // Nothing to do until something is pending again (a --config apply at start-up
            // is the only source, but the loop does not depend on that).
            tokio::select! {
                () = t.cancel.cancelled() => return,
                () = t.pending.woken() => {}
            }
            wait = policy.first;
            continue;
        }
        tokio::select! {
            () = t.cancel.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
            () = t.pending.woken() => {}
        }
        let report = run_pass(&t, &methods, false).await;
        wait = if report.applied > 0 {
            policy.first
        } else {
            policy.next(wait)
        };
    }
}

/// Starts the retry task in the target's tracker, and lets `lamina_retry_pending_config` run
/// passes with `methods`.
pub fn spawn(t: &Arc<Target>, methods: &Arc<Methods>, policy: RetryPolicy) {
    t.pending.set_methods(Arc::downgrade(methods));
    t.tracker.spawn(run(t.clone(), methods.clone(), policy));
}

/// Parses a `--pending-retry-interval`: `500ms`, `30s`, `5m`, or plain seconds.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{s}': give a duration such as 500ms, 30s or 5m"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        other => return Err(format!("'{s}': unit '{other}' (use ms, s or m)")),
    };
    if !(0.01..=3600.0).contains(&secs) {
        return Err(format!("'{s}': between 10ms and 60m"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_with_units_and_bounds() {
        assert_eq!(parse_interval("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_interval("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_interval("200ms").unwrap(), Duration::from_millis(200));
        assert_eq!(parse_interval("2m").unwrap(), Duration::from_mins(2));
        for bad in ["", "x", "5h", "1ms", "2000m", "-1s"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn waits_double_up_to_the_interval() {
        let p = RetryPolicy::up_to(Duration::from_secs(30));
        assert_eq!(p.first, Duration::from_secs(1));
        let mut w = p.first;
        let mut seen = Vec::new();
        for _ in 0..7 {
            seen.push(w.as_secs());
            w = p.next(w);
        }
        assert_eq!(seen, vec![1, 2, 4, 8, 16, 30, 30]);
        let short = RetryPolicy::up_to(Duration::from_millis(200));
        assert_eq!(short.first, Duration::from_millis(200));
        assert_eq!(short.next(short.first), Duration::from_millis(200));
    }
}
