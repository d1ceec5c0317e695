//! Framing of the JSON-RPC byte stream, as SPDK's server does it.
//!
//! A client writes a stream of JSON values with no delimiter required between them (SPDK's
//! `rpc.py` writes one object and waits; other clients pipeline several, separated by
//! whitespace or not at all). [`JsonStream`] accumulates bytes and hands out each complete
//! value; a partial value waits for more bytes, up to a size limit, so a client can neither make
//! the server buffer without bound nor wedge it with garbage: malformed JSON is a parse error
//! after which the connection cannot be resynchronised and is closed.

use bytes::{Buf, BytesMut};
use serde_json::Value;

/// Why the stream cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum FramingError {
    /// The bytes are not JSON.
    #[error("malformed JSON: {0}")]
    Malformed(String),
    /// A single request grew past the limit.
    #[error("request larger than {limit} bytes")]
    TooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
}

/// Splits a byte stream into JSON values.
#[derive(Debug)]
pub struct JsonStream {
    buf: BytesMut,
    max_request_bytes: usize,
}

impl JsonStream {
    /// A stream that refuses any single request larger than `max_request_bytes`.
    pub fn new(max_request_bytes: usize) -> Self {
        Self {
            buf: BytesMut::with_capacity(4096),
            max_request_bytes,
        }
    }

    /// The buffer to read socket bytes into.
    pub fn buffer(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Whether bytes of an unfinished value are buffered (ignoring whitespace).
    pub fn has_partial(&self) -> bool {
        self.buf.iter().any(|b| !b.is_ascii_whitespace())
    }

    /// The next complete value, `Ok(None)` if more bytes are needed.
    pub fn next_value(&mut self) -> Result<Option<Value>, FramingError> {
        let skip = self
            .buf
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
        self.buf.advance(skip);
        if self.buf.is_empty() {
            return Ok(None);
        }
        let mut values = serde_json::Deserializer::from_slice(&self.buf).into_iter::<Value>();
        match values.next() {
            Some(Ok(value)) => {
                let used = values.byte_offset();
                self.buf.advance(used);
                Ok(Some(value))
            }
            Some(Err(e)) if e.is_eof() => {
                if self.buf.len() > self.max_request_bytes {
                    Err(FramingError::TooLarge {
                        limit: self.max_request_bytes,
                    })
                } else {
                    Ok(None)
                }
            }
            Some(Err(e)) => Err(FramingError::Malformed(e.to_string())),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn feed(s: &mut JsonStream, bytes: &[u8]) {
        s.buffer().extend_from_slice(bytes);
    }

    #[test]
    fn splits_back_to_back_values() {
        let mut s = JsonStream::new(1024);
        feed(&mut s, br#"{"a":1}{"b":2} [3]"#);
        assert_eq!(s.next_value().unwrap(), Some(json!({"a":1})));
        assert_eq!(s.next_value().unwrap(), Some(json!({"b":2})));
        assert_eq!(s.next_value().unwrap(), Some(json!([3])));
        assert_eq!(s.next_value().unwrap(), None);
        assert!(!s.has_partial());
    }

    #[test]
    fn waits_for_partial_value_byte_by_byte() {
        let mut s = JsonStream::new(1024);
        let text = br#"{"jsonrpc":"2.0","method":"m","id":7}"#;
        for (i, b) in text.iter().enumerate() {
            feed(&mut s, &[*b]);
            let v = s.next_value().unwrap();
            if i + 1 < text.len() {
                assert_eq!(v, None, "value emitted early at byte {i}");
            } else {
                assert_eq!(v.unwrap()["id"], json!(7));
            }
        }
    }

    #[test]
    fn malformed_is_an_error() {
        let mut s = JsonStream::new(1024);
        feed(&mut s, b"{\"a\": nope}");
        assert!(matches!(s.next_value(), Err(FramingError::Malformed(_))));
    }

    #[test]
    fn oversized_partial_is_refused() {
        let mut s = JsonStream::new(16);
        feed(&mut s, br#"{"a":"0123456789012345678901234567890"#);
        assert!(matches!(
            s.next_value(),
            Err(FramingError::TooLarge { limit: 16 })
        ));
    }
}
