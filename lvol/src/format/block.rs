//! Framing of every checkpoint and journal block: a 64-byte header (magic, CRC32C, kind,
//! sequence number, batch identity, lvstore UUID) and up to 4032 bytes of payload. A block is
//! valid only if its checksum matches and it names this lvstore, so torn writes, stale blocks
//! from an older lap of the journal and leftovers of a previous lvstore are all rejected.

use uuid::Uuid;

use super::MD_BLOCK;
use super::codec::{Reader, put_u32, put_u64, put_uuid};

const MAGIC: u32 = u32::from_le_bytes(*b"LMDB");
const HEADER: usize = 64;
/// Payload bytes per block.
pub(crate) const PAYLOAD: usize = MD_BLOCK - HEADER;

/// What a block belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlockKind {
    /// A journal batch.
    Journal = 1,
    /// A checkpoint.
    Checkpoint = 2,
}

/// The decoded header of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockHeader {
    pub kind: BlockKind,
    /// Journal: the block's sequence number. Checkpoint: the checkpoint generation.
    pub seq: u64,
    /// Journal: random per writer session, identifies the batch together with `batch_first`.
    pub nonce: u64,
    /// Journal: sequence number of the batch's first block. Checkpoint: 0.
    pub batch_first: u64,
    /// Position of this block in its batch or checkpoint.
    pub index: u32,
    /// Blocks in the batch or checkpoint.
    pub count: u32,
}

/// Appends one framed 4 KiB block holding `payload` (at most [`PAYLOAD`] bytes).
pub(crate) fn encode(store: &Uuid, h: &BlockHeader, payload: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    let payload = payload
        .get(..payload.len().min(PAYLOAD))
        .unwrap_or_default();
    put_u32(out, MAGIC);
    put_u32(out, 0); // CRC, patched below
    out.push(h.kind as u8);
    out.extend_from_slice(&[0; 3]);
    put_u32(out, u32::try_from(payload.len()).unwrap_or(0));
    put_u64(out, h.seq);
    put_u64(out, h.nonce);
    put_u64(out, h.batch_first);
    put_u32(out, h.index);
    put_u32(out, h.count);
    put_uuid(out, store);
    out.extend_from_slice(payload);
    out.resize(start + MD_BLOCK, 0);
    let crc = out.get(start + 8..).map_or(0, crc32c::crc32c);
    if let Some(slot) = out.get_mut(start + 4..start + 8) {
        slot.copy_from_slice(&crc.to_le_bytes());
    }
}

/// Decodes one block; `None` if it is not a valid block of lvstore `store`.
pub(crate) fn decode<'a>(store: &Uuid, buf: &'a [u8]) -> Option<(BlockHeader, &'a [u8])> {
    let buf = buf.get(..MD_BLOCK)?;
    let mut r = Reader::new(buf, "metadata block");
    if r.u32().ok()? != MAGIC {
        return None;
    }
    let crc = r.u32().ok()?;
    if crc32c::crc32c(buf.get(8..)?) != crc {
        return None;
    }
    let kind = match r.u8().ok()? {
        1 => BlockKind::Journal,
        2 => BlockKind::Checkpoint,
        _ => return None,
    };
    r.bytes(3).ok()?;
    let len = usize::try_from(r.u32().ok()?).ok()?;
    let h = BlockHeader {
        kind,
        seq: r.u64().ok()?,
        nonce: r.u64().ok()?,
        batch_first: r.u64().ok()?,
        index: r.u32().ok()?,
        count: r.u32().ok()?,
    };
    if r.uuid().ok()? != *store || len > PAYLOAD || h.count == 0 || h.index >= h.count {
        return None;
    }
    Some((h, buf.get(HEADER..HEADER + len)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> BlockHeader {
        BlockHeader {
            kind: BlockKind::Journal,
            seq: 9,
            nonce: 77,
            batch_first: 8,
            index: 1,
            count: 2,
        }
    }

    #[test]
    fn roundtrip_and_rejections() {
        let store = Uuid::from_u128(42);
        let mut out = Vec::new();
        encode(&store, &header(), b"hello", &mut out);
        assert_eq!(out.len(), MD_BLOCK);
        let (h, p) = decode(&store, &out).unwrap();
        assert_eq!(h, header());
        assert_eq!(p, b"hello");
        assert!(
            decode(&Uuid::from_u128(43), &out).is_none(),
            "other lvstore"
        );
        for i in [0usize, 5, 8, 40, 100, 4095] {
            let mut torn = out.clone();
            torn[i] ^= 0x10;
            assert!(decode(&store, &torn).is_none(), "flip at {i}");
        }
        assert!(decode(&store, &out[..100]).is_none());
    }

    #[test]
    fn full_payload_fits() {
        let store = Uuid::from_u128(1);
        let mut out = Vec::new();
        let payload = vec![0xab; PAYLOAD];
        encode(&store, &header(), &payload, &mut out);
        assert_eq!(decode(&store, &out).unwrap().1, &payload[..]);
    }
}
