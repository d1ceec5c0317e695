//! Creating the metadata of a new lvstore on a device, and loading it back: superblock choice,
//! the newest complete checkpoint, then journal replay up to the first batch that is not whole.

use bytes::{Bytes, BytesMut};
use uuid::Uuid;

use super::checkpoint;
use super::journal::{Meta, MetaStore, Writer};
use super::state::MetaState;
use crate::device::{BlockDevice, Device};
use crate::error::LvolError;
use crate::format::block::{self, BlockKind};
use crate::format::codec::Reader;
use crate::format::record::Op;
use crate::format::superblock::{self, SLOT_OFFSETS, Slot, Superblock};
use crate::format::{MD_BLOCK, MD_BLOCK_U64};
use crate::types::ClearMethod;

fn random_nonce() -> u64 {
    Uuid::new_v4().as_u64_pair().0
}

async fn read(device: &Device, offset: u64, len: u64) -> Result<BytesMut, LvolError> {
    let n = usize::try_from(len).map_err(|_| LvolError::corrupt("metadata region too large"))?;
    let mut buf = BytesMut::with_capacity(n);
    device.read(offset, n, &mut buf).await?;
    Ok(buf)
}

/// Reads both superblock slots.
pub(crate) async fn read_slots(device: &Device) -> Result<[Slot; 2], LvolError> {
    let raw = read(device, 0, 2 * MD_BLOCK_U64).await?;
    let (a, b) = raw.split_at(MD_BLOCK);
    Ok([Superblock::decode(a), Superblock::decode(b)])
}

fn clusters_u32(n: u64) -> Result<u32, LvolError> {
    u32::try_from(n).map_err(|_| LvolError::corrupt("cluster count out of range"))
}

/// Writes the metadata of a new, empty lvstore. The superblock goes last, so a crash during
/// creation leaves a device that holds no lvstore rather than a half-made one.
pub(crate) async fn format(
    device: Device,
    sb: Superblock,
    clear: ClearMethod,
) -> Result<MetaStore, LvolError> {
    device
        .write(0, Bytes::from(vec![0u8; 2 * MD_BLOCK]))
        .await?;
    device.flush().await?;
    let empty = checkpoint::frame(&sb.uuid, 1, &checkpoint::payload(1, &[]));
    device
        .write(sb.ckpt_slot_offset(0), Bytes::from(empty))
        .await?;
    device
        .write(sb.ckpt_slot_offset(1), Bytes::from(vec![0u8; MD_BLOCK]))
        .await?;
    let data_start = sb.first_data_cluster * sb.cluster_size;
    let data_len = (sb.total_clusters - sb.first_data_cluster) * sb.cluster_size;
    match clear {
        ClearMethod::None => {}
        ClearMethod::Unmap => device.deallocate(data_start, data_len).await?,
        ClearMethod::WriteZeroes => device.write_zeroes(data_start, data_len).await?,
    }
    device.flush().await?;
    // Both copies, one at a time: a damaged copy later still leaves the other.
    for offset in SLOT_OFFSETS {
        device.write(offset, Bytes::from(sb.encode())).await?;
        device.flush().await?;
    }
    let state = MetaState::new(
        clusters_u32(sb.total_clusters)?,
        clusters_u32(sb.first_data_cluster)?,
    );
    let bound = checkpoint::payload(1, &[]).len() as u64;
    let meta = Meta::new(state, 1, bound, &sb);
    let writer = Writer {
        next_block: 1,
        start_block: 1,
        nonce: random_nonce(),
        ckpt_gen: 1,
        ckpt_slot: 0,
        sb_slot: 1,
    };
    Ok(MetaStore::new(device, sb, meta, writer))
}

/// Reads checkpoint slot `slot`: `Ok(None)` if it holds no complete checkpoint.
async fn read_checkpoint(
    device: &Device,
    sb: &Superblock,
    slot: usize,
) -> Result<Option<checkpoint::Checkpoint>, LvolError> {
    let at = sb.ckpt_slot_offset(slot);
    let first = read(device, at, MD_BLOCK_U64).await?;
    let Some((_, count)) = checkpoint::peek(&sb.uuid, &first) else {
        return Ok(None);
    };
    let len = u64::from(count) * MD_BLOCK_U64;
    if len > sb.ckpt_slot_bytes {
        return Ok(None);
    }
    let blocks = read(device, at, len).await?;
    checkpoint::decode(&sb.uuid, &blocks)
}

/// How strictly the metadata is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Loading: any inconsistency refuses the lvstore.
    Strict,
    /// Repair: fall back to the older checkpoint if the newer one is invalid, and replay the
    /// journal past records that do not apply (each deviation is noted).
    Salvage,
}

