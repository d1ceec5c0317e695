//! Base block devices by name: the subset of SPDK's bdev layer Lamina offers.
//!
//! A bdev is a named [`Device`]: `malloc` (memory), `aio` (a file or block device) or `null`
//! (reads zeros, discards writes; for benchmarks). A bdev is *claimed* by at most one user, an
//! lvstore built on it or a namespace exporting it raw, and a claimed bdev cannot be deleted or
//! claimed again, as in SPDK. The registry hands out `Arc<Bdev>` handles, never map references.

use std::path::PathBuf;
use std::sync::Arc;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use lamina_lvol::device::{BlockDevice, Device};
use parking_lot::Mutex;
use uuid::Uuid;

/// What kind of bdev this is, with what created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BdevKind {
    /// Memory (`bdev_malloc_create`).
    Malloc,
    /// A file or block device (`bdev_aio_create`).
    Aio {
        /// The file or device path.
        filename: PathBuf,
    },
    /// Reads zeros, discards writes (`bdev_null_create`).
    Null,
}

impl BdevKind {
    /// SPDK's `product_name` for this kind.
    pub fn product_name(&self) -> &'static str {
        match self {
            Self::Malloc => "Malloc disk",
            Self::Aio { .. } => "AIO disk",
            Self::Null => "Null disk",
        }
    }
}

/// Who holds a bdev.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// An lvstore lives on it.
    Lvstore,
    /// It is exported raw as a namespace of this subsystem.
    Namespace {
        /// The subsystem NQN.
        nqn: String,
        /// The namespace ID.
        nsid: u32,
    },
}

impl std::fmt::Display for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Lvstore => f.write_str("an lvstore"),
            Self::Namespace { nqn, nsid } => write!(f, "namespace {nsid} of {nqn}"),
        }
    }
}

/// A named base device.
#[derive(Debug)]
pub struct Bdev {
    name: String,
    uuid: Uuid,
    kind: BdevKind,
    device: Device,
    claim: Mutex<Option<Claim>>,
    /// Why the lvstore found on it did not load (examine), if it did not.
    lvstore_error: Mutex<Option<String>>,
}

impl Bdev {
    /// The bdev's unique name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bdev's UUID.
    pub fn uuid(&self) -> Uuid {
        self.uuid
    }

    /// What kind of bdev it is.
    pub fn kind(&self) -> &BdevKind {
        &self.kind
    }

    /// The device behind it.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Block size in bytes.
    pub fn block_size(&self) -> u32 {
        self.device.block_size()
    }

    /// Size in blocks.
    pub fn num_blocks(&self) -> u64 {
        self.device.size_bytes() / u64::from(self.device.block_size().max(1))
    }

    /// Who holds it, if anyone.
    pub fn claim(&self) -> Option<Claim> {
        self.claim.lock().clone()
    }

    /// Claims the bdev for `by`; `Err` names the current holder.
    pub fn try_claim(&self, by: Claim) -> Result<(), Claim> {
        let mut c = self.claim.lock();
        if let Some(holder) = &*c {
            return Err(holder.clone());
        }
        *c = Some(by);
        Ok(())
    }

    /// Releases the claim.
    pub fn release(&self) {
        *self.claim.lock() = None;
    }

    /// Why the lvstore on this bdev did not load, when examine found one it could not load
    /// (`None`: loaded, or no lvstore there).
    pub fn lvstore_error(&self) -> Option<String> {
        self.lvstore_error.lock().clone()
    }

    /// Records why examine could not load the lvstore on this bdev.
    pub fn set_lvstore_error(&self, why: Option<String>) {
        *self.lvstore_error.lock() = why;
    }
}

/// Why a bdev operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BdevError {
    /// No bdev of that name.
    #[error("bdev '{0}' not found: bdev_get_bdevs lists them")]
    NotFound(String),
    /// The name is taken.
    #[error("bdev '{0}' already exists: pick another name")]
    Exists(String),
    /// The bdev is claimed.
    #[error("bdev '{name}' is in use by {holder}: remove that first")]
    Claimed {
        /// The bdev.
        name: String,
        /// Who holds it.
        holder: Claim,
    },
    /// The name is unusable.
    #[error("invalid bdev name '{0}': use 1 to 255 bytes without '/' or control characters")]
    BadName(String),
}

