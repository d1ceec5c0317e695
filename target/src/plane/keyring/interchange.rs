//! The NVMe key interchange formats, parsed and checked: `NVMeTLSkey-1:HH:BASE64:` for TLS
//! pre-shared keys (NVMe/TCP, TP 8011: HH is the hash the PSK is derived with, `01` SHA-256 for a
//! 32-byte key, `02` SHA-384 for a 48-byte one, `00` for a configured PSK used as it is) and
//! `DHHC-1:HH:BASE64:` for DH-HMAC-CHAP secrets (NVMe Base 2.x: HH is the hash the secret is
//! transformed with, `00` none, `01`/`02`/`03` SHA-256/384/512; the secret is 32, 48 or 64
//! bytes). In both, BASE64 encodes the key followed by the CRC-32 (IEEE 802.3, as zlib's
//! `crc32`) of the key, least significant byte first. Every error names what is wrong and
//! never includes key material.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

/// What a key is for, with the hash its format names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A TLS PSK; `hash` is 0 (none), 1 (SHA-256) or 2 (SHA-384).
    TlsPsk { hash: u8 },
    /// A DH-HMAC-CHAP secret; `transform` is 0 (none), 1, 2 or 3 (SHA-256/384/512).
    Dhchap { transform: u8 },
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TlsPsk { hash } => write!(f, "TLS PSK (NVMeTLSkey-1, hash {hash:02})"),
            Self::Dhchap { transform } => {
                write!(f, "DH-HMAC-CHAP secret (DHHC-1, transform {transform:02})")
            }
        }
    }
}

/// A key read from its interchange form. The bytes are wiped when it is dropped and never
/// printed.
pub struct Secret {
    kind: KeyKind,
    key: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("kind", &self.kind)
            .field("len", &self.key.len())
            .finish_non_exhaustive()
    }
}

impl Secret {
    /// What the key is.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The key's bytes (without the CRC).
    pub fn bytes(&self) -> &[u8] {
        &self.key
    }
}

