//! The load loop of one connection. It owns its [`OwnedQueue`] (socket, receive buffer and
//! [`crate::host::QueueCore`]) outright: no lock, no channel, no task switch and no waker per
//! I/O. Each turn it tops the queue up to `-q` commands, sends every new capsule with one
//! vectored write, waits for the socket, reads as many PDUs as are there, and records the
//! completions with one clock reading for the whole batch. Buffers are allocated before the
//! run: reads without `--verify` are counted and dropped, writes share one random payload.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use lamina_protocol::nvme::{IoOpcode, ReadWrite};
use tokio::io::Interest;

use super::PerfError;
use super::live::{Live, Snapshot};
use super::plan::ConnPlan;
use super::stats::ConnStats;
use super::verify::Verifier;
use super::workload::{Generator, Op};
use crate::host::{Command, Completion, HostError, OwnedQueue, Transfer};

/// When the phases of the run end (the same instants for every connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// End of the warm-up: measurements start here.
    pub warm_end: Instant,
    /// End of the run: no new I/O after this.
    pub end: Instant,
    /// Longest wait for a completion before the target is declared stuck.
    pub stall_limit: Duration,
}

/// What one connection measured.
#[derive(Debug)]
pub struct ConnResult {
    /// Statistics of the measured window.
    pub stats: ConnStats,
    /// First verification mismatches, described.
    pub mismatches: Vec<String>,
}

#[derive(Debug, Clone)]
struct SlotMeta {
    cid: u16,
    op: Op,
    unit: u64,
    submitted: Instant,
    stamp: u32,
    /// The buffer a `--verify` write's payload was split from: once the payload is dropped,
    /// `reserve` on it reclaims the whole allocation.
    carrier: Option<BytesMut>,
}

/// The per-connection engine.
#[derive(Debug)]
pub struct Engine {
    q: OwnedQueue,
    plan: ConnPlan,
    generator: Generator,
    verifier: Option<Verifier>,
    meta: Vec<SlotMeta>,
    /// Buffers for `--verify` reads and writes.
    pool: Vec<BytesMut>,
    payload: Bytes,
    in_flight: usize,
    ready: Vec<u16>,
    stats: ConnStats,
    measuring: bool,
    live: Arc<Live>,
    batch: Snapshot,
    last_progress: Instant,
    /// Ends the run early when set (checked once per turn).
    stop: Option<Arc<AtomicBool>>,
}

impl Engine {
    /// Prepares the engine of `plan` on queue `q`; everything per-I/O is allocated here.
    pub fn new(q: OwnedQueue, plan: ConnPlan, live: Arc<Live>) -> Result<Self, PerfError> {
        let mut generator = Generator::new(
            plan.kind,
            plan.read_percent,
            plan.seed,
            plan.units.start,
            plan.units.end - plan.units.start,
        );
        let io = usize::try_from(plan.io_size).map_err(|_| PerfError::Config("-o".into()))?;
        let mut payload = vec![0u8; io];
        generator.rng().fill(&mut payload);
        let verifier = if plan.verify {
            Some(Verifier::new(
                plan.seed,
                plan.block_size,
                plan.io_size,
                plan.units.clone(),
                plan.queue_depth,
            )?)
        } else {
            None
        };
        let slots = q.core_ref().capacity();
        let pool = if plan.verify {
            (0..=plan.queue_depth)
                .map(|_| BytesMut::with_capacity(io))
                .collect()
        } else {
            Vec::new()
        };
        let now = Instant::now();
        let blank = SlotMeta {
            cid: 0,
            op: Op::Read,
            unit: 0,
            submitted: now,
            stamp: 0,
            carrier: None,
        };
        Ok(Self {
            stats: ConnStats::new(plan.qid),
            q,
            generator,
            verifier,
            meta: vec![blank; slots],
            pool,
            payload: Bytes::from(payload),
            in_flight: 0,
            ready: Vec::with_capacity(slots),
            measuring: false,
            live,
            batch: Snapshot::default(),
            last_progress: now,
            stop: None,
            plan,
        })
    }

    /// Ends the run as soon as `stop` is set, as if `Timing::end` had come (tests that run a
    /// number of I/Os rather than a time use it).
    pub fn with_stop(mut self, stop: Arc<AtomicBool>) -> Self {
        self.stop = Some(stop);
        self
    }

    fn stopped(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
    }

