//! Small public value types shared by the store, the lvol handles and the on-disk records.

use std::fmt;
use std::str::FromStr;

use crate::error::LvolError;

/// How clusters are cleared when they are released (lvol delete, shrink, lvstore create).
/// Clearing is about the device's own space (SSD unmap, sparse files), not about security:
/// a cluster handed to an lvol is always filled first, so released data never leaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ClearMethod {
    /// Leave the data as it is.
    None,
    /// Deallocate (discard / punch a hole).
    #[default]
    Unmap,
    /// Write zeros.
    WriteZeroes,
}

impl ClearMethod {
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Unmap => 1,
            Self::WriteZeroes => 2,
        }
    }

    pub(crate) fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Self::None),
            1 => Some(Self::Unmap),
            2 => Some(Self::WriteZeroes),
            _ => None,
        }
    }

    /// SPDK's spelling: `none`, `unmap`, `write_zeroes`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Unmap => "unmap",
            Self::WriteZeroes => "write_zeroes",
        }
    }
}

impl fmt::Display for ClearMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ClearMethod {
    type Err = LvolError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Self::None),
            "unmap" => Ok(Self::Unmap),
            "write_zeroes" => Ok(Self::WriteZeroes),
            other => Err(LvolError::invalid(format!(
                "clear method {other:?}: use none, unmap or write_zeroes"
            ))),
        }
    }
}

/// Longest lvstore or lvol name in bytes (SPDK's limit: 63 plus the NUL).
pub const MAX_NAME_BYTES: usize = 63;

/// Checks an lvstore or lvol name: 1..=63 bytes of printable characters without `/`.
pub(crate) fn check_name(kind: &str, name: &str) -> Result<(), LvolError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(LvolError::invalid(format!(
            "{kind} name {name:?} must be 1 to {MAX_NAME_BYTES} bytes"
        )));
    }
    if name.contains('/') || name.chars().any(char::is_control) {
        return Err(LvolError::invalid(format!(
            "{kind} name {name:?} must not contain '/' or control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clear_method_roundtrips() {
        for m in [
            ClearMethod::None,
            ClearMethod::Unmap,
            ClearMethod::WriteZeroes,
        ] {
            assert_eq!(ClearMethod::from_byte(m.to_byte()), Some(m));
            assert_eq!(m.as_str().parse::<ClearMethod>().unwrap(), m);
        }
        assert!(ClearMethod::from_byte(9).is_none());
        assert!("zap".parse::<ClearMethod>().is_err());
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("lvol", "vol-1").is_ok());
        assert!(check_name("lvol", "").is_err());
        assert!(check_name("lvol", "a/b").is_err());
        assert!(check_name("lvol", &"x".repeat(64)).is_err());
        assert!(check_name("lvol", "tab\there").is_err());
    }
}
