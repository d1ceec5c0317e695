//! The NVMe/TCP transport: listeners that accept connections and the per-connection task.
//!
//! [`listen`] binds an address; [`accept_loop`] spawns one [`connection::serve`] task per
//! accepted connection, bounded by a semaphore so a connection flood cannot exhaust the
//! process. Each connection is one queue (admin or I/O) of one controller.

pub mod connection;
pub mod output;
pub mod queue;
pub mod transfer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::context::Target;

/// Most concurrent connections per listener.
pub const MAX_CONNECTIONS: usize = 16 * 1024;

/// Binds an NVMe/TCP listener.
pub async fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Accepts connections until `cancel` fires.
pub async fn accept_loop(listener: TcpListener, target: Arc<Target>, cancel: CancellationToken) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            () = cancel.cancelled() => break,
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, _)) => {
                let (t, c) = (target.clone(), cancel.clone());
                target.tracker.spawn(async move {
                    connection::serve(stream, t, c).await;
                    drop(permit);
                });
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
