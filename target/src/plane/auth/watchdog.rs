//! The watchdog of a queue's first authentication: a host that connects and then stalls before
//! it has authenticated loses its controller once the step timeout passes.

use std::time::Instant;

use super::{FailReason, QueueAuth};

/// Tears the controller down when queue `qid` has not authenticated within the step timeout
/// of its last step (or of its Connect, if the host never began): a host that stalls in the
/// middle of its first authentication holds nothing for long. Ends once the queue has
/// authenticated, or is gone, or the controller is.
pub async fn watchdog(
    auth: std::sync::Weak<QueueAuth>,
    ctrl: std::sync::Weak<crate::plane::controller::Controller>,
    cancel: tokio_util::sync::CancellationToken,
    plane: std::sync::Weak<crate::plane::DataPlane>,
    qid: u16,
) {
    loop {
        let Some(deadline) = auth.upgrade().map(|a| a.first_deadline()) else {
            return;
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep_until(deadline.into()) => {}
        }
        let (Some(a), Some(c)) = (auth.upgrade(), ctrl.upgrade()) else {
            return;
        };
        if a.admits() {
            return;
        }
        if Instant::now() >= a.first_deadline() {
            if let Some(plane) = plane.upgrade() {
                plane
                    .transport_stats
                    .on_authentication(FailReason::Timeout.label());
            }
            tracing::warn!(cntlid = c.cntlid(), qid, peer = %c.host().peer,
                hostnqn = %c.host().hostnqn,
                "DH-HMAC-CHAP: the host did not finish authenticating in time; tearing the \
                 controller down");
            c.tear_down();
            return;
        }
    }
}
