//! The data path of an open lvol: read, write (with FUA), flush, write-zeroes and deallocate.
//!
//! Each command takes the lvol's per-I/O guard (deletion drains these) and, per cluster it
//! touches, a grace guard from the map lookup to the end of the device access (freed clusters
//! are not reused under it). Writes also hold the lvol's write gate shared, so a snapshot or
//! merge can switch the map with no write in flight. A write into an unallocated cluster
//! reserves a cluster, fills the part the write does not cover with zeros or the parent's
//! data, writes the payload and only then maps it: a cluster is never visible half-filled,
//! and concurrent first writes to it allocate once (the others wait on a latch, then write).
//! Nothing here allocates on the heap for a write or read into allocated clusters.
//!
//! On a device that never waits (RAM, null), `read_now` and `write_now` do the same read, or
//! write without FUA, synchronously, so a caller can finish the I/O without building a
//! future: same guards, checks and errors. `write_now` declines (returns `None`, having
//! written nothing) whenever the asynchronous write could wait: a cluster to allocate or copy,
//! or a snapshot holding the write gate.
//!
//! Cancellation (see [`crate::detach`]): a write runs in the caller's future only while every
//! cluster it touches is allocated. From the first cluster that needs allocating, the rest of
//! the write runs in a detached task that takes over the I/O guard and the write gate, so a
//! caller dropped mid-allocation leaks no reserved cluster and leaves no half-made mapping.
//! Write-zeroes and deallocate (which release clusters and then clear them) run detached whole.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use super::StoreCore;
use super::lvol::{IoGuard, LvolDesc};
use crate::detach::detached;
use crate::device::BlockDevice;
use crate::error::LvolError;
use crate::format::record::{Op, UNMAPPED, ZERO};
use crate::meta::state::{LvolShared, is_real};
use crate::plane::Claim;
use crate::progress::Progress;
use crate::types::ClearMethod;

/// What a write puts into its range.
#[derive(Debug, Clone)]
pub(crate) enum Payload {
    /// These bytes.
    Data(Bytes),
    /// This many zero bytes.
    Zeroes(u64),
    /// Nothing: only fill the cluster (inflate, decouple).
    Fill,
}

impl Payload {
    fn len(&self) -> u64 {
        match self {
            Self::Data(b) => b.len() as u64,
            Self::Zeroes(n) => *n,
            Self::Fill => 0,
        }
    }
}

/// Where a logical cluster's data comes from.
enum Source {
    Zero,
    Cluster(u32),
}

/// The map entry of logical cluster `idx` (ZERO past the end).
pub(crate) fn entry(shared: &LvolShared, idx: u32) -> u32 {
    let d = shared.data.read();
    usize::try_from(idx)
        .ok()
        .and_then(|i| d.entries.get(i).copied())
        .unwrap_or(ZERO)
}

/// Follows the parent chain for an unmapped entry.
fn from_parents(shared: &LvolShared, idx: usize) -> Option<u32> {
    let mut cur: Option<Arc<LvolShared>> = shared.data.read().parent.clone();
    while let Some(p) = cur {
        let next = {
            let d = p.data.read();
            match d.entries.get(idx) {
                Some(&e) if is_real(e) => return Some(e),
                Some(&UNMAPPED) => d.parent.clone(),
                _ => None,
            }
        };
        cur = next;
    }
    None
}

fn resolve(shared: &LvolShared, idx: u32) -> Source {
    let Ok(i) = usize::try_from(idx) else {
        return Source::Zero;
    };
    let e = {
        let d = shared.data.read();
        match d.entries.get(i) {
            Some(&e) if is_real(e) => return Source::Cluster(e),
            Some(&e) => e,
            None => return Source::Zero,
        }
    };
    match (e, from_parents(shared, i)) {
        (UNMAPPED, Some(c)) => Source::Cluster(c),
        _ => Source::Zero,
    }
}

/// Splits `[offset, offset + len)` into `(cluster index, offset in cluster, length)`.
fn segments(offset: u64, len: u64, cs: u64) -> impl Iterator<Item = (u32, u64, u64)> {
    let mut pos = offset;
    let end = offset.saturating_add(len);
    std::iter::from_fn(move || {
        if pos >= end {
            return None;
        }
        let idx = u32::try_from(pos / cs).ok()?;
        let off = pos % cs;
        let n = (end - pos).min(cs - off);
        pos += n;
        Some((idx, off, n))
    })
}

