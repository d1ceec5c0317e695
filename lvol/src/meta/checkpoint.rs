//! Checkpoints: the whole metadata state (every lvol record) plus the journal sequence number
//! replay starts from, framed in checksummed blocks carrying the checkpoint generation. Two
//! slots alternate; a torn checkpoint leaves the other slot (and the journal behind it) intact.

use uuid::Uuid;

use crate::error::LvolError;
use crate::format::MD_BLOCK;
use crate::format::block::{self, BlockHeader, BlockKind, PAYLOAD};
use crate::format::codec::{Reader, put_u32, put_u64};
use crate::format::record::LvolRecord;

/// A decoded checkpoint.
#[derive(Debug)]
pub(crate) struct Checkpoint {
    pub generation: u64,
    pub journal_start: u64,
    pub records: Vec<LvolRecord>,
}

/// The checkpoint payload (before framing).
pub(crate) fn payload(journal_start: u64, records: &[LvolRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    put_u64(&mut out, journal_start);
    put_u32(&mut out, u32::try_from(records.len()).unwrap_or(u32::MAX));
    let mut rec_buf = Vec::new();
    for rec in records {
        rec_buf.clear();
        rec.encode(&mut rec_buf);
        put_u32(&mut out, u32::try_from(rec_buf.len()).unwrap_or(u32::MAX));
        out.extend_from_slice(&rec_buf);
    }
    out
}

/// Frames a payload as the blocks of checkpoint `generation`.
pub(crate) fn frame(store: &Uuid, generation: u64, payload: &[u8]) -> Vec<u8> {
    let chunks: Vec<&[u8]> = if payload.is_empty() {
        vec![&[][..]]
    } else {
        payload.chunks(PAYLOAD).collect()
    };
    let count = u32::try_from(chunks.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(chunks.len() * MD_BLOCK);
    for (i, chunk) in chunks.iter().enumerate() {
        let h = BlockHeader {
            kind: BlockKind::Checkpoint,
            seq: generation,
            nonce: 0,
            batch_first: 0,
            index: u32::try_from(i).unwrap_or(u32::MAX),
            count,
        };
        block::encode(store, &h, chunk, &mut out);
    }
    out
}

/// The generation and block count of a slot's first block, if it starts a checkpoint.
pub(crate) fn peek(store: &Uuid, first_block: &[u8]) -> Option<(u64, u32)> {
    let (h, _) = block::decode(store, first_block)?;
    (h.kind == BlockKind::Checkpoint && h.index == 0).then_some((h.seq, h.count))
}

/// Decodes a complete checkpoint from its blocks. `Ok(None)` when a block is torn or stale
/// (the slot does not hold a whole checkpoint); `Err` when the blocks are intact but their
/// content is not a valid state (real corruption).
pub(crate) fn decode(store: &Uuid, blocks: &[u8]) -> Result<Option<Checkpoint>, LvolError> {
    let Some((generation, count)) = peek(store, blocks) else {
        return Ok(None);
    };
    let mut payload = Vec::new();
    for i in 0..count {
        let start = usize::try_from(i)
            .unwrap_or(usize::MAX)
            .saturating_mul(MD_BLOCK);
        let Some(raw) = blocks.get(start..start.saturating_add(MD_BLOCK)) else {
            return Ok(None);
        };
        match block::decode(store, raw) {
            Some((h, p))
                if h.kind == BlockKind::Checkpoint
                    && h.seq == generation
                    && h.index == i
                    && h.count == count =>
            {
                payload.extend_from_slice(p);
            }
            _ => return Ok(None),
        }
    }
    let mut r = Reader::new(&payload, "checkpoint");
    let journal_start = r.u64()?;
    let n = r.u32()?;
    let mut records = Vec::new();
    for _ in 0..n {
        let len = usize::try_from(r.u32()?).map_err(|_| LvolError::corrupt("record length"))?;
        let mut rr = Reader::new(r.bytes(len)?, "checkpoint lvol record");
        records.push(LvolRecord::decode(&mut rr)?);
        if !rr.is_empty() {
            return Err(LvolError::corrupt(
                "checkpoint lvol record has trailing bytes",
            ));
        }
    }
    if !r.is_empty() {
        return Err(LvolError::corrupt("checkpoint has trailing bytes"));
    }
    Ok(Some(Checkpoint {
        generation,
        journal_start,
        records,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ClearMethod;

    fn rec(i: u128, entries: Vec<u32>) -> LvolRecord {
        LvolRecord {
            uuid: Uuid::from_u128(i),
            name: format!("v{i}"),
            flags: 0,
            clear: ClearMethod::Unmap,
            parent: None,
            entries,
        }
    }

    #[test]
    fn roundtrip_multi_block_and_torn() {
        let store = Uuid::from_u128(9);
        let records: Vec<_> = (0..200).map(|i| rec(i, vec![0, 3, 0])).collect();
        let blocks = frame(&store, 5, &payload(77, &records));
        assert!(blocks.len() > 2 * MD_BLOCK);
        let ck = decode(&store, &blocks).unwrap().unwrap();
        assert_eq!((ck.generation, ck.journal_start), (5, 77));
        assert_eq!(ck.records, records);
        // A stale second block (other generation) makes the slot incomplete, not corrupt.
        let mut torn = blocks.clone();
        let older = frame(&store, 4, &payload(1, &records));
        torn[MD_BLOCK..2 * MD_BLOCK].copy_from_slice(&older[MD_BLOCK..2 * MD_BLOCK]);
        assert!(decode(&store, &torn).unwrap().is_none());
        assert!(decode(&store, &blocks[..MD_BLOCK]).unwrap().is_none());
        assert!(decode(&store, &vec![0u8; MD_BLOCK]).unwrap().is_none());
    }

    #[test]
    fn empty_state_is_one_block() {
        let store = Uuid::from_u128(1);
        let blocks = frame(&store, 1, &payload(1, &[]));
        assert_eq!(blocks.len(), MD_BLOCK);
        assert!(decode(&store, &blocks).unwrap().unwrap().records.is_empty());
    }

    #[test]
    fn intact_but_invalid_content_is_corrupt() {
        let store = Uuid::from_u128(1);
        let blocks = frame(&store, 1, &[1, 2, 3]);
        assert!(matches!(
            decode(&store, &blocks),
            Err(LvolError::Corrupt(_))
        ));
    }
}
