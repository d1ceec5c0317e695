//! The keyring: named keys kept in files, as SPDK's `keyring_file` module keeps them. A key is
//! added with a name and an absolute path; the file must belong to this process's user and be
//! unreadable by group and others (SPDK's rules), and must hold one key in an NVMe interchange
//! format ([`interchange`]), checked when it is added. The keyring holds names and paths, never
//! the secrets: a user of a key reads the file when it needs the key ([`Key::secret`]), so an
//! operator rotates a key by rewriting its file, and the configuration persisted to disk names
//! files, not secrets.
//!
//! Users hold a key by its `Arc`; removing it from the keyring takes its name away for new
//! users while existing ones keep it until they let go (`keyring_get_keys` shows `refcnt`, as
//! SPDK does).

pub mod interchange;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

use interchange::{FormatError, KeyKind, Secret};

/// The largest key file read (an interchange-format key is under 100 bytes).
const MAX_KEY_FILE: u64 = 4096;

/// Why a key could not be added or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The name is taken.
    #[error("key {0} already exists")]
    Exists(String),
    /// No key of that name.
    #[error("key {0} not found")]
    NotFound(String),
    /// SPDK's rules for key files refuse this one.
    #[error("key file {path}: {why}")]
    NotAllowed { path: PathBuf, why: String },
    /// The file could not be read.
    #[error("key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file does not hold a valid key.
    #[error("key file {path}: {source}")]
    Format { path: PathBuf, source: FormatError },
}

impl KeyError {
    /// The errno SPDK answers with for this error.
    pub fn errno(&self) -> i32 {
        match self {
            Self::Exists(_) => libc::EEXIST,
            Self::NotFound(_) => libc::ENOENT,
            Self::NotAllowed { .. } => libc::EPERM,
            Self::Io { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
            Self::Format { .. } => libc::EINVAL,
        }
    }
}

/// One named key in a file.
#[derive(Debug)]
pub struct Key {
    name: String,
    path: PathBuf,
    kind: KeyKind,
}

impl Key {
    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file that holds it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the file held when the key was added.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// Reads the key from its file now (checked as when it was added: a file rewritten with
    /// a bad key or loose permissions fails here, naming the problem).
    pub fn secret(&self) -> Result<Secret, KeyError> {
        read_key(&self.path)
    }
}

/// Checks `path` as SPDK's `keyring_file` does and reads the key in it.
fn read_key(path: &Path) -> Result<Secret, KeyError> {
    let not_allowed = |why: String| KeyError::NotAllowed {
        path: path.to_owned(),
        why,
    };
    if !path.is_absolute() {
        return Err(not_allowed("the path must be absolute".into()));
    }
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    // Checked on the open file, so a rename between the check and the read cannot swap it.
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(not_allowed("not a regular file".into()));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(not_allowed(format!(
            "permissions 0{mode:o} let group or others read it; required: 0{:o} (chmod go-rwx)",
            mode & !0o077
        )));
    }
    let uid = rustix::process::getuid().as_raw();
    if meta.uid() != uid {
        return Err(not_allowed(format!(
            "owned by uid {}, must be owned by this process's uid {uid}",
            meta.uid()
        )));
    }
    if meta.len() > MAX_KEY_FILE {
        return Err(not_allowed(format!(
            "{} bytes: larger than any key ({MAX_KEY_FILE} bytes at most)",
            meta.len()
        )));
    }
    let mut text = zeroize::Zeroizing::new(String::new());
    file.take(MAX_KEY_FILE)
        .read_to_string(&mut text)
        .map_err(io)?;
    interchange::parse(&text).map_err(|source| KeyError::Format {
        path: path.to_owned(),
        source,
    })
}

/// The named keys of this target.
#[derive(Debug, Default)]
pub struct Keyring {
    keys: RwLock<BTreeMap<String, Arc<Key>>>,
    /// Keys removed while users held them, until the last one lets go (SPDK lists them with
    /// `removed: true`).
    removed: parking_lot::Mutex<Vec<std::sync::Weak<Key>>>,
}