/// The metadata as read from a device, before it becomes a [`MetaStore`].
#[derive(Debug)]
pub(crate) struct Loaded {
    pub sb: Superblock,
    pub sb_slot: usize,
    pub state: MetaState,
    pub ckpt_generation: u64,
    /// Highest checkpoint generation seen in either slot (a repair writes above it).
    pub max_generation: u64,
    pub ckpt_slot: usize,
    pub journal_start: u64,
    pub next_block: u64,
    /// Journal batches and records replayed.
    pub batches: u64,
    pub records: u64,
    /// What a check or a repair should report (salvage deviations, damaged copies).
    pub notes: Vec<String>,
}

fn ckpt_state(sb: &Superblock, ckpt: &checkpoint::Checkpoint) -> Result<MetaState, LvolError> {
    MetaState::from_records(
        clusters_u32(sb.total_clusters)?,
        clusters_u32(sb.first_data_cluster)?,
        &ckpt.records,
    )
}

/// The newest usable checkpoint, its slot and its state; in salvage mode an invalid newer
/// checkpoint gives way to the older one.
async fn choose_checkpoint(
    device: &Device,
    sb: &Superblock,
    mode: Mode,
    notes: &mut Vec<String>,
) -> Result<(checkpoint::Checkpoint, usize, MetaState, u64), LvolError> {
    let slots = [
        read_checkpoint(device, sb, 0).await,
        read_checkpoint(device, sb, 1).await,
    ];
    let generation = |r: &Result<Option<checkpoint::Checkpoint>, LvolError>| match r {
        Ok(Some(c)) => c.generation,
        _ => 0,
    };
    let max_generation = generation(&slots[0]).max(generation(&slots[1]));
    let mut order = [0usize, 1];
    if generation(&slots[1]) > generation(&slots[0]) {
        order = [1, 0];
    }
    let [a, b] = slots;
    let mut slots = [Some(a), Some(b)];
    let mut first_error = None;
    for slot in order {
        let Some(r) = slots.get_mut(slot).and_then(Option::take) else {
            continue;
        };
        let ckpt = match r {
            Ok(Some(c)) => c,
            Ok(None) => {
                notes.push(format!(
                    "checkpoint slot {slot} holds no complete checkpoint"
                ));
                continue;
            }
            Err(e) => {
                notes.push(format!(
                    "checkpoint slot {slot} does not decode: {}",
                    detail(&e)
                ));
                first_error.get_or_insert(e);
                if mode == Mode::Strict {
                    break;
                }
                continue;
            }
        };
        match ckpt_state(sb, &ckpt) {
            Ok(state) => return Ok((ckpt, slot, state, max_generation)),
            Err(e) => {
                notes.push(format!(
                    "checkpoint slot {slot} (generation {}) is invalid: {}",
                    ckpt.generation,
                    detail(&e)
                ));
                first_error.get_or_insert(e);
                if mode == Mode::Strict {
                    break;
                }
            }
        }
    }
    Err(first_error.unwrap_or_else(|| LvolError::corrupt("no complete metadata checkpoint")))
}

