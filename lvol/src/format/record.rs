//! Lvol records and metadata operations. A cluster map is a vector of `u32` physical cluster
//! numbers, one per logical cluster: [`UNMAPPED`] (0, never a data cluster because the
//! superblock lives in cluster 0) reads through to the parent or as zeros, [`ZERO`] reads as
//! zeros even in a clone. On disk a map is a list of runs `(logical, first, len)`: consecutive
//! physical clusters, or a stretch of [`ZERO`] markers. Each [`Op`] is one journal record.

use uuid::Uuid;

use super::codec::{Reader, put_name, put_u8, put_u32, put_uuid};
use crate::error::LvolError;
use crate::types::ClearMethod;

/// Map entry: not allocated (reads through to the parent, or zeros).
pub(crate) const UNMAPPED: u32 = 0;
/// Map entry: reads as zeros without consulting the parent.
pub(crate) const ZERO: u32 = u32::MAX;

/// Lvol flag bits.
pub(crate) const FLAG_THIN: u8 = 1;
pub(crate) const FLAG_READ_ONLY: u8 = 2;
pub(crate) const FLAG_SNAPSHOT: u8 = 4;
const FLAG_ALL: u8 = FLAG_THIN | FLAG_READ_ONLY | FLAG_SNAPSHOT;

/// One lvol as stored in a checkpoint or a create record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LvolRecord {
    pub uuid: Uuid,
    pub name: String,
    pub flags: u8,
    pub clear: ClearMethod,
    pub parent: Option<Uuid>,
    /// One entry per logical cluster; the length is the lvol size in clusters.
    pub entries: Vec<u32>,
}

/// One metadata operation: the unit of crash atomicity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    /// A new lvol (thin, thick with its clusters, or a clone with its parent).
    Create(LvolRecord),
    /// Deletes an lvol with no clones, freeing its clusters.
    Delete { uuid: Uuid },
    /// Maps logical cluster `index` (unmapped or zero) to physical `cluster`.
    Map {
        uuid: Uuid,
        index: u32,
        cluster: u32,
    },
    /// Releases `count` clusters from `start`: entries become [`UNMAPPED`] or, with `zero`,
    /// [`ZERO`]; physical clusters there are freed.
    Release {
        uuid: Uuid,
        start: u32,
        count: u32,
        zero: bool,
    },
    /// Changes the size. Growing a thick lvol maps the new clusters to `added`; growing a
    /// clone marks clusters the parent could provide as [`ZERO`]; shrinking frees the tail.
    Resize {
        uuid: Uuid,
        clusters: u32,
        added: Vec<u32>,
    },
    /// Renames an lvol.
    Rename { uuid: Uuid, name: String },
    /// Sets an lvol read-only.
    SetReadOnly { uuid: Uuid },
    /// `snapshot` takes over `origin`'s clusters and parent; `origin` becomes its thin clone.
    Snapshot {
        origin: Uuid,
        snapshot: Uuid,
        name: String,
    },
    /// Drops the parent (end of inflate or decouple); `thick` clears the thin flag.
    Detach { uuid: Uuid, thick: bool },
    /// Deletes snapshot `snapshot` by merging it into its only clone `clone`.
    Merge { snapshot: Uuid, clone: Uuid },
}

/// Appends the runs of `entries`.
fn put_entries(out: &mut Vec<u8>, entries: &[u32]) {
    let runs = runs(entries);
    put_u32(out, u32::try_from(entries.len()).unwrap_or(u32::MAX));
    put_u32(out, u32::try_from(runs.len()).unwrap_or(u32::MAX));
    for (logical, first, len) in runs {
        put_u32(out, logical);
        put_u32(out, first);
        put_u32(out, len);
    }
}

