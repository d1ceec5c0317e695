//! The metadata store: the in-memory [`Meta`] (state, allocator, pending journal records)
//! behind a short `parking_lot` mutex, and the journal writer behind an async mutex.
//!
//! Every metadata operation is applied to the state and appended, encoded, to `pending` in one
//! critical section, so journal order is apply order. [`MetaStore::commit`] makes records
//! durable with group commit: whoever holds the writer lock takes every pending record, flushes
//! the device (so the data those records point at, e.g. freshly filled clusters, is durable
//! first), writes them as one journal batch and flushes again; callers that queued behind the
//! lock usually find their record already durable. When the live journal passes half the ring,
//! or a batch would not fit, the writer writes a checkpoint instead.
//!
//! Every write of the journal, a checkpoint or the superblock runs in a detached task (see
//! [`crate::detach`]): the writer takes pending records out of memory before it writes them,
//! and a writer dropped in between would lose them while later batches go on, so the next load
//! would replay a journal with a hole in it. Only waiting for the writer lock, and a flush with
//! nothing queued, stay in the caller's future: dropping those changes nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use uuid::Uuid;

use super::alloc::Allocator;
use super::checkpoint;
use super::state::{Applied, MetaState};
use crate::detach::{detached, uncounted};
use crate::device::{BlockDevice, Device};
use crate::drain::Drain;
use crate::error::LvolError;
use crate::format::block::{self, BlockHeader, BlockKind, PAYLOAD};
use crate::format::codec::put_u32;
use crate::format::record::{Op, runs};
use crate::format::superblock::{LVOL_RECORD_MAX, RUN_BYTES, SLOT_OFFSETS, Superblock};
use crate::format::{MD_BLOCK, MD_BLOCK_U64};
use crate::grace::Grace;

/// State guarded by the metadata mutex.
#[derive(Debug)]
pub(crate) struct Meta {
    pub state: MetaState,
    pub alloc: Allocator,
    pub(super) pending: Vec<u8>,
    next_seq: u64,
    /// Names held by creates still in progress (a thick create zeroes clusters first).
    pub reserved_names: std::collections::HashSet<String>,
    /// Upper bound of the checkpoint payload size (exact after each checkpoint).
    bytes_bound: u64,
    capacity: u64,
    pub(super) max_lvols: u32,
}

/// The journal writer's position; only touched under the writer lock.
#[derive(Debug)]
pub(crate) struct Writer {
    pub next_block: u64,
    pub start_block: u64,
    pub nonce: u64,
    pub ckpt_gen: u64,
    pub ckpt_slot: usize,
    pub sb_slot: usize,
}

/// The result of applying one operation.
#[derive(Debug)]
pub(crate) struct Committed<R> {
    /// Its sequence number, for [`MetaStore::commit`].
    pub seq: u64,
    pub applied: Applied,
    /// Quarantine batch of the freed clusters (0 if none).
    pub park: u64,
    pub out: R,
}

/// Metadata persistence for one lvstore.
#[derive(Debug)]
pub(crate) struct MetaStore {
    pub device: Device,
    pub uuid: Uuid,
    pub meta: Mutex<Meta>,
    pub grace: Grace,
    /// Detached work on this lvstore (commits, allocations, clears, management operations).
    pub tasks: Arc<Drain>,
    sb: RwLock<Superblock>,
    // Held across device awaits on purpose: it serialises journal and superblock writes. In an
    // `Arc` so a flush can hand the guard it waited for to the task that writes.
    writer: Arc<tokio::sync::Mutex<Writer>>,
    durable: AtomicU64,
    flush_req: AtomicU64,
    flush_done: AtomicU64,
    failed: AtomicBool,
}

fn room_needed(op: &Op) -> (u64, u32) {
    match op {
        Op::Create(rec) => (
            LVOL_RECORD_MAX + RUN_BYTES * runs(&rec.entries).len() as u64,
            1,
        ),
        Op::Snapshot { .. } => (LVOL_RECORD_MAX, 1),
        Op::Map { .. } | Op::Merge { .. } => (RUN_BYTES, 0),
        Op::Release { .. } => (2 * RUN_BYTES, 0),
        Op::Resize { added, .. } => (RUN_BYTES * (runs(added).len() as u64 + 1), 0),
        Op::Delete { .. } | Op::Rename { .. } | Op::SetReadOnly { .. } | Op::Detach { .. } => {
            (0, 0)
        }
    }
}