/// The text of an error without the "metadata is corrupt" wrapper.
pub(crate) fn detail(e: &LvolError) -> String {
    match e {
        LvolError::Corrupt(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Replays journal batches from `l.next_block`, advancing it past the last whole batch.
fn replay(ring: &[u8], l: &mut Loaded, mode: Mode) -> Result<(), LvolError> {
    let sb = &l.sb;
    let blocks = sb.journal_blocks();
    let block_at = |seq: u64| {
        let pos = usize::try_from(seq % blocks).ok()?.checked_mul(MD_BLOCK)?;
        block::decode(&sb.uuid, ring.get(pos..pos + MD_BLOCK)?)
    };
    let mut seq = l.next_block;
    while let Some((head, first)) = block_at(seq) {
        if head.kind != BlockKind::Journal
            || head.seq != seq
            || head.index != 0
            || head.batch_first != seq
            || u64::from(head.count) > blocks / 2
        {
            break;
        }
        let mut payload = first.to_vec();
        let mut whole = true;
        for k in 1..head.count {
            match block_at(seq + u64::from(k)) {
                Some((h, p))
                    if h.kind == BlockKind::Journal
                        && h.seq == seq + u64::from(k)
                        && h.nonce == head.nonce
                        && h.batch_first == seq
                        && h.index == k
                        && h.count == head.count =>
                {
                    payload.extend_from_slice(p);
                }
                _ => {
                    whole = false;
                    break;
                }
            }
        }
        if !whole {
            break;
        }
        let batch = seq;
        l.records += apply_batch(&mut l.state, &payload, mode, &mut |what| {
            l.notes
                .push(format!("journal batch at block {batch}: {what}"));
        })
        .map_err(|e| LvolError::corrupt(format!("journal replay: {}", detail(&e))))?;
        l.batches += 1;
        seq += u64::from(head.count);
    }
    l.next_block = seq;
    Ok(())
}

/// Applies a batch of `{ len u32, Op }` records; returns how many applied. In salvage mode a
/// record that does not apply is repaired where its meaning is clear (a map onto a mapped
/// entry: the newer record wins, as in the running lvstore that wrote it) or skipped, and each
/// deviation is reported through `note`.
pub(crate) fn apply_batch(
    state: &mut MetaState,
    payload: &[u8],
    mode: Mode,
    note: &mut dyn FnMut(String),
) -> Result<u64, LvolError> {
    let mut r = Reader::new(payload, "journal batch");
    let mut n = 0;
    while !r.is_empty() {
        let len = usize::try_from(r.u32()?).map_err(|_| LvolError::corrupt("record length"))?;
        let mut rr = Reader::new(r.bytes(len)?, "journal record");
        let op = Op::decode(&mut rr)?;
        match state.apply(&op) {
            Ok(_) => n += 1,
            Err(e) if mode == Mode::Strict => return Err(e),
            Err(e) => salvage(state, &op, &e, note),
        }
    }
    Ok(n)
}

fn salvage(state: &mut MetaState, op: &Op, e: &LvolError, note: &mut dyn FnMut(String)) {
    if let Op::Map {
        uuid,
        index,
        cluster,
    } = op
    {
        // A clone's released entry reads zeros, not its parent (as `release_run` writes it).
        let zero = state
            .lvol(uuid)
            .is_some_and(|l| l.data.read().parent.is_some());
        let unmap = Op::Release {
            uuid: *uuid,
            start: *index,
            count: 1,
            zero,
        };
        let mapped = state.lvol(uuid).is_some_and(|l| {
            let d = l.data.read();
            usize::try_from(*index)
                .ok()
                .and_then(|i| d.entries.get(i))
                .is_some_and(|&e| super::state::is_real(e))
        });
        let free = state.is_data_cluster(*cluster) && !state.is_used(*cluster);
        if mapped && free && state.apply(&unmap).is_ok() && state.apply(op).is_ok() {
            note(format!(
                "lvol {uuid} cluster {index}: mapped again to {cluster} over an earlier \
                 mapping; the newer mapping was kept and the older cluster freed"
            ));
            return;
        }
    }
    note(format!(
        "skipped a record that does not apply ({})",
        detail(e)
    ));
}

/// Reads the metadata of the lvstore on `device` without changing anything.
pub(crate) async fn read_metadata(device: &Device, mode: Mode) -> Result<Loaded, LvolError> {
    let slots = read_slots(device).await?;
    let sb_slot = match &slots {
        [Slot::Valid(a), Slot::Valid(b)] => usize::from(b.generation > a.generation),
        [Slot::Valid(_), _] => 0,
        _ => 1,
    };
    let mut notes = Vec::new();
    for (i, slot) in slots.iter().enumerate() {
        if !matches!(slot, Slot::Valid(_)) {
            notes.push(format!(
                "superblock copy {i} is damaged; the other copy is used"
            ));
        }
    }
    let sb = superblock::choose(slots)?;
    if device.size_bytes() < sb.total_clusters * sb.cluster_size {
        return Err(LvolError::corrupt(format!(
            "device ({} bytes) is smaller than the lvstore ({} clusters of {} bytes)",
            device.size_bytes(),
            sb.total_clusters,
            sb.cluster_size
        )));
    }
    let (ckpt, ckpt_slot, state, max_generation) =
        choose_checkpoint(device, &sb, mode, &mut notes).await?;
    let ring = read(device, sb.journal_offset, sb.journal_bytes).await?;
    let mut l = Loaded {
        sb,
        sb_slot,
        state,
        ckpt_generation: ckpt.generation,
        max_generation,
        ckpt_slot,
        journal_start: ckpt.journal_start,
        next_block: ckpt.journal_start,
        batches: 0,
        records: 0,
        notes,
    };
    replay(&ring, &mut l, mode)?;
    Ok(l)
}

/// Builds the run-time metadata store from what was read.
pub(crate) fn into_store(device: Device, l: Loaded) -> MetaStore {
    let bound = checkpoint::payload(l.next_block, &l.state.records()).len() as u64;
    let meta = Meta::new(l.state, 1, bound, &l.sb);
    let writer = Writer {
        next_block: l.next_block,
        start_block: l.journal_start,
        nonce: random_nonce(),
        ckpt_gen: l.max_generation.max(l.ckpt_generation),
        ckpt_slot: l.ckpt_slot,
        sb_slot: l.sb_slot,
    };
    MetaStore::new(device, l.sb, meta, writer)
}

/// Loads the metadata of the lvstore on `device`.
pub(crate) async fn load(device: Device) -> Result<MetaStore, LvolError> {
    let l = read_metadata(&device, Mode::Strict).await?;
    Ok(into_store(device, l))
}
