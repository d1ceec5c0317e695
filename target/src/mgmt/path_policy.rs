//! Which files and devices the management plane may open.
//!
//! `bdev_aio_create` opens whatever path it is given, with the target's privileges (often
//! root): a client could export `/etc/shadow`, or the root file system's device, as a
//! namespace. Paths are therefore confined to the data directory and to the files, devices and
//! directories the operator lists with `--allow-path` (`LAMINA_ALLOW_PATHS`, comma-separated),
//! e.g. `--allow-path /dev/nvme1n1` or `--allow-path /srv/lamina`. A path is checked after
//! resolving symbolic links and `..`, so a link cannot lead outside what was allowed.

use std::path::{Path, PathBuf};

/// The directories and files RPCs may open.
#[derive(Debug, Clone, Default)]
pub struct PathPolicy {
    allowed: Vec<PathBuf>,
}

impl PathPolicy {
    /// A policy allowing `roots` (directories: everything under them; files and devices:
    /// exactly them). Roots that do not exist are kept as given (they may appear later).
    pub fn new(roots: impl IntoIterator<Item = PathBuf>) -> Self {
        let allowed = roots
            .into_iter()
            .map(|r| std::fs::canonicalize(&r).unwrap_or(r))
            .collect();
        Self { allowed }
    }

    /// What is allowed, for messages and `framework_get_config`-like listings.
    pub fn allowed(&self) -> &[PathBuf] {
        &self.allowed
    }

    /// The resolved path if `path` may be opened, or why not.
    pub fn check(&self, path: &Path) -> Result<PathBuf, String> {
        let resolved = resolve(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if self.allowed.iter().any(|root| resolved.starts_with(root)) {
            return Ok(resolved);
        }
        let list: Vec<String> = self
            .allowed
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        Err(format!(
            "{} is outside the paths the target may open ({}); start lamina serve with \
             --allow-path to widen them",
            resolved.display(),
            list.join(", ")
        ))
    }
}

/// `path` with links and `..` resolved; a missing file is resolved through its directory.
fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    match std::fs::canonicalize(path) {
        Ok(p) => Ok(p),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let name = path.file_name().ok_or(e)?;
            let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
            let dir = std::fs::canonicalize(parent.unwrap_or(Path::new(".")))?;
            Ok(dir.join(name))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allowed_roots_and_no_way_out_through_links() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let p = PathPolicy::new([data.clone()]);
        assert!(
            p.check(&data.join("lvs0.img")).is_ok(),
            "a file to be created"
        );
        assert!(p.check(&data.join("../data/x.img")).is_ok());
        let err = p.check(Path::new("/etc/shadow")).unwrap_err();
        assert!(err.contains("--allow-path"), "{err}");
        std::os::unix::fs::symlink("/etc/shadow", data.join("innocent.img")).unwrap();
        assert!(
            p.check(&data.join("innocent.img")).is_err(),
            "a link out is refused"
        );
        assert!(p.check(&data.join("../elsewhere.img")).is_err());
        let exact = PathPolicy::new([PathBuf::from("/dev/null")]);
        assert!(exact.check(Path::new("/dev/null")).is_ok());
        assert!(exact.check(Path::new("/dev/zero")).is_err());
    }
}