impl Meta {
    pub(crate) fn new(state: MetaState, next_seq: u64, bytes_bound: u64, sb: &Superblock) -> Self {
        Self {
            state,
            alloc: Allocator::new(),
            pending: Vec::new(),
            next_seq,
            reserved_names: std::collections::HashSet::new(),
            bytes_bound,
            capacity: (sb.ckpt_slot_bytes / MD_BLOCK_U64).saturating_sub(1) * PAYLOAD as u64,
            max_lvols: sb.max_lvols,
        }
    }

    fn check_room(&mut self, op: &Op) -> Result<u64, LvolError> {
        let (bytes, lvols) = room_needed(op);
        if lvols > 0 && self.state.lvol_count() + 1 > usize::try_from(self.max_lvols).unwrap_or(0) {
            return Err(LvolError::MetadataFull("lvol count"));
        }
        if self.bytes_bound + bytes > self.capacity {
            // The bound only grows between checkpoints; measure the real size before refusing.
            self.bytes_bound = self.state.checkpoint_len();
            if self.bytes_bound + bytes > self.capacity {
                return Err(LvolError::MetadataFull("cluster maps"));
            }
        }
        Ok(bytes)
    }

    /// Applies `op` and queues its record; returns its sequence number.
    fn apply(&mut self, op: &Op) -> Result<(u64, Applied), LvolError> {
        let bytes = self.check_room(op)?;
        let applied = self.state.apply(op)?;
        self.bytes_bound += bytes;
        let seq = self.next_seq;
        self.next_seq += 1;
        let start = self.pending.len();
        put_u32(&mut self.pending, 0);
        op.encode(&mut self.pending);
        let len = u32::try_from(self.pending.len() - start - 4).unwrap_or(u32::MAX);
        if let Some(slot) = self.pending.get_mut(start..start + 4) {
            slot.copy_from_slice(&len.to_le_bytes());
        }
        Ok((seq, applied))
    }

    /// Sequence number of the last applied operation.
    fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }
}

impl MetaStore {
    pub(crate) fn new(device: Device, sb: Superblock, meta: Meta, writer: Writer) -> Self {
        let durable = meta.last_seq();
        Self {
            device,
            uuid: sb.uuid,
            meta: Mutex::new(meta),
            grace: Grace::new(),
            tasks: Arc::new(Drain::new()),
            sb: RwLock::new(sb),
            writer: Arc::new(tokio::sync::Mutex::new(writer)),
            durable: AtomicU64::new(durable),
            flush_req: AtomicU64::new(0),
            flush_done: AtomicU64::new(0),
            failed: AtomicBool::new(false),
        }
    }

    /// The current superblock.
    pub(crate) fn superblock(&self) -> Superblock {
        self.sb.read().clone()
    }

    fn check_failed(&self) -> Result<(), LvolError> {
        if self.failed.load(Ordering::SeqCst) {
            Err(LvolError::StoreFailed)
        } else {
            Ok(())
        }
    }

    /// Whether a metadata write failed.
    pub(crate) fn is_failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    /// Applies `op` now (visible to every reader at once) and queues it for the journal, then
    /// runs `after` in the same critical section (index updates that must not interleave with
    /// another operation). Freed clusters are quarantined; `clear_pending` keeps them out of
    /// the pool until [`MetaStore::mark_cleared`] is called with the returned park id.
    pub(crate) fn apply_with<R>(
        &self,
        op: &Op,
        clear_pending: bool,
        after: impl FnOnce(&mut Meta, &Applied) -> R,
    ) -> Result<Committed<R>, LvolError> {
        self.apply_guarded(op, clear_pending, |_| Ok(()), after)
    }

    /// [`MetaStore::apply_with`] that first runs `before` in the same critical section and
    /// applies nothing if it fails (checks that must not race the operation, e.g. that the
    /// parent of a new clone is not being deleted).
    pub(crate) fn apply_guarded<R>(
        &self,
        op: &Op,
        clear_pending: bool,
        before: impl FnOnce(&Meta) -> Result<(), LvolError>,
        after: impl FnOnce(&mut Meta, &Applied) -> R,
    ) -> Result<Committed<R>, LvolError> {
        self.check_failed()?;
        let mut m = self.meta.lock();
        before(&m)?;
        let (seq, applied) = m.apply(op)?;
        let mut park = 0;
        if !applied.freed.is_empty() {
            // Read after the map change: any I/O that saw the old mapping entered before now.
            let epoch = self.grace.epoch();
            park = m
                .alloc
                .park(applied.freed.clone(), seq, epoch, !clear_pending);
        }
        let out = after(&mut m, &applied);
        Ok(Committed {
            seq,
            applied,
            park,
            out,
        })
    }