    /// Runs until `timing.end`, then waits for the commands in flight.
    pub async fn run(mut self, timing: Timing) -> Result<ConnResult, PerfError> {
        let tick = Duration::from_millis(250);
        let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(timing.warm_end));
        tokio::pin!(sleep);
        let mut now = Instant::now();
        self.last_progress = now;
        loop {
            if !self.measuring && now >= timing.warm_end {
                self.stats.reset_measurements();
                self.measuring = true;
            }
            if now < timing.end && !self.stopped() {
                self.fill(now)?;
            } else if self.in_flight == 0 {
                break;
            }
            if now.duration_since(self.last_progress) > timing.stall_limit && self.in_flight > 0 {
                return Err(PerfError::Stalled {
                    qid: self.plan.qid,
                    in_flight: self.in_flight,
                    after: timing.stall_limit,
                });
            }
            let flushed = self.q.flush()?;
            if sleep.is_elapsed() {
                let next = if now < timing.warm_end {
                    timing.warm_end
                } else if now < timing.end {
                    timing.end.min(now + tick)
                } else {
                    now + tick
                };
                sleep.as_mut().reset(tokio::time::Instant::from_std(next));
            }
            let interest = if flushed {
                Interest::READABLE
            } else {
                Interest::READABLE | Interest::WRITABLE
            };
            // Input TLS decrypted but not taken yet: the socket will not signal it.
            if self.q.stream.has_pending_input() {
                self.q.receive()?;
                now = Instant::now();
                self.collect(now, timing.end)?;
                continue;
            }
            tokio::select! {
                biased;
                ready = self.q.stream.ready(interest) => {
                    let ready = ready.map_err(|e| HostError::io("wait for socket", e))?;
                    if ready.is_readable() || ready.is_read_closed() {
                        self.q.receive()?;
                    }
                }
                () = &mut sleep => {}
            }
            now = Instant::now();
            self.collect(now, timing.end)?;
        }
        Ok(self.finish())
    }

    fn finish(mut self) -> ConnResult {
        let mismatches = match self.verifier.take() {
            Some(v) => {
                self.stats.verify = v.stats;
                v.mismatches
            }
            None => Vec::new(),
        };
        ConnResult {
            stats: self.stats,
            mismatches,
        }
    }

    /// Submits until `-q` commands are in flight.
    fn fill(&mut self, now: Instant) -> Result<(), PerfError> {
        while self.in_flight < self.plan.queue_depth {
            if let Some(unit) = self.verifier.as_mut().and_then(Verifier::next_readback) {
                self.submit(Op::Read, unit, now)?;
                continue;
            }
            let op = self.generator.next_op();
            let Some(unit) = self.pick_unit() else {
                // Every candidate unit is busy: wait for completions.
                return Ok(());
            };
            self.submit(op, unit, now)?;
        }
        Ok(())
    }

    /// The next unit; with `--verify`, one with no command in flight.
    fn pick_unit(&mut self) -> Option<u64> {
        let Some(v) = &self.verifier else {
            return Some(self.generator.next_unit());
        };
        (0..32)
            .map(|_| self.generator.next_unit())
            .find(|u| !v.is_busy(*u))
    }

    fn submit(&mut self, op: Op, unit: u64, now: Instant) -> Result<(), PerfError> {
        let blocks_per_unit = u64::from(self.plan.io_size / self.plan.block_size);
        let mut rw = ReadWrite {
            opcode: IoOpcode::READ,
            nsid: self.plan.nsid,
            slba: unit * blocks_per_unit,
            nlb: u16::try_from(blocks_per_unit.saturating_sub(1)).unwrap_or(u16::MAX),
            ..ReadWrite::default()
        };
        let mut stamp = 0;
        let mut carrier = None;
        let transfer = match op {
            Op::Read => self.read_transfer(unit),
            Op::Write => {
                rw.opcode = IoOpcode::WRITE;
                let (data, s, c) = self.write_payload(unit);
                stamp = s;
                carrier = c;
                Transfer::ToController(data)
            }
        };
        let index = self
            .q
            .core()
            .submit(Command::with_transfer(rw.to_sqe(), transfer))?;
        let cid = self.q.core().cid_of(index).unwrap_or(0);
        if let Some(m) = self.meta.get_mut(usize::from(index)) {
            *m = SlotMeta {
                cid,
                op,
                unit,
                submitted: now,
                stamp,
                carrier,
            };
        }
        self.in_flight += 1;
        Ok(())
    }

    fn read_transfer(&mut self, unit: u64) -> Transfer {
        let len = self.plan.io_size;
        match self.verifier.as_mut() {
            Some(v) => {
                v.begin_read(unit);
                let buf = self.pool.pop().unwrap_or_else(|| buffer(len));
                Transfer::FromController { buf, len }
            }
            None => Transfer::Discard(len),
        }
    }

    /// The payload of a write: the shared random one, or (`--verify`) blocks filled for this
    /// unit, split off a pool buffer which is returned as the carrier to keep.
    fn write_payload(&mut self, unit: u64) -> (Bytes, u32, Option<BytesMut>) {
        let Some(v) = self.verifier.as_mut() else {
            return (self.payload.clone(), 0, None);
        };
        let len = usize::try_from(self.plan.io_size).unwrap_or(0);
        let mut carrier = self.pool.pop().unwrap_or_else(|| buffer(self.plan.io_size));
        carrier.clear();
        // Reclaims the allocation once the previous payload split from it is gone.
        carrier.reserve(len);
        carrier.resize(len, 0);
        let stamp = v.begin_write(unit, &mut carrier);
        (carrier.split().freeze(), stamp, Some(carrier))
    }

    /// Records every command that ended in this batch.
    fn collect(&mut self, now: Instant, end: Instant) -> Result<(), PerfError> {
        self.q.core().drain_ready_into(&mut self.ready);
        if self.ready.is_empty() {
            return Ok(());
        }
        self.last_progress = now;
        let mut ready = std::mem::take(&mut self.ready);
        for index in ready.drain(..) {
            let Some(slot) = self.meta.get_mut(usize::from(index)) else {
                continue;
            };
            let carrier = slot.carrier.take();
            let meta = SlotMeta {
                carrier,
                ..slot.clone()
            };
            let Some(outcome) = self.q.core().take(index, meta.cid) else {
                continue;
            };
            self.in_flight -= 1;
            self.on_outcome(meta, outcome, now, end)?;
        }
        self.ready = ready;
        self.live
            .add(self.plan.live_index, std::mem::take(&mut self.batch));
        Ok(())
    }

    fn on_outcome(
        &mut self,
        mut meta: SlotMeta,
        outcome: Result<Completion, HostError>,
        now: Instant,
        end: Instant,
    ) -> Result<(), PerfError> {
        let counted = self.measuring && now < end;
        let mut completion = match outcome {
            Ok(c) if c.is_success() => c,
            Ok(c) => {
                self.on_error(&mut meta, &format!("status {:?}", c.cqe.status), counted);
                return Ok(());
            }
            Err(e) if e.is_fatal() => return Err(e.into()),
            Err(e) => {
                self.on_error(&mut meta, &e.to_string(), counted);
                return Ok(());
            }
        };
        if let Some(v) = self.verifier.as_mut() {
            match meta.op {
                Op::Read => {
                    let data = completion.take_data();
                    v.read_done(meta.unit, Some(&data));
                    self.pool.push(data);
                }
                Op::Write => {
                    v.write_done(meta.unit, meta.stamp, true);
                    if let Some(carrier) = meta.carrier.take() {
                        self.pool.push(carrier);
                    }
                }
            }
        }
        if counted {
            let latency =
                u64::try_from(now.duration_since(meta.submitted).as_nanos()).unwrap_or(u64::MAX);
            let bytes = u64::from(self.plan.io_size);
            self.stats.record(meta.op, latency, bytes);
            self.batch.ios += 1;
            self.batch.bytes += bytes;
            self.batch.latency_ns += latency;
        }
        Ok(())
    }

    fn on_error(&mut self, meta: &mut SlotMeta, what: &str, counted: bool) {
        if let Some(carrier) = meta.carrier.take() {
            self.pool.push(carrier);
        }
        if let Some(v) = self.verifier.as_mut() {
            match meta.op {
                Op::Read => v.read_done(meta.unit, None),
                Op::Write => v.write_done(meta.unit, meta.stamp, false),
            }
        }
        if counted {
            self.stats.errors += 1;
            self.batch.errors += 1;
        }
        if self.stats.errors <= 10 {
            tracing::warn!(qid = self.plan.qid, unit = meta.unit, op = ?meta.op, "I/O failed: {what}");
        }
    }
}

/// A pool buffer. It is reference counted from the start (split off its allocation), so the
/// payloads split from it and frozen clone without allocating, and `reserve` reclaims it once
/// they are gone; a plain vector-backed buffer would allocate a shared header on every
/// payload's first clone.
fn buffer(len: u32) -> BytesMut {
    let mut whole = BytesMut::with_capacity(usize::try_from(len).unwrap_or(0));
    whole.split_off(0)
}
