//! Turning SIGINT/SIGTERM into the root cancellation token.
//!
//! Every listener and connection holds a child of one root `CancellationToken` and runs in a
//! `TaskTracker`; a signal cancels the root, and the server then waits on the tracker so
//! in-flight commands finish (or fail cleanly) before data is flushed and the process exits 0.

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Cancels `root` on the first SIGINT or SIGTERM; returns which one arrived.
pub async fn cancel_on_signal(root: CancellationToken) -> std::io::Result<&'static str> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let which = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
        () = root.cancelled() => "cancelled",
    };
    root.cancel();
    Ok(which)
}