    /// [`MetaStore::apply_with`] with nothing to run after.
    pub(crate) fn apply(&self, op: &Op, clear_pending: bool) -> Result<Committed<()>, LvolError> {
        self.apply_with(op, clear_pending, |_, _| ())
    }

    /// The clear of a parked batch finished.
    pub(crate) fn mark_cleared(&self, park: u64) {
        self.meta.lock().alloc.mark_ready(park);
        self.reclaim();
    }

    /// Returns safe quarantined clusters to the pool.
    pub(crate) fn reclaim(&self) -> usize {
        let durable = self.durable.load(Ordering::SeqCst);
        self.meta.lock().alloc.reclaim(durable, &self.grace)
    }

    /// Highest durable operation sequence number.
    pub(crate) fn durable_seq(&self) -> u64 {
        self.durable.load(Ordering::SeqCst)
    }

    /// Makes every operation up to `seq` durable.
    pub(crate) async fn commit(self: &Arc<Self>, seq: u64) -> Result<(), LvolError> {
        if self.durable_seq() >= seq {
            return Ok(());
        }
        let md = Arc::clone(self);
        detached(&self.tasks, async move {
            let mut w = md.writer.lock().await;
            if md.durable_seq() >= seq {
                return Ok(());
            }
            md.commit_locked(&mut w).await
        })
        .await
    }

    /// Makes every completed write and every applied operation durable (host Flush).
    pub(crate) async fn flush(self: &Arc<Self>) -> Result<(), LvolError> {
        let ticket = self.flush_req.fetch_add(1, Ordering::SeqCst) + 1;
        let mut w = Arc::clone(&self.writer).lock_owned().await;
        if self.flush_done.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        // Every flush requested up to now is covered by the device flush below, and every
        // operation they follow is queued by now (read before the check below).
        let covers = self.flush_req.load(Ordering::SeqCst);
        if self.meta.lock().pending.is_empty() {
            // Nothing to write: a device flush, which changes nothing if dropped.
            self.check_failed()?;
            self.failing(self.device.flush().await.map_err(LvolError::from))?;
            self.reclaim();
            self.flush_done.fetch_max(covers, Ordering::SeqCst);
            return Ok(());
        }
        let md = Arc::clone(self);
        detached(&self.tasks, async move {
            md.commit_locked(&mut w).await?;
            md.flush_done.fetch_max(covers, Ordering::SeqCst);
            Ok(())
        })
        .await
    }

    /// Marks the store failed if `r` is an error.
    fn failing<T>(&self, r: Result<T, LvolError>) -> Result<T, LvolError> {
        if r.is_err() {
            self.failed.store(true, Ordering::SeqCst);
            tracing::error!(lvstore = %self.uuid, "metadata commit failed; lvstore stops accepting changes");
        }
        r
    }

    /// Writes every pending record (writer lock held). Only ever awaited inside a detached
    /// task: it takes the records out of memory before writing them.
    async fn commit_locked(&self, w: &mut Writer) -> Result<(), LvolError> {
        self.check_failed()?;
        let result = self.failing(self.write_out(w).await);
        self.reclaim();
        result
    }

    async fn write_out(&self, w: &mut Writer) -> Result<(), LvolError> {
        let (bytes, last) = {
            let mut m = self.meta.lock();
            (std::mem::take(&mut m.pending), m.last_seq())
        };
        // Data first: records may point at clusters whose fill is only in the device cache.
        self.device.flush().await?;
        if bytes.is_empty() {
            return Ok(());
        }
        let ring = self.superblock().journal_blocks();
        let blocks = bytes.len().div_ceil(PAYLOAD) as u64;
        if blocks > ring / 2 || (w.next_block - w.start_block) + blocks > ring {
            return self.checkpoint_locked(w).await;
        }
        self.write_batch(w, &bytes, blocks).await?;
        self.device.flush().await?;
        self.durable.fetch_max(last, Ordering::SeqCst);
        if w.next_block - w.start_block > ring / 2 {
            self.checkpoint_locked(w).await?;
        }
        Ok(())
    }

