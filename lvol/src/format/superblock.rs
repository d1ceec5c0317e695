//! The superblock: two 4 KiB slots at the start of the device, each a complete copy with a
//! generation number and a CRC32C. Updates (rename, grow) write the slot not holding the newest
//! copy, so a torn update leaves the other intact; loading takes the valid slot with the highest
//! generation. It also fixes the geometry of the metadata region for the life of the lvstore.

use uuid::Uuid;

use super::codec::{Reader, put_name, put_u32, put_u64, put_uuid};
use super::{MD_BLOCK, MD_BLOCK_U64};
use crate::error::LvolError;
use crate::types::check_name;

/// "LAMINALV".
pub(crate) const MAGIC: [u8; 8] = *b"LAMINALV";
/// Format version written and understood.
pub(crate) const VERSION: u32 = 1;
/// Byte offsets of the two superblock slots.
pub(crate) const SLOT_OFFSETS: [u64; 2] = [0, MD_BLOCK_U64];
/// Where the first checkpoint slot starts.
const CKPT_OFFSET: u64 = 2 * MD_BLOCK_U64;
/// Smallest and largest cluster sizes.
pub(crate) const MIN_CLUSTER: u64 = 1 << 20;
pub(crate) const MAX_CLUSTER: u64 = 1 << 30;
/// Default cluster size.
pub const DEFAULT_CLUSTER_SIZE: u64 = 4 << 20;
/// Physical cluster numbers are `u32`; `u32::MAX` is the "reads as zeros" marker.
pub(crate) const MAX_TOTAL_CLUSTERS: u64 = (u32::MAX - 1) as u64;
/// Upper bound of one serialized lvol record without its runs (see `record.rs`).
pub(crate) const LVOL_RECORD_MAX: u64 = 128;
/// Bytes per run in a serialized cluster map.
pub(crate) const RUN_BYTES: u64 = 12;
/// Payload bytes per metadata block (the block header takes 64).
pub(crate) const BLOCK_PAYLOAD: u64 = MD_BLOCK_U64 - 64;

/// A decoded superblock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Superblock {
    pub generation: u64,
    pub uuid: Uuid,
    pub name: String,
    pub cluster_size: u64,
    pub block_size: u32,
    pub total_clusters: u64,
    pub max_clusters: u64,
    pub max_lvols: u32,
    pub ckpt_offset: u64,
    pub ckpt_slot_bytes: u64,
    pub journal_offset: u64,
    pub journal_bytes: u64,
    pub first_data_cluster: u64,
}

/// What one slot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Neither our magic nor anything recognisable (blank or foreign data).
    Empty,
    /// Our magic but a bad checksum or impossible fields.
    Damaged(String),
    /// A good copy.
    Valid(Superblock),
}

/// The sizing knobs of a new lvstore.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizing {
    pub device_bytes: u64,
    pub device_block: u32,
    pub cluster_size: u64,
    pub block_size: u32,
    pub max_clusters: Option<u64>,
    pub max_lvols: Option<u32>,
    pub journal_bytes: Option<u64>,
}

fn round_up(v: u64, to: u64) -> u64 {
    v.div_ceil(to) * to
}

impl Superblock {
    /// Lays out a new lvstore on a device.
    pub(crate) fn plan(uuid: Uuid, name: &str, s: Sizing) -> Result<Self, LvolError> {
        check_name("lvstore", name)?;
        if !s.cluster_size.is_power_of_two()
            || !(MIN_CLUSTER..=MAX_CLUSTER).contains(&s.cluster_size)
        {
            return Err(LvolError::invalid(format!(
                "cluster size {} must be a power of two from 1 MiB to 1 GiB",
                s.cluster_size
            )));
        }
        if (s.block_size != 512 && s.block_size != 4096) || s.block_size < s.device_block {
            return Err(LvolError::invalid(format!(
                "block size {} must be 512 or 4096 and at least the device's {}",
                s.block_size, s.device_block
            )));
        }
        let total = s.device_bytes / s.cluster_size;
        if total > MAX_TOTAL_CLUSTERS {
            return Err(LvolError::invalid(
                "device has too many clusters: use bigger clusters",
            ));
        }
        let max_clusters = s
            .max_clusters
            .unwrap_or_else(|| (total * 4).max(total + 1024))
            .min(MAX_TOTAL_CLUSTERS);
        if max_clusters < total {
            return Err(LvolError::invalid(
                "max clusters is below the device's cluster count",
            ));
        }
        let max_lvols = s
            .max_lvols
            .unwrap_or_else(|| u32::try_from(total.clamp(1024, 65_536)).unwrap_or(65_536));
        if max_lvols == 0 {
            return Err(LvolError::invalid("max lvols must be at least 1"));
        }
        let payload = 64 + u64::from(max_lvols) * LVOL_RECORD_MAX + max_clusters * RUN_BYTES;
        let ckpt_slot_bytes = (payload.div_ceil(BLOCK_PAYLOAD) + 1) * MD_BLOCK_U64;
        let journal_bytes = match s.journal_bytes {
            Some(j) if (16 * MD_BLOCK_U64..=1 << 30).contains(&j) => round_up(j, MD_BLOCK_U64),
            Some(_) => return Err(LvolError::invalid("journal size must be 64 KiB to 1 GiB")),
            None => round_up(
                (s.device_bytes / 1024).clamp(1 << 20, 64 << 20),
                MD_BLOCK_U64,
            ),
        };
        let journal_offset = CKPT_OFFSET + 2 * ckpt_slot_bytes;
        let first_data_cluster = (journal_offset + journal_bytes).div_ceil(s.cluster_size);
        if first_data_cluster >= total {
            return Err(LvolError::invalid(format!(
                "device of {} bytes is too small for an lvstore with {}-byte clusters",
                s.device_bytes, s.cluster_size
            )));
        }
        Ok(Self {
            generation: 1,
            uuid,
            name: name.to_owned(),
            cluster_size: s.cluster_size,
            block_size: s.block_size,
            total_clusters: total,
            max_clusters,
            max_lvols,
            ckpt_offset: CKPT_OFFSET,
            ckpt_slot_bytes,
            journal_offset,
            journal_bytes,
            first_data_cluster,
        })
    }

