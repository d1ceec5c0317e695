//! [`KeepAlive`]: the background task that sends Keep Alive on the admin queue every KATO/2
//! (the Linux host's period for controllers without traffic-based keep alive), and can be
//! paused so a test can let KATO expire.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use lamina_protocol::nvme::{AdminOpcode, SimpleAdmin};
use tokio::task::JoinHandle;

use crate::host::core::Command;
use crate::host::queue::Queue;

#[derive(Debug)]
struct State {
    enabled: AtomicBool,
    sent: AtomicU64,
}

/// Handle of the keep-alive task; dropping it stops the task.
#[derive(Debug)]
pub(crate) struct KeepAlive {
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl KeepAlive {
    /// Starts sending Keep Alive on `admin` every `kato_ms / 2` milliseconds.
    pub(crate) fn start(admin: Queue, kato_ms: u32) -> Self {
        let state = Arc::new(State {
            enabled: AtomicBool::new(true),
            sent: AtomicU64::new(0),
        });
        let period = Duration::from_millis(u64::from(kato_ms / 2).max(1));
        let task = tokio::spawn(run(admin, period, Arc::clone(&state)));
        Self { state, task }
    }

    /// Pauses (false) or resumes (true) the Keep Alive commands.
    pub(crate) fn set_enabled(&self, enabled: bool) {
        self.state.enabled.store(enabled, Ordering::Release);
    }

    /// Keep Alive commands completed successfully so far.
    pub(crate) fn sent(&self) -> u64 {
        self.state.sent.load(Ordering::Acquire)
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(admin: Queue, period: Duration, state: Arc<State>) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if admin.is_closed() {
            return;
        }
        if !state.enabled.load(Ordering::Acquire) {
            continue;
        }
        let sqe = SimpleAdmin {
            opcode: AdminOpcode::KEEP_ALIVE,
            cid: 0,
        }
        .to_sqe();
        // A Keep Alive that outlives the period is itself a sign of trouble: give up on it.
        match admin
            .execute_within(Command::new(sqe), period.max(Duration::from_secs(1)))
            .await
        {
            Ok(done) if done.is_success() => {
                state.sent.fetch_add(1, Ordering::AcqRel);
            }
            Ok(done) => {
                tracing::warn!(status = ?done.cqe.status, "keep alive failed");
            }
            Err(e) if e.is_fatal() => return,
            Err(e) => tracing::warn!(error = %e, "keep alive failed"),
        }
    }
}