/// The runs of a map: maximal stretches of consecutive physical clusters or of [`ZERO`].
pub(crate) fn runs(entries: &[u32]) -> Vec<(u32, u32, u32)> {
    let mut out: Vec<(u32, u32, u32)> = Vec::new();
    for (i, &e) in entries.iter().enumerate() {
        if e == UNMAPPED {
            continue;
        }
        let Ok(i) = u32::try_from(i) else { break };
        if let Some(last) = out.last_mut() {
            let (l, f, n) = *last;
            let contiguous = l + n == i
                && ((f == ZERO && e == ZERO)
                    || (f != ZERO && e != ZERO && f.checked_add(n) == Some(e)));
            if contiguous {
                last.2 += 1;
                continue;
            }
        }
        out.push((i, e, 1));
    }
    out
}

/// How many runs [`runs`] would produce, without building them.
pub(crate) fn run_count(entries: &[u32]) -> usize {
    let mut n = 0;
    let mut prev: Option<(usize, u32)> = None;
    for (i, &e) in entries.iter().enumerate() {
        if e == UNMAPPED {
            continue;
        }
        let continues = prev.is_some_and(|(pi, pe)| {
            pi + 1 == i
                && ((pe == ZERO && e == ZERO)
                    || (pe != ZERO && e != ZERO && pe.checked_add(1) == Some(e)))
        });
        if !continues {
            n += 1;
        }
        prev = Some((i, e));
    }
    n
}

/// Encoded size of a record with `name_len` name bytes, a parent or not, and `runs` runs.
pub(crate) fn record_len(name_len: usize, has_parent: bool, runs: usize) -> usize {
    16 + 1 + name_len + 1 + 1 + 1 + if has_parent { 16 } else { 0 } + 4 + 4 + 12 * runs
}

fn get_entries(r: &mut Reader<'_>) -> Result<Vec<u32>, LvolError> {
    let size = r.u32()?;
    let nruns = r.u32()?;
    let size_usize = usize::try_from(size).map_err(|_| LvolError::corrupt("map size"))?;
    let mut entries = vec![UNMAPPED; size_usize];
    for _ in 0..nruns {
        let (logical, first, len) = (r.u32()?, r.u32()?, r.u32()?);
        let end = logical.checked_add(len).filter(|&e| e <= size && len > 0);
        let last = if first == ZERO {
            Some(ZERO)
        } else {
            first.checked_add(len - 1)
        };
        let (Some(end), Some(last)) = (end, last) else {
            return Err(LvolError::corrupt("cluster map run out of range"));
        };
        if first == UNMAPPED || (first != ZERO && last == ZERO) {
            return Err(LvolError::corrupt("cluster map run maps invalid clusters"));
        }
        for (k, logical) in (logical..end).enumerate() {
            let slot = usize::try_from(logical)
                .ok()
                .and_then(|l| entries.get_mut(l));
            let Some(slot) = slot.filter(|s| **s == UNMAPPED) else {
                return Err(LvolError::corrupt("cluster map runs overlap"));
            };
            let k = u32::try_from(k).map_err(|_| LvolError::corrupt("run length"))?;
            *slot = if first == ZERO { ZERO } else { first + k };
        }
    }
    Ok(entries)
}

impl LvolRecord {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_uuid(out, &self.uuid);
        put_name(out, &self.name);
        put_u8(out, self.flags);
        put_u8(out, self.clear.to_byte());
        match &self.parent {
            Some(p) => {
                put_u8(out, 1);
                put_uuid(out, p);
            }
            None => put_u8(out, 0),
        }
        put_entries(out, &self.entries);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, LvolError> {
        let uuid = r.uuid()?;
        let name = r.name()?;
        let flags = r.u8()?;
        if flags & !FLAG_ALL != 0 {
            return Err(LvolError::corrupt("lvol record has unknown flags"));
        }
        let clear = ClearMethod::from_byte(r.u8()?)
            .ok_or_else(|| LvolError::corrupt("lvol record has an unknown clear method"))?;
        let parent = match r.u8()? {
            0 => None,
            1 => Some(r.uuid()?),
            _ => return Err(LvolError::corrupt("lvol record parent tag")),
        };
        let entries = get_entries(r)?;
        Ok(Self {
            uuid,
            name,
            flags,
            clear,
            parent,
            entries,
        })
    }
}

