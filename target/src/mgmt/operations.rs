//! Long-running lvol operations and their progress: inflate, decouple, delete with a clear
//! method, thick create.
//!
//! Such an operation runs in the task of the client connection that asked for it (so it blocks
//! nothing else) and registers its [`Progress`] here for as long as it runs. The Lamina-specific
//! query `lamina_get_operations` lists them, so a second connection (the CLI's progress bar,
//! a monitoring script) can follow an operation while the first waits for its answer. A finished
//! operation stays listed, with its outcome, for [`KEEP_FINISHED`] (at most [`MAX_FINISHED`] of
//! them), so a caller that polls slowly still sees how it ended.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lamina_lvol::Progress;
use parking_lot::Mutex;
use serde::Serialize;

use crate::mgmt::rpc::error::RpcError;

/// How long a finished operation stays listed.
pub const KEEP_FINISHED: Duration = Duration::from_mins(1);
/// Most finished operations kept.
pub const MAX_FINISHED: usize = 32;

/// Where an operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationState {
    /// Still running.
    Running,
    /// Finished successfully.
    Complete,
    /// Finished with an error (see `error`).
    Failed,
    /// Abandoned: the task running it was dropped (shutdown) before it finished.
    Cancelled,
}

/// One operation, as `lamina_get_operations` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperationInfo {
    /// Unique id, increasing in start order.
    pub id: u64,
    /// The RPC method running it, e.g. `bdev_lvol_inflate`.
    pub method: &'static str,
    /// The lvol's alias `lvs_name/lvol_name` when the operation started.
    pub lvol: String,
    /// The lvol's UUID; empty for a thick create, whose lvol has none until it exists.
    pub lvol_uuid: String,
    /// Where the operation is.
    pub state: OperationState,
    /// Units finished.
    pub done: u64,
    /// Units to do (0 until the operation knows).
    pub total: u64,
    /// What a unit is.
    pub unit: &'static str,
    /// Milliseconds since the start (until the end, once finished).
    pub elapsed_ms: u64,
    /// The error, for a failed operation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug)]
struct Entry {
    method: &'static str,
    lvol: String,
    lvol_uuid: String,
    progress: Progress,
    started: Instant,
}

#[derive(Debug)]
struct Finished {
    info: OperationInfo,
    at: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    running: BTreeMap<u64, Entry>,
    finished: VecDeque<Finished>,
}

/// The registry of long operations. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct Operations(Arc<Mutex<Inner>>);

impl Operations {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a running operation on lvol `lvol` (alias) / `lvol_uuid`, reporting through
    /// `progress`. The operation is listed until the returned guard is finished or dropped.
    pub fn start(
        &self,
        method: &'static str,
        lvol: &str,
        lvol_uuid: &str,
        progress: &Progress,
    ) -> OperationGuard {
        let mut inner = self.0.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        inner.running.insert(
            id,
            Entry {
                method,
                lvol: lvol.to_owned(),
                lvol_uuid: lvol_uuid.to_owned(),
                progress: progress.clone(),
                started: Instant::now(),
            },
        );
        OperationGuard {
            ops: self.clone(),
            id,
            done: false,
        }
    }

    /// Every running operation, then the recently finished ones, by id.
    pub fn list(&self) -> Vec<OperationInfo> {
        let now = Instant::now();
        let mut inner = self.0.lock();
        inner
            .finished
            .retain(|f| now.duration_since(f.at) < KEEP_FINISHED);
        let mut out: Vec<OperationInfo> = inner
            .running
            .iter()
            .map(|(id, e)| info(*id, e, OperationState::Running, None))
            .chain(inner.finished.iter().map(|f| f.info.clone()))
            .collect();
        out.sort_by_key(|o| o.id);
        out
    }

    /// Moves operation `id` to the finished list.
    fn end(&self, id: u64, state: OperationState, error: Option<String>) {
        let mut inner = self.0.lock();
        let Some(entry) = inner.running.remove(&id) else {
            return;
        };
        let info = info(id, &entry, state, error);
        if inner.finished.len() >= MAX_FINISHED {
            inner.finished.pop_front();
        }
        inner.finished.push_back(Finished {
            info,
            at: Instant::now(),
        });
    }
}

fn info(id: u64, e: &Entry, state: OperationState, error: Option<String>) -> OperationInfo {
    OperationInfo {
        id,
        method: e.method,
        lvol: e.lvol.clone(),
        lvol_uuid: e.lvol_uuid.clone(),
        state,
        done: e.progress.done().min(e.progress.total()),
        total: e.progress.total(),
        unit: "clusters",
        elapsed_ms: u64::try_from(e.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        error,
    }
}

/// A registered operation; records the outcome given to [`OperationGuard::finish`], or
/// `cancelled` when dropped without one.
#[derive(Debug)]
pub struct OperationGuard {
    ops: Operations,
    id: u64,
    done: bool,
}

impl OperationGuard {
    /// The operation's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Records how the operation ended.
    pub fn finish<T>(mut self, outcome: &Result<T, RpcError>) {
        self.done = true;
        match outcome {
            Ok(_) => self.ops.end(self.id, OperationState::Complete, None),
            Err(e) => self
                .ops
                .end(self.id, OperationState::Failed, Some(e.message.clone())),
        }
    }
}

impl Drop for OperationGuard {
    fn drop(&mut self) {
        if !self.done {
            self.ops.end(self.id, OperationState::Cancelled, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_then_finished_with_outcome() {
        let ops = Operations::new();
        let p = Progress::new();
        let g1 = ops.start("bdev_lvol_inflate", "lvs0/a", "u1", &p);
        let g2 = ops.start("bdev_lvol_delete", "lvs0/b", "u2", &Progress::new());
        let list = ops.list();
        assert_eq!(list.len(), 2);
        assert!(list.iter().all(|o| o.state == OperationState::Running));
        assert!(list[0].id < list[1].id);
        g1.finish::<()>(&Err(RpcError::busy("lvol is busy")));
        drop(g2);
        let list = ops.list();
        assert_eq!(list[0].state, OperationState::Failed);
        assert_eq!(list[0].error.as_deref(), Some("lvol is busy"));
        assert_eq!(list[1].state, OperationState::Cancelled);
        let v = serde_json::to_value(&list[1]).unwrap();
        assert_eq!(v["state"], "cancelled");
        assert!(v.get("error").is_none());
    }

    #[test]
    fn finished_list_is_bounded() {
        let ops = Operations::new();
        for i in 0..(MAX_FINISHED + 5) {
            let g = ops.start(
                "bdev_lvol_delete",
                &format!("lvs0/{i}"),
                "u",
                &Progress::new(),
            );
            g.finish(&Ok::<(), RpcError>(()));
        }
        let list = ops.list();
        assert_eq!(list.len(), MAX_FINISHED);
        assert!(list.iter().all(|o| o.state == OperationState::Complete));
    }
}