impl StoreCore {
    async fn put(&self, at: u64, payload: Payload) -> Result<(), LvolError> {
        match payload {
            Payload::Data(b) => self.md.device.write(at, b).await?,
            Payload::Zeroes(n) => self.md.device.write_zeroes(at, n).await?,
            Payload::Fill => {}
        }
        Ok(())
    }

    /// Reserves `n` free clusters, committing and reclaiming quarantined ones if needed.
    pub(crate) async fn reserve(&self, n: u32) -> Result<Vec<u32>, LvolError> {
        let mut attempt = 0;
        loop {
            let (r, parked) = {
                let mut g = self.md.meta.lock();
                let m = &mut *g;
                (m.alloc.reserve(&m.state, n), m.alloc.parked_clusters())
            };
            match r {
                Err(LvolError::NoSpace { .. }) if parked > 0 && attempt < 4 => {
                    // Quarantined clusters need their free to be durable and a grace period.
                    if attempt > 0 {
                        self.md.flush().await?;
                        tokio::task::yield_now().await;
                    }
                    self.md.reclaim();
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Reserves one free cluster.
    pub(crate) async fn reserve_cluster(&self) -> Result<u32, LvolError> {
        let v = self.reserve(1).await?;
        v.first()
            .copied()
            .ok_or_else(|| LvolError::corrupt("empty reservation"))
    }

    /// Copies `len` bytes at `start` of physical cluster `from` into cluster `to`.
    async fn copy_range(&self, from: u32, to: u32, start: u64, len: u64) -> Result<(), LvolError> {
        const STEP: u64 = 1 << 20;
        let cs = self.cluster_size;
        let mut done = 0;
        while done < len {
            let n = (len - done).min(STEP);
            let n_usize = usize::try_from(n).map_err(|_| LvolError::invalid("copy step"))?;
            let mut buf = BytesMut::with_capacity(n_usize);
            let at = start + done;
            self.md
                .device
                .read(u64::from(from) * cs + at, n_usize, &mut buf)
                .await?;
            self.md
                .device
                .write(u64::from(to) * cs + at, buf.freeze())
                .await?;
            done += n;
        }
        Ok(())
    }

    /// Fills cluster `to` (for logical `idx` whose entry was `prev`) outside `[skip_at,
    /// skip_at + skip_len)` with the parent's data or zeros.
    async fn fill(
        &self,
        shared: &LvolShared,
        idx: u32,
        prev: u32,
        to: u32,
        skip_at: u64,
        skip_len: u64,
    ) -> Result<(), LvolError> {
        let cs = self.cluster_size;
        let _grace = self.md.grace.enter();
        let src = match (prev, usize::try_from(idx)) {
            (UNMAPPED, Ok(i)) => from_parents(shared, i),
            _ => None,
        };
        let tail = skip_at + skip_len;
        for (start, len) in [(0, skip_at), (tail, cs - tail)] {
            if len == 0 {
                continue;
            }
            match src {
                Some(from) => self.copy_range(from, to, start, len).await?,
                None => {
                    self.md
                        .device
                        .write_zeroes(u64::from(to) * cs + start, len)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// First write into logical cluster `idx`: reserve, fill, write, then map.
    pub(crate) async fn allocate(
        &self,
        shared: &LvolShared,
        idx: u32,
        prev: u32,
        off: u64,
        payload: Payload,
    ) -> Result<(), LvolError> {
        let cluster = self.reserve_cluster().await?;
        let len = payload.len();
        let result = async {
            self.fill(shared, idx, prev, cluster, off, len).await?;
            self.put(u64::from(cluster) * self.cluster_size + off, payload)
                .await?;
            let op = Op::Map {
                uuid: shared.uuid,
                index: idx,
                cluster,
            };
            self.md
                .apply_with(&op, false, |m, _| m.alloc.release(&[cluster]))?;
            Ok(())
        }
        .await;
        if result.is_err() {
            self.md.meta.lock().alloc.release(&[cluster]);
        }
        result
    }

    /// Writes `data` at `off` in logical cluster `idx` if that cluster is allocated; `false`
    /// (nothing written) if it needs allocating first.
    async fn write_allocated(
        &self,
        shared: &LvolShared,
        idx: u32,
        off: u64,
        data: &Bytes,
    ) -> Result<bool, LvolError> {
        let _grace = self.md.grace.enter();
        let e = entry(shared, idx);
        if !is_real(e) {
            return Ok(false);
        }
        let at = u64::from(e) * self.cluster_size + off;
        self.md.device.write(at, data.clone()).await?;
        Ok(true)
    }

    /// Writes the rest of a host write (from the first cluster that needs allocating), holding
    /// the guards the caller handed over. Runs in a detached task.
    async fn write_rest(
        &self,
        shared: &Arc<LvolShared>,
        offset: u64,
        data: Bytes,
        guards: (IoGuard, tokio::sync::OwnedRwLockReadGuard<()>),
    ) -> Result<(), LvolError> {
        let mut done = 0usize;
        for (idx, off, n) in segments(offset, data.len() as u64, self.cluster_size) {
            let n = usize::try_from(n).map_err(|_| LvolError::invalid("write length"))?;
            let chunk = data.slice(done..done + n);
            done += n;
            self.write_segment(shared, idx, off, Payload::Data(chunk))
                .await?;
        }
        drop(guards);
        Ok(())
    }

    /// Writes `payload` at `off` in logical cluster `idx`, allocating it on first write.
    pub(crate) async fn write_segment(
        &self,
        shared: &Arc<LvolShared>,
        idx: u32,
        off: u64,
        payload: Payload,
    ) -> Result<(), LvolError> {
        loop {
            {
                let grace = self.md.grace.enter();
                let e = entry(shared, idx);
                if is_real(e) {
                    let at = u64::from(e) * self.cluster_size + off;
                    let r = self.put(at, payload).await;
                    drop(grace);
                    return r;
                }
            }
            let e = entry(shared, idx);
            let reads_zero = e == ZERO
                || usize::try_from(idx).map_or(true, |i| from_parents(shared, i).is_none());
            if matches!(payload, Payload::Zeroes(_)) && reads_zero {
                return Ok(()); // already reads as zeros
            }
            match shared.plane.claim(idx) {
                Claim::Follower(latch) => latch.wait().await,
                Claim::Leader(guard) => {
                    let e = entry(shared, idx);
                    if is_real(e) {
                        drop(guard);
                        continue;
                    }
                    let r = self.allocate(shared, idx, e, off, payload).await;
                    drop(guard);
                    return r;
                }
            }
        }
    }

    /// Releases whole clusters `[start, start + count)` of a thin lvol.
    async fn release_run(
        &self,
        shared: &LvolShared,
        start: u32,
        count: u32,
    ) -> Result<(), LvolError> {
        let (zero, clear, needed) = {
            let d = shared.data.read();
            let zero = d.parent.is_some();
            let target = if zero { ZERO } else { UNMAPPED };
            let s = usize::try_from(start).unwrap_or(usize::MAX);
            let n = usize::try_from(count).unwrap_or(0);
            let needed = d.entries.iter().skip(s).take(n).any(|&e| e != target);
            (zero, d.clear, needed)
        };
        if !needed {
            return Ok(());
        }
        let op = Op::Release {
            uuid: shared.uuid,
            start,
            count,
            zero,
        };
        let c = self.md.apply(&op, clear != ClearMethod::None)?;
        if c.applied.freed.is_empty() {
            return Ok(());
        }
        let r = self
            .clear_clusters(&c.applied.freed, clear, &Progress::new())
            .await;
        self.md.mark_cleared(c.park);
        r
    }
}

impl LvolDesc {
    fn store(&self) -> &StoreCore {
        &self.lvol.store.0
    }

    pub(crate) fn shared(&self) -> &Arc<LvolShared> {
        &self.lvol.core.shared
    }

    /// Checks alignment and range; returns whether the lvol is read-only and thin. Reads only
    /// the lvol's atomics (no lock): this is the one range check of a host's I/O.
    fn check_range(&self, offset: u64, len: u64) -> Result<(bool, bool), LvolError> {
        let bs = self.store().block_size;
        if !offset.is_multiple_of(u64::from(bs)) || !len.is_multiple_of(u64::from(bs)) {
            return Err(LvolError::Misaligned {
                offset,
                len,
                block_size: bs,
            });
        }
        let g = &self.shared().geometry;
        let size = u64::from(g.size_clusters()) * self.store().cluster_size;
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(LvolError::OutOfRange { offset, len, size });
        }
        Ok((g.is_read_only(), g.is_thin()))
    }

    /// The size in bytes now, without a lock (the I/O path's view; `Lvol::size_bytes` also
    /// says whether the lvol is still there).
    pub fn size_now(&self) -> u64 {
        u64::from(self.shared().geometry.size_clusters()) * self.store().cluster_size
    }

    /// Whether writes are refused now (read-only or a snapshot), without a lock.
    pub fn read_only_now(&self) -> bool {
        self.shared().geometry.is_read_only()
    }

    /// The block size in bytes.
    pub fn block_size(&self) -> u32 {
        self.store().block_size
    }

    /// Reads `len` bytes at byte `offset`, appending them to `buf` (left as it was on error).
    pub async fn read(&self, offset: u64, len: usize, buf: &mut BytesMut) -> Result<(), LvolError> {
        let _io = self.enter_io()?;
        self.check_range(offset, len as u64)?;
        let store = self.store();
        let start = buf.len();
        buf.reserve(len);
        for (idx, off, n) in segments(offset, len as u64, store.cluster_size) {
            let n_usize = usize::try_from(n).map_err(|_| LvolError::invalid("read length"))?;
            let grace = store.md.grace.enter();
            let r = match resolve(self.shared(), idx) {
                Source::Zero => {
                    buf.put_bytes(0, n_usize);
                    Ok(())
                }
                Source::Cluster(c) => {
                    let at = u64::from(c) * store.cluster_size + off;
                    store.md.device.read(at, n_usize, buf).await
                }
            };
            drop(grace);
            if let Err(e) = r {
                buf.truncate(start);
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// [`LvolDesc::read`] done at once, when the store's device never waits (RAM, null):
    /// `None` means it may, and nothing was read. Same guards, checks and result.
    pub fn read_now(
        &self,
        offset: u64,
        len: usize,
        buf: &mut BytesMut,
    ) -> Option<Result<(), LvolError>> {
        let store = self.store();
        if !store.md.device.completes_at_once() {
            return None;
        }
        Some(self.read_sync(offset, len, buf))
    }

    fn read_sync(&self, offset: u64, len: usize, buf: &mut BytesMut) -> Result<(), LvolError> {
        let _io = self.enter_io()?;
        self.check_range(offset, len as u64)?;
        let store = self.store();
        let start = buf.len();
        buf.reserve(len);
        for (idx, off, n) in segments(offset, len as u64, store.cluster_size) {
            let n_usize = usize::try_from(n).map_err(|_| LvolError::invalid("read length"))?;
            let grace = store.md.grace.enter();
            let r = match resolve(self.shared(), idx) {
                Source::Zero => {
                    buf.put_bytes(0, n_usize);
                    Ok(())
                }
                Source::Cluster(c) => {
                    let at = u64::from(c) * store.cluster_size + off;
                    // The device was checked above: it answers at once.
                    store.md.device.read_now(at, n_usize, buf).unwrap_or(Err(
                        crate::error::DeviceError::InvalidParameter("device changed under a read"),
                    ))
                }
            };
            drop(grace);
            if let Err(e) = r {
                buf.truncate(start);
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// [`LvolDesc::write`] without FUA, done at once when it can be: the device never waits
    /// (RAM, null), no snapshot holds the write gate, and every cluster the write touches is
    /// allocated to this lvol. `None` means one of those did not hold and nothing was
    /// written: the caller runs [`LvolDesc::write`]. An error (range, read-only, a deleted
    /// lvol, the device) is returned as the asynchronous write would.
    pub fn write_now(&self, offset: u64, data: &Bytes) -> Option<Result<(), LvolError>> {
        let store = self.store();
        if !store.md.device.completes_at_once() {
            return None;
        }
        let _io = match self.enter_io() {
            Ok(g) => g,
            Err(e) => return Some(Err(e)),
        };
        let _gate = self.shared().plane.gate.try_read().ok()?;
        match self.check_range(offset, data.len() as u64) {
            Err(e) => return Some(Err(e)),
            Ok((true, _)) => return Some(Err(LvolError::ReadOnly)),
            Ok(_) => {}
        }
        // One grace guard over the lookups and the copies: no cluster found allocated here is
        // freed and reused before the copy into it is done.
        let _grace = store.md.grace.enter();
        let cs = store.cluster_size;
        let all_allocated = segments(offset, data.len() as u64, cs)
            .all(|(idx, _, _)| is_real(entry(self.shared(), idx)));
        if !all_allocated {
            return None;
        }
        let mut done = 0usize;
        for (idx, off, n) in segments(offset, data.len() as u64, cs) {
            let Ok(n) = usize::try_from(n) else {
                return Some(Err(LvolError::invalid("write length")));
            };
            let at = u64::from(entry(self.shared(), idx)) * cs + off;
            let chunk = data.get(done..done + n).unwrap_or_default();
            if let Some(Err(e)) = store.md.device.write_now(at, chunk) {
                return Some(Err(e.into()));
            }
            done += n;
        }
        Some(Ok(()))
    }

    /// Writes `data` at byte `offset`; with `fua` the data and any allocation it caused are
    /// durable when this returns.
    pub async fn write(&self, offset: u64, data: Bytes, fua: bool) -> Result<(), LvolError> {
        let io = self.enter_io()?;
        let gate = Arc::clone(&self.shared().plane.gate).read_owned().await;
        let (read_only, _) = self.check_range(offset, data.len() as u64)?;
        if read_only {
            return Err(LvolError::ReadOnly);
        }
        let store = self.store();
        let mut done = 0usize;
        for (idx, off, n) in segments(offset, data.len() as u64, store.cluster_size) {
            let n = usize::try_from(n).map_err(|_| LvolError::invalid("write length"))?;
            let chunk = data.slice(done..done + n);
            if !store
                .write_allocated(self.shared(), idx, off, &chunk)
                .await?
            {
                // From here on the write allocates: it must finish even if we are dropped.
                let (core, shared) = (Arc::clone(&self.lvol.store.0), Arc::clone(self.shared()));
                let rest = data.slice(done..);
                let at = offset + done as u64;
                detached(&store.md.tasks, async move {
                    core.write_rest(&shared, at, rest, (io, gate)).await?;
                    if fua {
                        core.md.flush().await?;
                    }
                    Ok(())
                })
                .await?;
                return Ok(());
            }
            done += n;
        }
        drop(gate);
        if fua {
            store.md.flush().await?;
        }
        Ok(())
    }

    /// Makes every completed write (and the metadata it needs) durable.
    pub async fn flush(&self) -> Result<(), LvolError> {
        let _io = self.enter_io()?;
        self.store().md.flush().await
    }

    /// Zeroes `[offset, offset + len)`: whole clusters of a thin lvol are released (or marked
    /// zero in a clone), the rest is written with zeros. With `fua`, durable on return.
    pub async fn write_zeroes(&self, offset: u64, len: u64, fua: bool) -> Result<(), LvolError> {
        self.zero_range(offset, len).await?;
        if fua {
            self.store().md.flush().await?;
        }
        Ok(())
    }

    /// Deallocates `[offset, offset + len)`; it reads back as zeros (same as write-zeroes).
    pub async fn deallocate(&self, offset: u64, len: u64) -> Result<(), LvolError> {
        self.zero_range(offset, len).await
    }

    async fn zero_range(&self, offset: u64, len: u64) -> Result<(), LvolError> {
        let io = self.enter_io()?;
        let gate = Arc::clone(&self.shared().plane.gate).read_owned().await;
        let (read_only, thin) = self.check_range(offset, len)?;
        if read_only {
            return Err(LvolError::ReadOnly);
        }
        // Releases and their clears, and partial clusters that allocate: detached whole.
        let (core, shared) = (Arc::clone(&self.lvol.store.0), Arc::clone(self.shared()));
        detached(&self.store().md.tasks, async move {
            let r = core.zero_now(&shared, offset, len, thin).await;
            drop((io, gate));
            r
        })
        .await
    }
}

impl StoreCore {
    /// Zeroes `[offset, offset + len)` of `shared` (guards held by the caller).
    async fn zero_now(
        &self,
        shared: &Arc<LvolShared>,
        offset: u64,
        len: u64,
        thin: bool,
    ) -> Result<(), LvolError> {
        let cs = self.cluster_size;
        let mut run: Option<(u32, u32)> = None;
        for (idx, off, n) in segments(offset, len, cs) {
            if thin && n == cs {
                run = match run {
                    Some((s, c)) if s + c == idx => Some((s, c + 1)),
                    other => {
                        if let Some((s, c)) = other {
                            self.release_run(shared, s, c).await?;
                        }
                        Some((idx, 1))
                    }
                };
                continue;
            }
            self.write_segment(shared, idx, off, Payload::Zeroes(n))
                .await?;
        }
        if let Some((s, c)) = run {
            self.release_run(shared, s, c).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_split_at_cluster_boundaries() {
        let v: Vec<_> = segments(3 * 512, 4096, 2048).collect();
        assert_eq!(v, vec![(0, 1536, 512), (1, 0, 2048), (2, 0, 1536)]);
        assert_eq!(segments(0, 0, 2048).count(), 0);
    }
}
