//! Little-endian primitives for metadata: a bounds-checked [`Reader`] that reports truncation
//! as corruption instead of panicking, and `put_*` helpers over `Vec<u8>`.

use uuid::Uuid;

use crate::error::LvolError;

/// Reads little-endian fields from a byte slice.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`; `what` names the structure in corruption messages.
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, what }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], LvolError> {
        if self.buf.len() < n {
            return Err(LvolError::corrupt(format!("{} is truncated", self.what)));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], LvolError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, LvolError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, LvolError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, LvolError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub(crate) fn uuid(&mut self) -> Result<Uuid, LvolError> {
        Ok(Uuid::from_bytes(self.array()?))
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], LvolError> {
        self.take(n)
    }

    /// A `u8` length then that many bytes of UTF-8.
    pub(crate) fn name(&mut self) -> Result<String, LvolError> {
        let n = usize::from(self.u8()?);
        let raw = self.take(n)?;
        String::from_utf8(raw.to_vec()).map_err(|_| {
            LvolError::corrupt(format!("{} holds a name that is not UTF-8", self.what))
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

pub(crate) fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}

pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_uuid(out: &mut Vec<u8>, v: &Uuid) {
    out.extend_from_slice(v.as_bytes());
}

/// A `u8` length then the bytes; names are checked to be at most 63 bytes before they get here.
pub(crate) fn put_name(out: &mut Vec<u8>, name: &str) {
    let bytes = name.as_bytes();
    let n = u8::try_from(bytes.len()).unwrap_or(u8::MAX);
    out.push(n);
    out.extend_from_slice(bytes.get(..usize::from(n)).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_truncation() {
        let mut v = Vec::new();
        put_u8(&mut v, 1);
        put_u32(&mut v, 3);
        put_u64(&mut v, 4);
        let id = Uuid::from_u128(5);
        put_uuid(&mut v, &id);
        put_name(&mut v, "abc");
        let mut r = Reader::new(&v, "test");
        assert_eq!(r.u8().unwrap(), 1);
        assert_eq!(r.u32().unwrap(), 3);
        assert_eq!(r.u64().unwrap(), 4);
        assert_eq!(r.uuid().unwrap(), id);
        assert_eq!(r.name().unwrap(), "abc");
        assert!(r.is_empty());
        assert!(matches!(r.u8(), Err(LvolError::Corrupt(_))));
        let bad = [2u8, 0xff, 0xfe];
        assert!(Reader::new(&bad, "t").name().is_err());
    }
}
