//! The accept loop every listener runs (NVMe/TCP ports, the JSON-RPC sockets, the metrics
//! endpoint): accept until cancelled, hand each connection on, and after a failed accept
//! (`EMFILE` and friends) log it and back off instead of spinning.

use std::future::Future;
use std::io;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Accepts with `accept` until `cancel` fires, giving each connection to `handle` (which
/// spawns or refuses it, without waiting); `listener` names the listener in the log.
pub async fn accept_loop<A, F, T>(
    cancel: &CancellationToken,
    listener: &'static str,
    backoff: Duration,
    mut accept: A,
    mut handle: impl FnMut(T),
) where
    A: FnMut() -> F,
    F: Future<Output = io::Result<T>>,
{
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            a = accept() => a,
        };
        match accepted {
            Ok(conn) => handle(conn),
            Err(e) => {
                tracing::warn!(listener, error = %e, "accept failed: backing off");
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn failures_back_off_and_cancel_ends_the_loop() {
        let cancel = CancellationToken::new();
        let (tries, handled) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let started = std::time::Instant::now();
        accept_loop(
            &cancel,
            "test",
            Duration::from_millis(20),
            || {
                let n = tries.fetch_add(1, Ordering::Relaxed);
                let cancel = cancel.clone();
                async move {
                    match n {
                        0 | 2 => Ok(n),
                        1 => Err(io::Error::from(io::ErrorKind::OutOfMemory)),
                        _ => {
                            cancel.cancel();
                            std::future::pending().await
                        }
                    }
                }
            },
            |_| {
                handled.fetch_add(1, Ordering::Relaxed);
            },
        )
        .await;
        assert_eq!(handled.load(Ordering::Relaxed), 2);
        assert!(
            started.elapsed() >= Duration::from_millis(20),
            "one back-off"
        );
    }
}
