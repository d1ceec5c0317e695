//! The worker threads of a run. Each thread runs a current-thread tokio runtime, opens its
//! connections there (a socket belongs to the runtime that opens it), reports that it is
//! connected, waits for the common start instant, runs one engine task per connection and
//! sends back their results. Connections are dealt to threads round-robin.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

use super::PerfError;
use super::engine::{ConnResult, Engine, Timing};
use super::live::Live;
use super::plan::ConnPlan;
use crate::host::IoConnector;

type Results = Result<Vec<ConnResult>, PerfError>;

/// Handle of the running workers.
#[derive(Debug)]
pub(crate) struct Pool {
    ready_rx: mpsc::UnboundedReceiver<Result<(), PerfError>>,
    start_tx: watch::Sender<Option<Timing>>,
    done: Vec<oneshot::Receiver<Results>>,
}

impl Pool {
    /// Starts up to `threads` workers for `plans`.
    pub(crate) fn spawn(
        connector: IoConnector,
        plans: Vec<ConnPlan>,
        queue_size: u16,
        live: &Arc<Live>,
        threads: usize,
    ) -> Result<Self, PerfError> {
        let threads = threads.clamp(1, plans.len().max(1));
        let mut shares: Vec<Vec<ConnPlan>> = (0..threads).map(|_| Vec::new()).collect();
        for (i, p) in plans.into_iter().enumerate() {
            if let Some(share) = shares.get_mut(i % threads) {
                share.push(p);
            }
        }
        let (ready_tx, ready_rx) = mpsc::unbounded_channel();
        let (start_tx, start_rx) = watch::channel(None);
        let mut done = Vec::with_capacity(threads);
        for (i, share) in shares.into_iter().enumerate() {
            let (done_tx, done_rx) = oneshot::channel();
            let job = Job {
                connector: connector.clone(),
                plans: share,
                queue_size,
                live: Arc::clone(live),
                start_rx: start_rx.clone(),
                ready_tx: ready_tx.clone(),
            };
            std::thread::Builder::new()
                .name(format!("lamina-perf-{i}"))
                .spawn(move || {
                    let _ = done_tx.send(job.run_thread());
                })
                .map_err(|e| PerfError::Worker(e.to_string()))?;
            done.push(done_rx);
        }
        Ok(Self {
            ready_rx,
            start_tx,
            done,
        })
    }

    /// Waits until every worker has connected its queues.
    pub(crate) async fn wait_connected(&mut self) -> Result<(), PerfError> {
        for _ in 0..self.done.len() {
            match self.ready_rx.recv().await {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(e),
                None => return Err(PerfError::Worker("a worker exited early".into())),
            }
        }
        Ok(())
    }

    /// Lets every engine start with `timing`.
    pub(crate) fn go(&self, timing: Timing) {
        self.start_tx.send_replace(Some(timing));
    }

    /// Waits for every worker's results.
    pub(crate) async fn results(self) -> Results {
        let mut all = Vec::new();
        for rx in self.done {
            let part = rx
                .await
                .map_err(|_| PerfError::Worker("a worker thread died".into()))??;
            all.extend(part);
        }
        Ok(all)
    }
}

/// What one worker thread does.
struct Job {
    connector: IoConnector,
    plans: Vec<ConnPlan>,
    queue_size: u16,
    live: Arc<Live>,
    start_rx: watch::Receiver<Option<Timing>>,
    ready_tx: mpsc::UnboundedSender<Result<(), PerfError>>,
}

impl Job {
    fn run_thread(self) -> Results {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| PerfError::Worker(e.to_string()))?;
        rt.block_on(self.run())
    }

    async fn run(mut self) -> Results {
        let ready_tx = self.ready_tx.clone();
        let engines = match self.connect().await {
            Ok(e) => {
                let _ = ready_tx.send(Ok(()));
                e
            }
            Err(e) => {
                let _ = ready_tx.send(Err(PerfError::Worker(e.to_string())));
                return Err(e);
            }
        };
        let timing = loop {
            if let Some(t) = *self.start_rx.borrow_and_update() {
                break t;
            }
            if self.start_rx.changed().await.is_err() {
                return Err(PerfError::Worker("run cancelled".into()));
            }
        };
        let tasks: Vec<_> = engines
            .into_iter()
            .map(|e| tokio::spawn(e.run(timing)))
            .collect();
        let mut results = Vec::with_capacity(tasks.len());
        for t in tasks {
            results.push(t.await.map_err(|e| PerfError::Worker(e.to_string()))??);
        }
        Ok(results)
    }

    async fn connect(&mut self) -> Result<Vec<Engine>, PerfError> {
        let mut engines = Vec::with_capacity(self.plans.len());
        for plan in std::mem::take(&mut self.plans) {
            let q = self.connector.connect(plan.qid, self.queue_size).await?;
            engines.push(Engine::new(q, plan, Arc::clone(&self.live))?);
        }
        Ok(engines)
    }
}
