//! Text fields: NVMe Qualified Names in NUL-padded 256-byte fields, and the space-padded ASCII
//! of Identify's SN, MN and FR.

use crate::wire::{Reader, StructDecodeError, Writer};

//~ NVMe Base 2.0 (NVMe Qualified Names): an NQN is UTF-8, at most 223 bytes, NUL
//~ terminated in a 256-byte field; it starts with "nqn.".
/// Size of an NQN field (SUBNQN, HOSTNQN).
pub const NQN_FIELD_LEN: usize = 256;
/// Longest NQN in bytes.
pub const NQN_MAX_LEN: usize = 223;
/// The well-known NQN of a discovery controller.
pub const DISCOVERY_NQN: &str = "nqn.2014-08.org.nvmexpress.discovery";

/// Why a string is not a valid NQN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NqnError {
    /// Longer than 223 bytes.
    #[error("NQN of {0} bytes exceeds 223")]
    TooLong(usize),
    /// Does not start with "nqn.".
    #[error("NQN does not start with \"nqn.\"")]
    BadPrefix,
    /// Contains a NUL byte or is not UTF-8.
    #[error("NQN is not NUL-free UTF-8")]
    BadText,
}

/// An NVMe Qualified Name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nqn(String);

impl Nqn {
    /// Validates `s` as an NQN.
    pub fn new(s: impl Into<String>) -> Result<Self, NqnError> {
        let s = s.into();
        if s.len() > NQN_MAX_LEN {
            return Err(NqnError::TooLong(s.len()));
        }
        if s.contains('\0') {
            return Err(NqnError::BadText);
        }
        if !s.starts_with("nqn.") {
            return Err(NqnError::BadPrefix);
        }
        Ok(Self(s))
    }

    /// The empty NQN: what SPDK's `spdk_nvme_perf` sends as its HOSTNQN by default. Only a
    /// Connect's HOSTNQN may be empty (see [`crate::fabrics::ConnectData`]).
    pub fn empty() -> Self {
        Self(String::new())
    }

    /// Whether this is the empty NQN.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The discovery NQN.
    pub fn discovery() -> Self {
        Self(DISCOVERY_NQN.to_owned())
    }

    /// Whether this is the well-known discovery NQN.
    pub fn is_discovery(&self) -> bool {
        self.0 == DISCOVERY_NQN
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 256-byte NUL-padded field.
    pub fn to_field(&self) -> [u8; NQN_FIELD_LEN] {
        let mut out = [0u8; NQN_FIELD_LEN];
        let mut w = Writer::over(&mut out);
        w.bytes(0, self.0.as_bytes());
        out
    }

    /// Parses a NUL-padded NQN field of `structure` at `offset`; `field` names it in errors.
    pub(crate) fn read(
        r: &Reader<'_>,
        offset: usize,
        field: &'static str,
    ) -> Result<Self, StructDecodeError> {
        let raw = r.slice(offset, NQN_FIELD_LEN)?;
        let text = until_nul(raw);
        let s = core::str::from_utf8(text).map_err(|_| r.invalid(field, offset))?;
        Self::new(s).map_err(|_| r.invalid(field, offset))
    }

    /// Reads an NQN field that may be all zeros (the empty NQN).
    pub(crate) fn read_or_empty(
        r: &Reader<'_>,
        offset: usize,
        field: &'static str,
    ) -> Result<Self, StructDecodeError> {
        let raw = r.slice(offset, NQN_FIELD_LEN)?;
        if until_nul(raw).is_empty() {
            return Ok(Self::empty());
        }
        Self::read(r, offset, field)
    }
}

impl core::fmt::Display for Nqn {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl core::str::FromStr for Nqn {
    type Err = NqnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// The bytes before the first NUL.
pub(crate) fn until_nul(raw: &[u8]) -> &[u8] {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    raw.get(..end).unwrap_or_default()
}

//~ NVMe Base 2.0, Identify Controller SN/MN/FR: ASCII, left justified, padded with spaces (20h).
/// Writes `s` left-justified and space padded into a `len`-byte field, truncating to the field
/// and writing `?` for anything but printable ASCII.
pub(crate) fn put_space_padded(w: &mut Writer<'_>, offset: usize, len: usize, s: &str) {
    let mut field = vec![b' '; len];
    for (dst, c) in field.iter_mut().zip(s.chars()) {
        *dst = printable(c);
    }
    w.bytes(offset, &field);
}

fn printable(c: char) -> u8 {
    u8::try_from(c)
        .ok()
        .filter(|b| (0x20..0x7f).contains(b))
        .unwrap_or(b'?')
}

/// Reads a space-padded ASCII field, dropping the padding (and any NULs a sloppy peer used).
/// Bytes that are not printable ASCII read as `?`, so the text keeps the field's width and
/// re-encodes to the same bytes.
pub(crate) fn read_space_padded(
    r: &Reader<'_>,
    offset: usize,
    len: usize,
) -> Result<String, StructDecodeError> {
    let raw = r.slice(offset, len)?;
    let end = raw
        .iter()
        .rposition(|&b| b != b' ' && b != 0)
        .map_or(0, |i| i + 1);
    Ok(raw
        .get(..end)
        .unwrap_or_default()
        .iter()
        .map(|&b| char::from(printable(char::from(b))))
        .collect())
}

/// `s` as an `N`-byte space-padded ASCII field (SN, MN, FR, TRSVCID, TRADDR).
pub fn space_padded<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    put_space_padded(&mut Writer::over(&mut out), 0, N, s);
    out
}

/// The text of a space-padded ASCII field, without the padding.
pub fn from_space_padded(raw: &[u8]) -> String {
    Reader::new(raw, "text field", 0)
        .and_then(|r| read_space_padded(&r, 0, raw.len()))
        .unwrap_or_default()
}

/// `s` as an `N`-byte NUL-padded field, truncated to `N` bytes.
pub fn nul_padded<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    for (dst, src) in out.iter_mut().zip(s.bytes()) {
        *dst = src;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nqn_rules() {
        assert!(Nqn::new(DISCOVERY_NQN).unwrap().is_discovery());
        assert_eq!(Nqn::new("iqn.x"), Err(NqnError::BadPrefix));
        assert_eq!(
            Nqn::new(format!("nqn.{}", "a".repeat(220))),
            Err(NqnError::TooLong(224))
        );
        let f = Nqn::discovery().to_field();
        assert_eq!(&f[..DISCOVERY_NQN.len()], DISCOVERY_NQN.as_bytes());
        assert!(f[DISCOVERY_NQN.len()..].iter().all(|&b| b == 0));
        let r = Reader::new(&f, "t", NQN_FIELD_LEN).unwrap();
        assert_eq!(Nqn::read(&r, 0, "NQN").unwrap(), Nqn::discovery());
    }

    #[test]
    fn public_field_helpers() {
        assert_eq!(&space_padded::<6>("4420"), b"4420  ");
        assert_eq!(from_space_padded(b"4420  "), "4420");
        assert_eq!(&nul_padded::<6>("nqn.x"), b"nqn.x\0");
    }

    #[test]
    fn space_padding() {
        let mut buf = [0u8; 8];
        put_space_padded(&mut Writer::over(&mut buf), 0, 8, "ab");
        assert_eq!(&buf, b"ab      ");
        let r = Reader::new(&buf, "t", 8).unwrap();
        assert_eq!(read_space_padded(&r, 0, 8).unwrap(), "ab");
        let odd = *b"a\0\xffb  \0 ";
        let r = Reader::new(&odd, "t", 8).unwrap();
        assert_eq!(read_space_padded(&r, 0, 8).unwrap(), "a??b");
    }
}