/// Every bdev, by name.
#[derive(Debug, Default)]
pub struct Bdevs {
    map: DashMap<String, Arc<Bdev>>,
}

impl Bdevs {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `device` under `name`.
    pub fn insert(
        &self,
        name: &str,
        uuid: Option<Uuid>,
        kind: BdevKind,
        device: Device,
    ) -> Result<Arc<Bdev>, BdevError> {
        check_name(name)?;
        match self.map.entry(name.to_owned()) {
            Entry::Occupied(_) => Err(BdevError::Exists(name.to_owned())),
            Entry::Vacant(v) => {
                let bdev = Arc::new(Bdev {
                    name: name.to_owned(),
                    uuid: uuid.unwrap_or_else(Uuid::new_v4),
                    kind,
                    device,
                    claim: Mutex::new(None),
                    lvstore_error: Mutex::new(None),
                });
                v.insert(bdev.clone());
                Ok(bdev)
            }
        }
    }

    /// Whether `name` is taken.
    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// The bdev called `name`.
    pub fn get(&self, name: &str) -> Result<Arc<Bdev>, BdevError> {
        self.map
            .get(name)
            .map(|r| r.value().clone())
            .ok_or_else(|| BdevError::NotFound(name.to_owned()))
    }

    /// Removes an unclaimed bdev and returns it.
    pub fn remove(&self, name: &str) -> Result<Arc<Bdev>, BdevError> {
        let mut holder = None;
        let removed = self.map.remove_if(name, |_, b| match b.claim() {
            Some(c) => {
                holder = Some(c);
                false
            }
            None => true,
        });
        match (removed, holder) {
            (Some((_, b)), _) => Ok(b),
            (None, Some(holder)) => Err(BdevError::Claimed {
                name: name.to_owned(),
                holder,
            }),
            (None, None) => Err(BdevError::NotFound(name.to_owned())),
        }
    }

    /// A snapshot of every bdev, sorted by name.
    pub fn list(&self) -> Vec<Arc<Bdev>> {
        let mut v: Vec<Arc<Bdev>> = self.map.iter().map(|r| r.value().clone()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }
}

fn check_name(name: &str) -> Result<(), BdevError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && !name.contains('/')
        && !name.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(BdevError::BadName(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lamina_lvol::device::RamDevice;

    fn ram() -> Device {
        RamDevice::new(1 << 20, 512).unwrap().into()
    }

    #[test]
    fn names_are_unique_and_checked() {
        let b = Bdevs::new();
        b.insert("Malloc0", None, BdevKind::Malloc, ram()).unwrap();
        assert_eq!(
            b.insert("Malloc0", None, BdevKind::Malloc, ram())
                .unwrap_err(),
            BdevError::Exists("Malloc0".into())
        );
        assert!(matches!(
            b.insert("a/b", None, BdevKind::Malloc, ram()),
            Err(BdevError::BadName(_))
        ));
        assert_eq!(b.get("Malloc0").unwrap().num_blocks(), 2048);
    }

    #[test]
    fn claimed_bdev_cannot_be_removed_or_claimed_twice() {
        let b = Bdevs::new();
        let d = b.insert("Malloc0", None, BdevKind::Malloc, ram()).unwrap();
        d.try_claim(Claim::Lvstore).unwrap();
        assert_eq!(
            d.try_claim(Claim::Namespace {
                nqn: "n".into(),
                nsid: 1
            }),
            Err(Claim::Lvstore)
        );
        assert!(matches!(
            b.remove("Malloc0"),
            Err(BdevError::Claimed { .. })
        ));
        d.release();
        b.remove("Malloc0").unwrap();
        assert_eq!(
            b.remove("Malloc0").unwrap_err(),
            BdevError::NotFound("Malloc0".into())
        );
    }
}
