//! Progress bars for long operations (inflate, decouple, a delete that clears, a thick create).
//!
//! The call itself waits on the session's connection; meanwhile a second connection polls the
//! Lamina-specific `lamina_get_operations` every [`POLL_INTERVAL`] and draws the operation's
//! progress on stderr, on one line that is cleared when the call returns. It only draws when
//! stderr is a terminal and `--json` is off; `LAMINA_PROGRESS=always` or `never` overrides
//! that, and `LAMINA_PROGRESS_INTERVAL_MS` changes the polling interval. A server without
//! `lamina_get_operations` (SPDK itself) just gets no bar.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::session::{CliError, Session, items, str_of, u64_of};
use crate::mgmt::rpc::client::RpcClient;

/// How often the operation is polled by default; an operation that ends sooner draws nothing.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

fn poll_interval() -> Duration {
    std::env::var("LAMINA_PROGRESS_INTERVAL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(POLL_INTERVAL, |ms: u64| Duration::from_millis(ms.max(1)))
}
/// Width of the bar in characters.
const BAR_WIDTH: u64 = 30;

/// Calls `method` and draws the progress of the operation it starts on lvol `lvol` (the name
/// the user gave: alias or UUID) while it runs.
pub async fn call_with_progress(
    s: &mut Session,
    method: &'static str,
    params: Value,
    lvol: &str,
) -> Result<Value, CliError> {
    if !should_draw(s.opts().json) {
        return s.call(method, params).await;
    }
    let watcher = Watcher::start(s.opts().socket.clone(), method, lvol.to_owned()).await;
    let result = s.call(method, params).await;
    if let Some(w) = watcher {
        w.stop().await;
    }
    result
}

fn should_draw(json: bool) -> bool {
    match std::env::var("LAMINA_PROGRESS").as_deref() {
        Ok("always") => true,
        Ok("never") => false,
        _ => !json && std::io::stderr().is_terminal(),
    }
}

struct Watcher {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    /// Connects the second client and notes which operations exist already; `None` when the
    /// server cannot be polled (no bar then, the call goes on).
    async fn start(socket: PathBuf, method: &'static str, lvol: String) -> Option<Self> {
        let mut client = RpcClient::connect(&socket).await.ok()?;
        client.set_timeout(Duration::from_secs(5));
        let before = client.call("lamina_get_operations", None).await.ok()?;
        let baseline = items(&before)
            .iter()
            .map(|o| u64_of(o, "id"))
            .max()
            .unwrap_or(0);
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            poll(&mut client, &token, method, &lvol, baseline).await;
        });
        Some(Self { stop, task })
    }

    async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn poll(
    client: &mut RpcClient,
    stop: &CancellationToken,
    method: &str,
    lvol: &str,
    baseline: u64,
) {
    let mut drawn = false;
    let interval = poll_interval();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(interval) => {}
        }
        let Ok(ops) = client.call("lamina_get_operations", None).await else {
            break;
        };
        let mine = items(&ops).iter().rev().find(|o| {
            u64_of(o, "id") > baseline
                && str_of(o, "method") == method
                && (str_of(o, "lvol") == lvol || str_of(o, "lvol_uuid") == lvol)
        });
        if let Some(op) = mine {
            let mut err = std::io::stderr();
            let _ = write!(err, "\r\x1b[2K{}", render_bar(op));
            let _ = err.flush();
            drawn = true;
        }
    }
    if drawn {
        let mut err = std::io::stderr();
        let _ = write!(err, "\r\x1b[2K");
        let _ = err.flush();
    }
}

/// One line for an operation as `lamina_get_operations` lists it, e.g.
/// `bdev_lvol_inflate lvs0/vol1 [#########.....................]  30% 300/1000 clusters 2.1s`.
pub fn render_bar(op: &Value) -> String {
    let (done, total) = (u64_of(op, "done"), u64_of(op, "total"));
    let done_clamped = done.min(total);
    let filled = done_clamped
        .saturating_mul(BAR_WIDTH)
        .checked_div(total)
        .unwrap_or(0);
    let percent = done_clamped
        .saturating_mul(100)
        .checked_div(total)
        .unwrap_or(0);
    let bar: String = (0..BAR_WIDTH)
        .map(|i| if i < filled { '#' } else { '.' })
        .collect();
    let secs = u64_of(op, "elapsed_ms") as f64 / 1000.0;
    format!(
        "{} {} [{bar}] {percent:>3}% {done}/{total} {} {secs:.1}s",
        str_of(op, "method"),
        str_of(op, "lvol"),
        str_of(op, "unit"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn example_operation(done: u64, total: u64) -> Value {
        json!({"id": 1, "method": "bdev_lvol_inflate", "lvol": "lvs0/vol1", "lvol_uuid": "u",
            "state": "running", "done": done, "total": total, "unit": "clusters",
            "elapsed_ms": 2100})
    }

    #[test]
    fn bar_shows_fraction() {
        let line = render_bar(&example_operation(300, 1000));
        assert!(
            line.starts_with("bdev_lvol_inflate lvs0/vol1 [#########....."),
            "{line}"
        );
        assert!(line.contains(" 30% 300/1000 clusters 2.1s"), "{line}");
        let line = render_bar(&example_operation(0, 0));
        assert!(line.contains("  0% 0/0"), "{line}");
        let line = render_bar(&example_operation(7, 7));
        assert!(line.contains(&"#".repeat(30)), "{line}");
        assert!(line.contains("100%"), "{line}");
    }
}