/// Why a key's text is not a valid interchange-format key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// Neither prefix.
    #[error("not an NVMe interchange-format key: it must start with NVMeTLSkey-1: or DHHC-1:")]
    UnknownFormat,
    /// Not `PREFIX:HH:BASE64:`.
    #[error("malformed {0} key: expected {0}:HH:BASE64: (two hex digits, base64, a final colon)")]
    Malformed(&'static str),
    /// A hash indicator the format does not define.
    #[error("{format} key: hash indicator {value} is not one of {allowed}")]
    Hash {
        format: &'static str,
        value: String,
        allowed: &'static str,
    },
    /// The base64 part does not decode.
    #[error("{0} key: the part after the hash indicator is not valid base64")]
    Base64(&'static str),
    /// The decoded key has a length the format does not allow.
    #[error("{format} key: {len} key bytes (after the 4-byte CRC), expected {allowed}")]
    Length {
        format: &'static str,
        len: usize,
        allowed: &'static str,
    },
    /// The CRC does not match: a typo or a truncated copy.
    #[error("{0} key: its CRC-32 does not match the key (mistyped or truncated?)")]
    Crc(&'static str),
}

const TLS: &str = "NVMeTLSkey-1";
const DHHC: &str = "DHHC-1";

/// Parses a key in either interchange format (surrounding whitespace, such as the newline at
/// the end of a key file, is ignored).
pub fn parse(text: &str) -> Result<Secret, FormatError> {
    let text = text.trim();
    let (format, rest) = if let Some(rest) = text.strip_prefix("NVMeTLSkey-1:") {
        (TLS, rest)
    } else if let Some(rest) = text.strip_prefix("DHHC-1:") {
        (DHHC, rest)
    } else {
        return Err(FormatError::UnknownFormat);
    };
    let (hash, rest) = rest.split_once(':').ok_or(FormatError::Malformed(format))?;
    let b64 = rest
        .strip_suffix(':')
        .ok_or(FormatError::Malformed(format))?;
    if hash.len() != 2 || b64.contains(':') {
        return Err(FormatError::Malformed(format));
    }
    let hash_err = || FormatError::Hash {
        format,
        value: hash.to_owned(),
        allowed: if format == TLS {
            "00, 01 (SHA-256), 02 (SHA-384)"
        } else {
            "00, 01 (SHA-256), 02 (SHA-384), 03 (SHA-512)"
        },
    };
    let h = u8::from_str_radix(hash, 16).map_err(|_| hash_err())?;
    let decoded = Zeroizing::new(
        STANDARD
            .decode(b64)
            .map_err(|_| FormatError::Base64(format))?,
    );
    let len = decoded.len().saturating_sub(4);
    let (kind, allowed): (KeyKind, &'static [usize]) = match (format, h) {
        (TLS, 0) => (KeyKind::TlsPsk { hash: 0 }, &[32, 48]),
        (TLS, 1) => (KeyKind::TlsPsk { hash: 1 }, &[32]),
        (TLS, 2) => (KeyKind::TlsPsk { hash: 2 }, &[48]),
        (DHHC, 0..=3) => (KeyKind::Dhchap { transform: h }, &[32, 48, 64]),
        _ => return Err(hash_err()),
    };
    if decoded.len() < 4 || !allowed.contains(&len) {
        return Err(FormatError::Length {
            format,
            len,
            allowed: match allowed {
                [32] => "32",
                [48] => "48",
                [32, 48] => "32 or 48",
                _ => "32, 48 or 64",
            },
        });
    }
    let (key, crc) = decoded.split_at(len);
    if crc32fast::hash(key).to_le_bytes()[..] != *crc {
        return Err(FormatError::Crc(format));
    }
    Ok(Secret {
        kind,
        key: Zeroizing::new(key.to_vec()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The configured PSK of libnvme's interchange-format test vectors (test/psk.c), and its
    /// 48-byte extension.
    const PSK32: [u8; 32] = [
        0x55, 0x12, 0xDB, 0xB6, 0x73, 0x7D, 0x01, 0x06, 0xF6, 0x59, 0x75, 0xB7, 0x73, 0xDF, 0xB0,
        0x11, 0xFF, 0xC3, 0x44, 0xBC, 0xF4, 0x42, 0xE2, 0xDD, 0x6D, 0x8B, 0xC4, 0x87, 0x0B, 0x5D,
        0x5B, 0x03,
    ];

    fn psk48() -> Vec<u8> {
        let mut k = PSK32.to_vec();
        k.extend_from_slice(&PSK32[16..]);
        k
    }

    #[test]
    fn tls_vectors_parse() {
        let s =
            parse("NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:\n").unwrap();
        assert_eq!(s.kind(), KeyKind::TlsPsk { hash: 1 });
        assert_eq!(s.bytes(), PSK32);
        let s = parse("NVMeTLSkey-1:00:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:").unwrap();
        assert_eq!(s.kind(), KeyKind::TlsPsk { hash: 0 });
        let s = parse(
            "NVMeTLSkey-1:02:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwP/w0S89ELi3W2LxIcLXVsDn8kXZQ==:",
        )
        .unwrap();
        assert_eq!(s.kind(), KeyKind::TlsPsk { hash: 2 });
        assert_eq!(s.bytes(), psk48());
    }

    fn encode(prefix: &str, hash: &str, key: &[u8]) -> String {
        let mut b = key.to_vec();
        b.extend_from_slice(&crc32fast::hash(key).to_le_bytes());
        format!("{prefix}:{hash}:{}:", STANDARD.encode(b))
    }

    #[test]
    fn dhchap_secrets_of_every_length_and_transform_parse() {
        for len in [32, 48, 64] {
            for t in 0..=3u8 {
                let key: Vec<u8> = (0..len).map(|i| u8::try_from(i).unwrap() ^ t).collect();
                let s = parse(&encode("DHHC-1", &format!("{t:02}"), &key)).unwrap();
                assert_eq!(s.kind(), KeyKind::Dhchap { transform: t });
                assert_eq!(s.bytes(), key);
            }
        }
    }

    #[test]
    fn errors_name_the_problem_and_never_the_key() {
        let good = "NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:";
        let cases = [
            ("hello", FormatError::UnknownFormat),
            ("NVMeTLSkey-1:01:abc", FormatError::Malformed(TLS)),
            ("DHHC-1:1:abc:", FormatError::Malformed(DHHC)),
            (
                "NVMeTLSkey-1:03:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:",
                FormatError::Hash {
                    format: TLS,
                    value: "03".into(),
                    allowed: "00, 01 (SHA-256), 02 (SHA-384)",
                },
            ),
            ("DHHC-1:00:!!!!:", FormatError::Base64(DHHC)),
            (
                "NVMeTLSkey-1:02:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:",
                FormatError::Length {
                    format: TLS,
                    len: 32,
                    allowed: "48",
                },
            ),
            (
                "NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrY:",
                FormatError::Crc(TLS),
            ),
        ];
        for (text, want) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err, want, "{text}");
            assert!(!err.to_string().contains("VRLbtn"), "{err}");
        }
        assert!(parse(good).is_ok());
        assert!(parse(&encode("DHHC-1", "00", &[7; 40])).is_err());
        assert!(!format!("{:?}", parse(good).unwrap()).contains("85"));
    }
}