    /// Byte offset of checkpoint slot 0 or 1.
    pub(crate) fn ckpt_slot_offset(&self, slot: usize) -> u64 {
        self.ckpt_offset + if slot == 0 { 0 } else { self.ckpt_slot_bytes }
    }

    /// Number of 4 KiB blocks in the journal ring.
    pub(crate) fn journal_blocks(&self) -> u64 {
        self.journal_bytes / MD_BLOCK_U64
    }

    /// Encodes into one 4 KiB slot.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MD_BLOCK);
        out.extend_from_slice(&MAGIC);
        put_u32(&mut out, VERSION);
        put_u32(&mut out, 0); // flags, none defined in version 1
        put_u64(&mut out, self.generation);
        put_uuid(&mut out, &self.uuid);
        put_u64(&mut out, self.cluster_size);
        put_u32(&mut out, self.block_size);
        put_u32(&mut out, self.max_lvols);
        put_u64(&mut out, self.total_clusters);
        put_u64(&mut out, self.max_clusters);
        put_u64(&mut out, self.ckpt_offset);
        put_u64(&mut out, self.ckpt_slot_bytes);
        put_u64(&mut out, self.journal_offset);
        put_u64(&mut out, self.journal_bytes);
        put_u64(&mut out, self.first_data_cluster);
        put_name(&mut out, &self.name);
        out.resize(MD_BLOCK - 4, 0);
        let crc = crc32c::crc32c(&out);
        put_u32(&mut out, crc);
        out
    }

    /// Decodes one slot.
    pub(crate) fn decode(buf: &[u8]) -> Slot {
        if buf.len() < MD_BLOCK || buf.get(..8) != Some(&MAGIC[..]) {
            return Slot::Empty;
        }
        let (body, crc) = buf.split_at(MD_BLOCK - 4);
        let stored = crc
            .get(..4)
            .map_or(0, |c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        if crc32c::crc32c(body) != stored {
            return Slot::Damaged("superblock checksum mismatch".into());
        }
        match Self::decode_fields(body) {
            Ok(sb) => match sb.validate() {
                Ok(()) => Slot::Valid(sb),
                Err(e) => Slot::Damaged(e.to_string()),
            },
            Err(e) => Slot::Damaged(e.to_string()),
        }
    }

    fn decode_fields(body: &[u8]) -> Result<Self, LvolError> {
        let mut r = Reader::new(body, "superblock");
        r.bytes(8)?;
        let version = r.u32()?;
        if version != VERSION {
            return Err(LvolError::corrupt(format!(
                "superblock format version {version} is not supported (this build reads {VERSION})"
            )));
        }
        let _flags = r.u32()?;
        Ok(Self {
            generation: r.u64()?,
            uuid: r.uuid()?,
            cluster_size: r.u64()?,
            block_size: r.u32()?,
            max_lvols: r.u32()?,
            total_clusters: r.u64()?,
            max_clusters: r.u64()?,
            ckpt_offset: r.u64()?,
            ckpt_slot_bytes: r.u64()?,
            journal_offset: r.u64()?,
            journal_bytes: r.u64()?,
            first_data_cluster: r.u64()?,
            name: r.name()?,
        })
    }

    /// Checks that the fields describe a possible layout.
    fn validate(&self) -> Result<(), LvolError> {
        let bad = |what: &str| Err(LvolError::corrupt(format!("superblock {what}")));
        if !self.cluster_size.is_power_of_two()
            || !(MIN_CLUSTER..=MAX_CLUSTER).contains(&self.cluster_size)
        {
            return bad("cluster size is invalid");
        }
        if self.block_size != 512 && self.block_size != 4096 {
            return bad("block size is invalid");
        }
        if self.total_clusters > self.max_clusters || self.max_clusters > MAX_TOTAL_CLUSTERS {
            return bad("cluster counts are invalid");
        }
        if self.ckpt_offset != CKPT_OFFSET
            || !self.ckpt_slot_bytes.is_multiple_of(MD_BLOCK_U64)
            || self.ckpt_slot_bytes < 2 * MD_BLOCK_U64
            || self.journal_offset != CKPT_OFFSET + 2 * self.ckpt_slot_bytes
            || !self.journal_bytes.is_multiple_of(MD_BLOCK_U64)
            || self.journal_bytes < 16 * MD_BLOCK_U64
        {
            return bad("metadata region layout is invalid");
        }
        let md_end = self.journal_offset.checked_add(self.journal_bytes);
        if md_end.map(|e| e.div_ceil(self.cluster_size)) != Some(self.first_data_cluster)
            || self.first_data_cluster >= self.total_clusters
        {
            return bad("data region start is invalid");
        }
        check_name("lvstore", &self.name).or_else(|_| bad("name is invalid"))
    }
}