impl Keyring {
    /// Adds key `name` from the file at `path`, checked and read now.
    pub fn add_file(&self, name: &str, path: &Path) -> Result<Arc<Key>, KeyError> {
        if self.keys.read().contains_key(name) {
            return Err(KeyError::Exists(name.to_owned()));
        }
        let secret = read_key(path)?;
        let key = Arc::new(Key {
            name: name.to_owned(),
            path: path.to_owned(),
            kind: secret.kind(),
        });
        let mut keys = self.keys.write();
        if keys.contains_key(name) {
            return Err(KeyError::Exists(name.to_owned()));
        }
        keys.insert(name.to_owned(), Arc::clone(&key));
        Ok(key)
    }

    /// Removes key `name`; users holding it keep it until they let go.
    pub fn remove(&self, name: &str) -> Result<(), KeyError> {
        let key = self
            .keys
            .write()
            .remove(name)
            .ok_or_else(|| KeyError::NotFound(name.to_owned()))?;
        let mut removed = self.removed.lock();
        removed.retain(|k| k.strong_count() > 0);
        removed.push(Arc::downgrade(&key));
        Ok(())
    }

    /// Keys removed from the keyring that users still hold.
    pub fn removed_in_use(&self) -> Vec<Arc<Key>> {
        let mut removed = self.removed.lock();
        removed.retain(|k| k.strong_count() > 0);
        removed
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .collect()
    }

    /// Key `name`, for a new user.
    pub fn get(&self, name: &str) -> Result<Arc<Key>, KeyError> {
        self.keys
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| KeyError::NotFound(name.to_owned()))
    }

    /// Every key, by name.
    pub fn list(&self) -> Vec<Arc<Key>> {
        self.keys.read().values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    const KEY: &str = "NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:\n";

    fn key_file(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn files_are_checked_as_spdk_checks_them() {
        let dir = tempfile::tempdir().unwrap();
        let ring = Keyring::default();
        let open = key_file(dir.path(), "open", KEY, 0o644);
        let err = ring.add_file("k", &open).unwrap_err();
        assert_eq!(err.errno(), libc::EPERM);
        assert!(
            err.to_string().contains("0644") && err.to_string().contains("0600"),
            "{err}"
        );
        let err = ring.add_file("k", Path::new("relative/key")).unwrap_err();
        assert!(err.to_string().contains("absolute"), "{err}");
        let err = ring.add_file("k", &dir.path().join("missing")).unwrap_err();
        assert_eq!(err.errno(), libc::ENOENT);
        let bad = key_file(dir.path(), "bad", "DHHC-1:00:abcd:", 0o600);
        let err = ring.add_file("k", &bad).unwrap_err();
        assert_eq!(err.errno(), libc::EINVAL);
        assert!(ring.list().is_empty());
    }

    #[test]
    fn keys_are_added_listed_read_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let ring = Keyring::default();
        let p = key_file(dir.path(), "k0", KEY, 0o600);
        let k = ring.add_file("k0", &p).unwrap();
        assert_eq!(k.kind(), KeyKind::TlsPsk { hash: 1 });
        assert_eq!(ring.add_file("k0", &p).unwrap_err().errno(), libc::EEXIST);
        assert_eq!(ring.list().len(), 1);
        assert_eq!(k.secret().unwrap().bytes().len(), 32);
        // A rewritten file is what the next use reads.
        std::fs::write(&p, "garbage").unwrap();
        assert_eq!(k.secret().unwrap_err().errno(), libc::EINVAL);
        ring.remove("k0").unwrap();
        assert_eq!(ring.remove("k0").unwrap_err().errno(), libc::ENOENT);
        assert!(ring.get("k0").is_err());
        assert_eq!(k.name(), "k0", "a holder keeps its key after removal");
        assert_eq!(ring.removed_in_use()[0].name(), "k0");
        drop(k);
        assert!(ring.removed_in_use().is_empty(), "gone with its last user");
    }
}