const T_CREATE: u8 = 1;
const T_DELETE: u8 = 2;
const T_MAP: u8 = 3;
const T_RELEASE: u8 = 4;
const T_RESIZE: u8 = 5;
const T_RENAME: u8 = 6;
const T_READ_ONLY: u8 = 7;
const T_SNAPSHOT: u8 = 8;
const T_DETACH: u8 = 9;
const T_MERGE: u8 = 10;

impl Op {
    /// Appends the encoded operation (without framing).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Create(rec) => {
                put_u8(out, T_CREATE);
                rec.encode(out);
            }
            Self::Delete { uuid } => {
                put_u8(out, T_DELETE);
                put_uuid(out, uuid);
            }
            Self::Map {
                uuid,
                index,
                cluster,
            } => {
                put_u8(out, T_MAP);
                put_uuid(out, uuid);
                put_u32(out, *index);
                put_u32(out, *cluster);
            }
            Self::Release {
                uuid,
                start,
                count,
                zero,
            } => {
                put_u8(out, T_RELEASE);
                put_uuid(out, uuid);
                put_u32(out, *start);
                put_u32(out, *count);
                put_u8(out, u8::from(*zero));
            }
            Self::Resize {
                uuid,
                clusters,
                added,
            } => {
                put_u8(out, T_RESIZE);
                put_uuid(out, uuid);
                put_u32(out, *clusters);
                put_entries(out, added);
            }
            Self::Rename { uuid, name } => {
                put_u8(out, T_RENAME);
                put_uuid(out, uuid);
                put_name(out, name);
            }
            Self::SetReadOnly { uuid } => {
                put_u8(out, T_READ_ONLY);
                put_uuid(out, uuid);
            }
            Self::Snapshot {
                origin,
                snapshot,
                name,
            } => {
                put_u8(out, T_SNAPSHOT);
                put_uuid(out, origin);
                put_uuid(out, snapshot);
                put_name(out, name);
            }
            Self::Detach { uuid, thick } => {
                put_u8(out, T_DETACH);
                put_uuid(out, uuid);
                put_u8(out, u8::from(*thick));
            }
            Self::Merge { snapshot, clone } => {
                put_u8(out, T_MERGE);
                put_uuid(out, snapshot);
                put_uuid(out, clone);
            }
        }
    }

    /// Decodes one operation.
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, LvolError> {
        let bool_of = |b: u8| match b {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(LvolError::corrupt("boolean field is not 0 or 1")),
        };
        Ok(match r.u8()? {
            T_CREATE => Self::Create(LvolRecord::decode(r)?),
            T_DELETE => Self::Delete { uuid: r.uuid()? },
            T_MAP => Self::Map {
                uuid: r.uuid()?,
                index: r.u32()?,
                cluster: r.u32()?,
            },
            T_RELEASE => Self::Release {
                uuid: r.uuid()?,
                start: r.u32()?,
                count: r.u32()?,
                zero: bool_of(r.u8()?)?,
            },
            T_RESIZE => Self::Resize {
                uuid: r.uuid()?,
                clusters: r.u32()?,
                added: get_entries(r)?,
            },
            T_RENAME => Self::Rename {
                uuid: r.uuid()?,
                name: r.name()?,
            },
            T_READ_ONLY => Self::SetReadOnly { uuid: r.uuid()? },
            T_SNAPSHOT => Self::Snapshot {
                origin: r.uuid()?,
                snapshot: r.uuid()?,
                name: r.name()?,
            },
            T_DETACH => Self::Detach {
                uuid: r.uuid()?,
                thick: bool_of(r.u8()?)?,
            },
            T_MERGE => Self::Merge {
                snapshot: r.uuid()?,
                clone: r.uuid()?,
            },
            t => {
                return Err(LvolError::corrupt(format!(
                    "unknown metadata operation {t}"
                )));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(op: &Op) {
        let mut out = Vec::new();
        op.encode(&mut out);
        let mut r = Reader::new(&out, "op");
        assert_eq!(&Op::decode(&mut r).unwrap(), op);
        assert!(r.is_empty());
        // Every truncation is an error, never a panic.
        for cut in 0..out.len() {
            let mut r = Reader::new(&out[..cut], "op");
            assert!(Op::decode(&mut r).is_err(), "cut at {cut} of {op:?}");
        }
    }

    #[test]
    fn every_op_roundtrips() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        let rec = LvolRecord {
            uuid: a,
            name: "vol".into(),
            flags: FLAG_THIN,
            clear: ClearMethod::WriteZeroes,
            parent: Some(b),
            entries: vec![0, 5, 6, 7, ZERO, ZERO, 0, 9, 3],
        };
        for op in [
            Op::Create(rec),
            Op::Delete { uuid: a },
            Op::Map {
                uuid: a,
                index: 3,
                cluster: 99,
            },
            Op::Release {
                uuid: a,
                start: 1,
                count: 2,
                zero: true,
            },
            Op::Resize {
                uuid: a,
                clusters: 4,
                added: vec![0, 0, 12, 13],
            },
            Op::Rename {
                uuid: a,
                name: "new".into(),
            },
            Op::SetReadOnly { uuid: a },
            Op::Snapshot {
                origin: a,
                snapshot: b,
                name: "snap".into(),
            },
            Op::Detach {
                uuid: a,
                thick: true,
            },
            Op::Merge {
                snapshot: b,
                clone: a,
            },
        ] {
            roundtrip(&op);
        }
    }

    #[test]
    fn sizes_match_the_encoding() {
        for entries in [
            vec![],
            vec![0, 5, 6, 7, ZERO, ZERO, 0, 9, 3],
            vec![ZERO; 5],
            vec![4, 3, 2],
        ] {
            assert_eq!(run_count(&entries), runs(&entries).len(), "{entries:?}");
            for parent in [None, Some(Uuid::from_u128(3))] {
                let rec = LvolRecord {
                    uuid: Uuid::from_u128(1),
                    name: "name".into(),
                    flags: 0,
                    clear: ClearMethod::Unmap,
                    parent,
                    entries: entries.clone(),
                };
                let mut out = Vec::new();
                rec.encode(&mut out);
                assert_eq!(
                    out.len(),
                    record_len(4, parent.is_some(), run_count(&entries))
                );
            }
        }
    }

    #[test]
    fn runs_compress_and_reject_bad_maps() {
        assert_eq!(
            runs(&[5, 6, 7, 0, ZERO, ZERO, 9, 8]),
            vec![(0, 5, 3), (4, ZERO, 2), (6, 9, 1), (7, 8, 1)]
        );
        // A run reaching past the map size.
        let mut out = Vec::new();
        put_u32(&mut out, 2);
        put_u32(&mut out, 1);
        for v in [1, 5, 2] {
            put_u32(&mut out, v);
        }
        assert!(get_entries(&mut Reader::new(&out, "m")).is_err());
        // Overlapping runs.
        let mut out = Vec::new();
        put_u32(&mut out, 4);
        put_u32(&mut out, 2);
        for v in [0, 5, 2, 1, 9, 2] {
            put_u32(&mut out, v);
        }
        assert!(get_entries(&mut Reader::new(&out, "m")).is_err());
        // A run wrapping into the ZERO marker.
        let mut out = Vec::new();
        put_u32(&mut out, 4);
        put_u32(&mut out, 1);
        for v in [0, u32::MAX - 1, 2] {
            put_u32(&mut out, v);
        }
        assert!(get_entries(&mut Reader::new(&out, "m")).is_err());
    }
}
