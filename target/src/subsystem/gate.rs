//! A drainable gate: work enters while it is open and holds a guard; closing it refuses new
//! work and `drain` waits for the guards already out. Namespace removal uses it so a namespace
//! goes only after its in-flight commands finished.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

/// The top bit marks the gate closed; the rest counts guards out.
const CLOSED: u64 = 1 << 63;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Gate {
    state: AtomicU64,
    drained: Notify,
}

/// Held while one piece of work runs.
#[derive(Debug)]
pub struct GateGuard<'a>(&'a Gate);

impl Gate {
    /// An open gate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Enters, unless the gate is closed.
    pub fn enter(&self) -> Option<GateGuard<'_>> {
        let prev = self.state.fetch_add(1, Ordering::Acquire);
        if prev & CLOSED != 0 {
            self.exit();
            return None;
        }
        Some(GateGuard(self))
    }

    fn exit(&self) {
        let prev = self.state.fetch_sub(1, Ordering::Release);
        if prev == CLOSED | 1 {
            self.drained.notify_waiters();
        }
    }

    /// Whether the gate is closed.
    pub fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Guards out now.
    pub fn in_flight(&self) -> u64 {
        self.state.load(Ordering::Acquire) & !CLOSED
    }

    /// Closes the gate and waits until every guard is dropped.
    pub async fn close_and_drain(&self) {
        self.state.fetch_or(CLOSED, Ordering::AcqRel);
        loop {
            let notified = self.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.in_flight() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for GateGuard<'_> {
    fn drop(&mut self) {
        self.0.exit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn drain_waits_for_guards_and_refuses_new_ones() {
        let gate = Arc::new(Gate::new());
        let g = gate.clone();
        let holder = tokio::spawn(async move {
            let _guard = g.enter().unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(gate.in_flight(), 1);
        gate.close_and_drain().await;
        assert!(holder.is_finished() || gate.in_flight() == 0);
        assert!(gate.enter().is_none());
        assert!(gate.is_closed());
        holder.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_racing_guards_all_drain() {
        let gate = Arc::new(Gate::new());
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let g = gate.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..100 {
                    if let Some(_guard) = g.enter() {
                        tokio::task::yield_now().await;
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        gate.close_and_drain().await;
        assert_eq!(gate.in_flight(), 0);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(gate.in_flight(), 0);
    }
}