/// Picks the superblock from the two slots: the valid one with the highest generation.
pub(crate) fn choose(slots: [Slot; 2]) -> Result<Superblock, LvolError> {
    let [a, b] = slots;
    match (a, b) {
        (Slot::Valid(x), Slot::Valid(y)) => Ok(if y.generation > x.generation { y } else { x }),
        (Slot::Valid(x), _) | (_, Slot::Valid(x)) => Ok(x),
        (Slot::Empty, Slot::Empty) => Err(LvolError::NoLvstore),
        (Slot::Damaged(why), _) | (_, Slot::Damaged(why)) => Err(LvolError::corrupt(format!(
            "no valid superblock copy ({why}); refusing to load, the device was not modified"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizing(device_bytes: u64) -> Sizing {
        Sizing {
            device_bytes,
            device_block: 512,
            cluster_size: 1 << 20,
            block_size: 512,
            max_clusters: None,
            max_lvols: None,
            journal_bytes: None,
        }
    }

    #[test]
    fn roundtrip_and_choice() {
        let sb = Superblock::plan(Uuid::from_u128(1), "lvs0", sizing(256 << 20)).unwrap();
        assert_eq!(sb.total_clusters, 256);
        assert!(sb.first_data_cluster > 0 && sb.first_data_cluster < 256);
        let bytes = sb.encode();
        assert_eq!(bytes.len(), MD_BLOCK);
        assert_eq!(Superblock::decode(&bytes), Slot::Valid(sb.clone()));
        let mut newer = sb.clone();
        newer.generation = 2;
        newer.name = "renamed".into();
        let chosen =
            choose([Slot::Valid(sb.clone()), Superblock::decode(&newer.encode())]).unwrap();
        assert_eq!(chosen.name, "renamed");
        let mut torn = newer.encode();
        torn[100] ^= 1;
        assert!(matches!(Superblock::decode(&torn), Slot::Damaged(_)));
        assert_eq!(
            choose([Slot::Valid(sb.clone()), Superblock::decode(&torn)]).unwrap(),
            sb
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(
            choose([Slot::Empty, Slot::Empty]),
            Err(LvolError::NoLvstore)
        );
        assert!(matches!(
            choose([Slot::Damaged("x".into()), Slot::Empty]),
            Err(LvolError::Corrupt(_))
        ));
        assert_eq!(Superblock::decode(&[0u8; 4096]), Slot::Empty);
        assert_eq!(Superblock::decode(b"short"), Slot::Empty);
        let mut s = sizing(256 << 20);
        s.cluster_size = 3 << 20;
        assert!(Superblock::plan(Uuid::nil(), "a", s).is_err());
        assert!(Superblock::plan(Uuid::nil(), "a", sizing(2 << 20)).is_err());
        let mut s = sizing(256 << 20);
        s.block_size = 1024;
        assert!(Superblock::plan(Uuid::nil(), "a", s).is_err());
        assert!(Superblock::plan(Uuid::nil(), "a/b", sizing(256 << 20)).is_err());
    }

    #[test]
    fn unknown_version_is_damaged() {
        let sb = Superblock::plan(Uuid::from_u128(1), "lvs0", sizing(256 << 20)).unwrap();
        let mut bytes = sb.encode();
        bytes[8] = 9;
        let body_len = bytes.len() - 4;
        let crc = crc32c::crc32c(&bytes[..body_len]);
        bytes[body_len..].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(Superblock::decode(&bytes), Slot::Damaged(m) if m.contains("version")));
    }
}
