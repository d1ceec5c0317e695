//! The per-controller supervisor task: keep-alive expiry, namespace change notices, discovery
//! change notices, and unregistering the controller once it is torn down and every one of its
//! queues has finished its commands (the fence `connect` relies on).
//!
//! KATO (NVMe Base 2.0 §3.9): a controller whose host sent nothing for KATO is torn down; every
//! command on any queue of the controller counts as activity. While the admin queue has yet
//! to authenticate (DH-HMAC-CHAP), the authentication's step timeout stands in for KATO. A torn-down controller's queues
//! close (their connections end), and the host may connect again with the same host NQN.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;

use crate::plane::DataPlane;
use crate::plane::controller::Controller;
use crate::plane::subsystem::{SubsystemEvent, SubsystemKind};

/// Runs until the controller is torn down, then unregisters it.
pub async fn supervise(ctrl: Arc<Controller>, target: Arc<DataPlane>) {
    let (controllers, subsystems) = (&target.controllers, &target.subsystems);
    let mut ns_events = ctrl.subsystem().subscribe();
    let is_discovery = ctrl.subsystem().kind() == SubsystemKind::Discovery;
    let mut discovery = subsystems.subscribe_discovery();
    let cancel = ctrl.cancel_token().clone();
    let (mut ns_open, mut disc_open) = (true, is_discovery);
    loop {
        let deadline = ctrl.keep_alive_deadline();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => tokio::time::sleep(Duration::from_hours(1)).await,
            }
        };
        tokio::select! {
            () = cancel.cancelled() => break,
            // Set Features KATO: the new deadline (or none) applies at once.
            () = ctrl.kato_changed() => {}
            () = sleep => {
                // While the admin queue authenticates, its own step timeout applies (see
                // `auth::watchdog`): a host computing a large DH exchange sends nothing.
                if ctrl.queue_auth(0).is_some_and(|a| !a.admits()) {
                    ctrl.touch();
                    continue;
                }
                if ctrl.keep_alive_deadline().is_some_and(|d| d <= std::time::Instant::now()) {
                    tracing::warn!(
                        cntlid = ctrl.cntlid(),
                        hostnqn = %ctrl.host().hostnqn,
                        kato_ms = ctrl.kato_ms(),
                        "keep-alive timeout expired: tearing the controller down"
                    );
                    target.transport_stats.kato_expiries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    ctrl.tear_down();
                    break;
                }
            }
            ev = ns_events.recv(), if ns_open => match ev {
                Ok(SubsystemEvent::NamespaceChanged(nsid)) => ctrl.on_namespace_changed(nsid),
                Ok(SubsystemEvent::VisibilityChanged { nsid, host }) => {
                    if *host == *ctrl.host().hostnqn {
                        ctrl.on_namespace_changed(nsid);
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    // Every NSID it may have missed a change of, visible to it now or not.
                    for nsid in ctrl.subsystem().nsids() {
                        ctrl.on_namespace_changed(nsid);
                    }
                }
                Err(RecvError::Closed) => ns_open = false,
            },
            g = discovery.recv(), if disc_open => match g {
                Ok(_) | Err(RecvError::Lagged(_)) => ctrl.on_discovery_changed(),
                Err(RecvError::Closed) => disc_open = false,
            },
        }
    }
    ctrl.tear_down();
    // Fencing: the controller stays registered (so a reconnecting host is refused under
    // restrict_per_listener, see `connect`) until none of its commands can still write.
    let finished = ctrl.queues_finished();
    tokio::pin!(finished);
    if tokio::time::timeout(SLOW_RELEASE, &mut finished)
        .await
        .is_err()
    {
        tracing::warn!(cntlid = ctrl.cntlid(), hostnqn = %ctrl.host().hostnqn,
            queues = ctrl.queues_running(),
            "controller torn down, its commands still running: it is released when they end");
        finished.await;
    }
    ctrl.release();
    controllers.remove(ctrl.cntlid());
    tracing::info!(cntlid = ctrl.cntlid(), hostnqn = %ctrl.host().hostnqn,
        subnqn = %ctrl.subsystem().nqn(), "controller removed");
}

/// How long a torn-down controller's commands may run before the wait is logged.
const SLOW_RELEASE: Duration = Duration::from_secs(5);
