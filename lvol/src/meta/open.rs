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

/// The newest complete checkpoint and its slot.
async fn newest_checkpoint(
    device: &Device,
    sb: &Superblock,
) -> Result<(checkpoint::Checkpoint, usize), LvolError> {
    let a = read_checkpoint(device, sb, 0).await?;
    let b = read_checkpoint(device, sb, 1).await?;
    match (a, b) {
        (Some(x), Some(y)) if y.generation > x.generation => Ok((y, 1)),
        (Some(x), _) => Ok((x, 0)),
        (None, Some(y)) => Ok((y, 1)),
        (None, None) => Err(LvolError::corrupt("no complete metadata checkpoint")),
    }
}

/// Replays journal batches from `start`; returns the sequence number after the last whole one.
fn replay(
    sb: &Superblock,
    ring: &[u8],
    state: &mut MetaState,
    start: u64,
) -> Result<u64, LvolError> {
    let blocks = sb.journal_blocks();
    let block_at = |seq: u64| {
        let pos = usize::try_from(seq % blocks).ok()?.checked_mul(MD_BLOCK)?;
        block::decode(&sb.uuid, ring.get(pos..pos + MD_BLOCK)?)
    };
    let mut seq = start;
    loop {
        let Some((head, first)) = block_at(seq) else {
            return Ok(seq);
        };
        if head.kind != BlockKind::Journal
            || head.seq != seq
            || head.index != 0
            || head.batch_first != seq
        {
            return Ok(seq);
        }
        if u64::from(head.count) > blocks / 2 {
            return Ok(seq);
        }
        let mut payload = first.to_vec();
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
                _ => return Ok(seq),
            }
        }
        apply_batch(state, &payload)?;
        seq += u64::from(head.count);
    }
}

fn apply_batch(state: &mut MetaState, payload: &[u8]) -> Result<(), LvolError> {
    let mut r = Reader::new(payload, "journal batch");
    while !r.is_empty() {
        let len = usize::try_from(r.u32()?).map_err(|_| LvolError::corrupt("record length"))?;
        let mut rr = Reader::new(r.bytes(len)?, "journal record");
        let op = Op::decode(&mut rr)?;
        state
            .apply(&op)
            .map_err(|e| LvolError::corrupt(format!("journal replay: {e}")))?;
    }
    Ok(())
}

/// Loads the metadata of the lvstore on `device`.
pub(crate) async fn load(device: Device) -> Result<MetaStore, LvolError> {
    let slots = read_slots(&device).await?;
    let sb_slot = match &slots {
        [Slot::Valid(a), Slot::Valid(b)] => usize::from(b.generation > a.generation),
        [Slot::Valid(_), _] => 0,
        _ => 1,
    };
    let sb = superblock::choose(slots)?;
    if device.size_bytes() < sb.total_clusters * sb.cluster_size {
        return Err(LvolError::corrupt(format!(
            "device ({} bytes) is smaller than the lvstore ({} clusters of {} bytes)",
            device.size_bytes(),
            sb.total_clusters,
            sb.cluster_size
        )));
    }
    let (ckpt, ckpt_slot) = newest_checkpoint(&device, &sb).await?;
    let mut state = MetaState::from_records(
        clusters_u32(sb.total_clusters)?,
        clusters_u32(sb.first_data_cluster)?,
        &ckpt.records,
    )?;
    let ring = read(&device, sb.journal_offset, sb.journal_bytes).await?;
    let next_block = replay(&sb, &ring, &mut state, ckpt.journal_start)?;
    let bound = checkpoint::payload(next_block, &state.records()).len() as u64;
    let meta = Meta::new(state, 1, bound, &sb);
    let writer = Writer {
        next_block,
        start_block: ckpt.journal_start,
        nonce: random_nonce(),
        ckpt_gen: ckpt.generation,
        ckpt_slot,
        sb_slot,
    };
    Ok(MetaStore::new(device, sb, meta, writer))
}
