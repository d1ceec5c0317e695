//! Little-endian field access for fixed wire layouts, and the error every NVMe structure decoder
//! returns.
//!
//! NVMe and NVMe/TCP are little-endian throughout. Decoders read fields at named byte offsets
//! through [`Reader`], which parses with nom's `complete` number parsers on a bounds-checked
//! sub-slice, so a short buffer is an error and never a panic. Encoders write into a zeroed
//! region of the caller's `BytesMut` through [`Writer`], which is how reserved fields end up as
//! zero on the wire.

use bytes::BytesMut;
use nom::number::complete::{le_u8, le_u16, le_u32, le_u64, le_u128};

/// Why an NVMe structure (SQE view, CQE, Identify data, log page, Connect data, ...) could not be
/// decoded from bytes.
///
/// These are command-level faults: the target turns them into a CQE status (usually Invalid Field
/// in Command or a data SGL length error) and the connection lives on. Transport faults use
/// [`crate::DecodeError`] instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StructDecodeError {
    /// The buffer is shorter than the structure's fixed layout.
    #[error("{structure}: need {needed} bytes, got {actual}")]
    Short {
        /// Structure being decoded.
        structure: &'static str,
        /// Bytes the layout requires.
        needed: usize,
        /// Bytes available.
        actual: usize,
    },
    /// A field holds a value the structure does not allow.
    #[error("{structure}: invalid {field} at byte {offset}")]
    InvalidField {
        /// Structure being decoded.
        structure: &'static str,
        /// Field name as the specification spells it.
        field: &'static str,
        /// Byte offset of the field inside the structure.
        offset: usize,
    },
    /// The SQE's opcode (or Fabrics command type) is not the one this view decodes.
    #[error("{structure}: wrong opcode {opcode:#04x}")]
    WrongOpcode {
        /// View that was asked for.
        structure: &'static str,
        /// Opcode (or FCTYPE) found.
        opcode: u8,
    },
}

type NomError<'a> = nom::error::Error<&'a [u8]>;

/// Bounds-checked little-endian reads at byte offsets of one structure.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    structure: &'static str,
}

impl<'a> Reader<'a> {
    /// Wraps `buf`, failing at once when it is shorter than the structure's `size`.
    pub(crate) fn new(
        buf: &'a [u8],
        structure: &'static str,
        size: usize,
    ) -> Result<Self, StructDecodeError> {
        if buf.len() < size {
            return Err(StructDecodeError::Short {
                structure,
                needed: size,
                actual: buf.len(),
            });
        }
        Ok(Self { buf, structure })
    }

    fn short(&self, needed: usize) -> StructDecodeError {
        StructDecodeError::Short {
            structure: self.structure,
            needed,
            actual: self.buf.len(),
        }
    }

    fn rest(&self, offset: usize) -> Result<&'a [u8], StructDecodeError> {
        self.buf.get(offset..).ok_or_else(|| self.short(offset))
    }

    pub(crate) fn u8(&self, offset: usize) -> Result<u8, StructDecodeError> {
        le_u8::<_, NomError<'a>>(self.rest(offset)?)
            .map(|(_, v)| v)
            .map_err(|_| self.short(offset + 1))
    }

    pub(crate) fn u16(&self, offset: usize) -> Result<u16, StructDecodeError> {
        le_u16::<_, NomError<'a>>(self.rest(offset)?)
            .map(|(_, v)| v)
            .map_err(|_| self.short(offset + 2))
    }

    pub(crate) fn u32(&self, offset: usize) -> Result<u32, StructDecodeError> {
        le_u32::<_, NomError<'a>>(self.rest(offset)?)
            .map(|(_, v)| v)
            .map_err(|_| self.short(offset + 4))
    }

    pub(crate) fn u64(&self, offset: usize) -> Result<u64, StructDecodeError> {
        le_u64::<_, NomError<'a>>(self.rest(offset)?)
            .map(|(_, v)| v)
            .map_err(|_| self.short(offset + 8))
    }

    pub(crate) fn u128(&self, offset: usize) -> Result<u128, StructDecodeError> {
        le_u128::<_, NomError<'a>>(self.rest(offset)?)
            .map(|(_, v)| v)
            .map_err(|_| self.short(offset + 16))
    }

    /// A fixed-size byte array (identifiers, NQN fields, reserved areas kept verbatim).
    pub(crate) fn array<const N: usize>(
        &self,
        offset: usize,
    ) -> Result<[u8; N], StructDecodeError> {
        let end = offset
            .checked_add(N)
            .ok_or_else(|| self.short(usize::MAX))?;
        self.buf
            .get(offset..end)
            .and_then(|s| <[u8; N]>::try_from(s).ok())
            .ok_or_else(|| self.short(end))
    }

    /// The bytes from `offset` for `len` bytes.
    pub(crate) fn slice(&self, offset: usize, len: usize) -> Result<&'a [u8], StructDecodeError> {
        let end = offset
            .checked_add(len)
            .ok_or_else(|| self.short(usize::MAX))?;
        self.buf.get(offset..end).ok_or_else(|| self.short(end))
    }

    pub(crate) fn invalid(&self, field: &'static str, offset: usize) -> StructDecodeError {
        StructDecodeError::InvalidField {
            structure: self.structure,
            field,
            offset,
        }
    }
}

/// Writes fields at byte offsets into a zeroed region appended to a `BytesMut`.
///
/// Offsets are the layout's named constants, never peer input, so an out-of-range write is a
/// bug in this crate: it is caught by a debug assertion and by the size tests, and is a no-op
/// in release builds rather than a panic on the I/O path.
#[derive(Debug)]
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
}