    async fn write_batch(
        &self,
        w: &mut Writer,
        bytes: &[u8],
        blocks: u64,
    ) -> Result<(), LvolError> {
        let sb = self.superblock();
        let ring = sb.journal_blocks();
        let first = w.next_block;
        let count = u32::try_from(blocks).map_err(|_| LvolError::MetadataFull("journal batch"))?;
        let mut out = Vec::with_capacity(bytes.len().div_ceil(PAYLOAD) * MD_BLOCK);
        for (k, chunk) in (0u32..).zip(bytes.chunks(PAYLOAD)) {
            let h = BlockHeader {
                kind: BlockKind::Journal,
                seq: first + u64::from(k),
                nonce: w.nonce,
                batch_first: first,
                index: k,
                count,
            };
            block::encode(&self.uuid, &h, chunk, &mut out);
        }
        let pos = first % ring;
        let data = Bytes::from(out);
        let fits = usize::try_from((ring - pos) * MD_BLOCK_U64).unwrap_or(usize::MAX);
        let at = |p: u64| sb.journal_offset + p * MD_BLOCK_U64;
        if data.len() <= fits {
            self.device.write(at(pos), data).await?;
        } else {
            self.device.write(at(pos), data.slice(..fits)).await?;
            self.device.write(at(0), data.slice(fits..)).await?;
        }
        w.next_block += blocks;
        Ok(())
    }

    /// Writes the whole state as a checkpoint into the other slot (writer lock held).
    async fn checkpoint_locked(&self, w: &mut Writer) -> Result<(), LvolError> {
        let sb = self.superblock();
        let (payload, last) = {
            let mut m = self.meta.lock();
            let payload = checkpoint::payload(w.next_block, &m.state.records());
            if payload.len() as u64 > m.capacity {
                return Err(LvolError::MetadataFull("checkpoint slot"));
            }
            // The checkpoint covers every applied operation, queued or not.
            m.pending.clear();
            m.bytes_bound = payload.len() as u64;
            (payload, m.last_seq())
        };
        let slot = 1 - w.ckpt_slot;
        let generation = w.ckpt_gen + 1;
        let blocks = checkpoint::frame(&self.uuid, generation, &payload);
        self.device.flush().await?;
        self.device
            .write(sb.ckpt_slot_offset(slot), Bytes::from(blocks))
            .await?;
        self.device.flush().await?;
        w.ckpt_slot = slot;
        w.ckpt_gen = generation;
        w.start_block = w.next_block;
        self.durable.fetch_max(last, Ordering::SeqCst);
        Ok(())
    }

    /// Commits everything and writes a checkpoint (unload: the next load replays nothing).
    /// Not counted in `tasks`: unload calls it after closing them.
    pub(crate) async fn checkpoint(self: &Arc<Self>) -> Result<(), LvolError> {
        let md = Arc::clone(self);
        uncounted(async move {
            let mut w = md.writer.lock().await;
            md.check_failed()?;
            let r = md.checkpoint_locked(&mut w).await;
            if r.is_err() {
                md.failed.store(true, Ordering::SeqCst);
            }
            r
        })
        .await
    }

    /// Rewrites the superblock with `change` applied (rename, grow), crash-atomically.
    pub(crate) async fn update_superblock(
        self: &Arc<Self>,
        change: impl FnOnce(&mut Superblock) + Send + 'static,
    ) -> Result<Superblock, LvolError> {
        let md = Arc::clone(self);
        detached(&self.tasks, async move {
            let mut w = md.writer.lock().await;
            md.check_failed()?;
            let mut sb = md.superblock();
            change(&mut sb);
            sb.generation += 1;
            let slot = 1 - w.sb_slot;
            let offset = SLOT_OFFSETS.get(slot).copied().unwrap_or(0);
            md.device.write(offset, Bytes::from(sb.encode())).await?;
            md.device.flush().await?;
            w.sb_slot = slot;
            *md.sb.write() = sb.clone();
            Ok(sb)
        })
        .await
    }

    /// Wipes the superblocks (destroy): the device no longer holds an lvstore. Not counted in
    /// `tasks`: destroy calls it after closing them.
    /// Waits for the journal writer and holds it: no journal, checkpoint or superblock write
    /// runs while the guard lives (the online check compares media and memory under it).
    pub(super) async fn quiesce(&self) -> tokio::sync::MutexGuard<'_, Writer> {
        self.writer.lock().await
    }

    pub(crate) async fn wipe(self: &Arc<Self>) -> Result<(), LvolError> {
        let md = Arc::clone(self);
        uncounted(async move {
            let _w = md.writer.lock().await;
            md.device
                .write(0, Bytes::from(vec![0u8; 2 * MD_BLOCK]))
                .await?;
            md.device.flush().await?;
            md.failed.store(true, Ordering::SeqCst);
            Ok(())
        })
        .await
    }
}