impl<'a> Writer<'a> {
    /// Appends `size` zero bytes to `dst` and returns a writer over them.
    pub(crate) fn append(dst: &'a mut BytesMut, size: usize) -> Self {
        let start = dst.len();
        dst.resize(start + size, 0);
        let buf = dst.get_mut(start..).unwrap_or_default();
        Self { buf }
    }

    /// Wraps an already sized region.
    pub(crate) fn over(buf: &'a mut [u8]) -> Self {
        Self { buf }
    }

    pub(crate) fn bytes(&mut self, offset: usize, value: &[u8]) {
        let end = offset.saturating_add(value.len());
        match self.buf.get_mut(offset..end) {
            Some(dst) => dst.copy_from_slice(value),
            None => debug_assert!(false, "write past layout end at {offset}"),
        }
    }

    pub(crate) fn u8(&mut self, offset: usize, value: u8) {
        self.bytes(offset, &[value]);
    }

    pub(crate) fn u16(&mut self, offset: usize, value: u16) {
        self.bytes(offset, &value.to_le_bytes());
    }

    pub(crate) fn u32(&mut self, offset: usize, value: u32) {
        self.bytes(offset, &value.to_le_bytes());
    }

    pub(crate) fn u64(&mut self, offset: usize, value: u64) {
        self.bytes(offset, &value.to_le_bytes());
    }

    pub(crate) fn u128(&mut self, offset: usize, value: u128) {
        self.bytes(offset, &value.to_le_bytes());
    }
}

/// Reads bit field `[shift, shift + width)` of `value`.
pub(crate) const fn bits32(value: u32, shift: u32, width: u32) -> u32 {
    (value >> shift) & ((1u32 << width) - 1)
}

/// Reads bit field `[shift, shift + width)` of `value`.
pub(crate) const fn bits64(value: u64, shift: u32, width: u32) -> u64 {
    (value >> shift) & ((1u64 << width) - 1)
}

/// Low byte of `v`.
pub(crate) const fn lo8(v: u32) -> u8 {
    v.to_le_bytes()[0]
}

/// Low 16 bits of `v`.
pub(crate) const fn lo16(v: u32) -> u16 {
    let [a, b, _, _] = v.to_le_bytes();
    u16::from_le_bytes([a, b])
}

/// High 16 bits of `v`.
pub(crate) const fn hi16(v: u32) -> u16 {
    let [_, _, a, b] = v.to_le_bytes();
    u16::from_le_bytes([a, b])
}

/// Low 32 bits of `v`.
pub(crate) const fn lo32(v: u64) -> u32 {
    let [b0, b1, b2, b3, ..] = v.to_le_bytes();
    u32::from_le_bytes([b0, b1, b2, b3])
}

/// High 32 bits of `v`.
pub(crate) const fn hi32(v: u64) -> u32 {
    let [_, _, _, _, b4, b5, b6, b7] = v.to_le_bytes();
    u32::from_le_bytes([b4, b5, b6, b7])
}

/// Declares an open newtype over an integer code space: named constants for the values the
/// specification defines, a `Debug` that prints the name of a known value, and lossless
/// conversions so that unknown values round-trip unchanged.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident($ty:ty) {
            $( $(#[$cmeta:meta])* $konst:ident = $value:literal ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        $vis struct $name(pub $ty);

        impl $name {
            $( $(#[$cmeta])* pub const $konst: Self = Self($value); )*

            /// The specification's name of this value, if it is one this crate knows.
            #[allow(unreachable_patterns)]
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some(stringify!($konst)), )*
                    _ => None,
                }
            }

            /// Whether the value is one of the named constants.
            pub const fn is_known(self) -> bool {
                self.name().is_some()
            }
        }

        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                match self.name() {
                    Some(name) => write!(f, "{}::{}", stringify!($name), name),
                    None => write!(f, "{}({:#x})", stringify!($name), self.0),
                }
            }
        }

        impl ::core::convert::From<$ty> for $name {
            fn from(value: $ty) -> Self {
                Self(value)
            }
        }

        impl ::core::convert::From<$name> for $ty {
            fn from(value: $name) -> Self {
                value.0
            }
        }
    };
}
pub(crate) use open_enum;

#[cfg(test)]
mod tests {
    use super::*;

    open_enum! {
        /// Test code space.
        pub struct Code(u8) {
            /// One.
            ONE = 1,
        }
    }

    #[test]
    fn open_enum_names_known_and_keeps_unknown() {
        assert_eq!(format!("{:?}", Code::ONE), "Code::ONE");
        assert_eq!(format!("{:?}", Code(0x7f)), "Code(0x7f)");
        assert_eq!(u8::from(Code::from(0x7f)), 0x7f);
        assert!(Code::ONE.is_known());
    }

    #[test]
    fn reader_rejects_short_input() {
        assert!(Reader::new(&[0; 3], "x", 4).is_err());
        let r = Reader::new(&[1, 0, 0, 0], "x", 4).unwrap();
        assert_eq!(r.u32(0).unwrap(), 1);
        assert!(r.u32(1).is_err());
        assert!(r.u64(usize::MAX).is_err());
        assert!(r.array::<2>(usize::MAX).is_err());
    }

    #[test]
    fn writer_writes_little_endian() {
        let mut b = BytesMut::new();
        let mut w = Writer::append(&mut b, 8);
        w.u32(0, 0x0403_0201);
        w.u16(4, 0x0605);
        assert_eq!(&b[..], &[1, 2, 3, 4, 5, 6, 0, 0]);
    }
}
