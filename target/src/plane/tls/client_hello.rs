//! The PSK offers of a TLS 1.3 ClientHello, read before OpenSSL sees it, and their binders
//! checked (RFC 8446 sections 4.2.11 and 4.2.11.2), so the target can tell which of the
//! derivations a host's PSK came from ([`super::psk::Derivation`]) and name a wrong key as
//! such instead of as a failed handshake.
//!
//! binder = HMAC(finished_key, Hash(ClientHello up to the binders)), with
//! finished_key = HKDF-Expand-Label(binder_key, "finished", "", HashLen),
//! binder_key = HKDF-Expand-Label(HKDF-Extract(0, PSK), "ext binder", Hash(""), HashLen).
//! Parsing is bounds-checked throughout: malformed input yields `None`, never a panic.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha384};
use subtle::ConstantTimeEq;

use super::psk::{PskHash, label_info};

/// The TLS record type of handshake messages.
pub const HANDSHAKE: u8 = 0x16;
/// The handshake type of a ClientHello.
const CLIENT_HELLO: u8 = 1;
/// The pre_shared_key extension.
const PRE_SHARED_KEY: u16 = 41;

/// One identity a host offers, with its binder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PskOffer {
    /// The identity's bytes.
    pub identity: Vec<u8>,
    /// Its binder.
    pub binder: Vec<u8>,
}

/// What the target needs of a ClientHello.
#[derive(Debug, Clone)]
pub struct ClientHello {
    /// The PSK identities offered, in order.
    pub offers: Vec<PskOffer>,
    /// The handshake message up to (not including) the binders list.
    truncated: Vec<u8>,
}

/// A cursor over bytes; every read is checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }

    fn u8(&mut self) -> Option<usize> {
        self.take(1).map(|b| usize::from(b[0]))
    }

    fn u16(&mut self) -> Option<usize> {
        self.take(2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    fn u24(&mut self) -> Option<usize> {
        self.take(3)
            .map(|b| (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]))
    }

    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(n)
    }

    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(n)
    }
}

/// How many bytes the handshake message at the start of `msg` (the payload of the first
/// handshake records) has in all, once its 4-byte header is there.
pub fn message_len(msg: &[u8]) -> Option<usize> {
    let mut r = Reader(msg);
    r.u8()?;
    Some(4 + r.u24()?)
}

impl ClientHello {
    /// Parses a complete ClientHello handshake message (header included). `None` when it is
    /// not one, or is malformed.
    pub fn parse(msg: &[u8]) -> Option<Self> {
        let mut r = Reader(msg);
        if r.u8()? != usize::from(CLIENT_HELLO) {
            return None;
        }
        let body_len = r.u24()?;
        let mut body = Reader(r.take(body_len)?);
        body.take(2 + 32)?; // legacy_version, random
        body.vec8()?; // legacy_session_id
        body.vec16()?; // cipher_suites
        body.vec8()?; // legacy_compression_methods
        let mut exts = Reader(body.vec16()?);
        while !exts.0.is_empty() {
            let ty = exts.u16()?;
            let data = exts.vec16()?;
            if ty != usize::from(PRE_SHARED_KEY) {
                continue;
            }
            // pre_shared_key is the last extension: the binders end the message.
            if !exts.0.is_empty() || !body.0.is_empty() {
                return None;
            }
            let mut ext = Reader(data);
            let mut ids = Reader(ext.vec16()?);
            let binders_len = ext.u16()?;
            let mut binders = Reader(ext.take(binders_len)?);
            if !ext.0.is_empty() {
                return None;
            }
            let mut offers = Vec::new();
            while !ids.0.is_empty() {
                let identity = ids.vec16()?.to_vec();
                ids.take(4)?; // obfuscated_ticket_age
                let binder = binders.vec8()?.to_vec();
                offers.push(PskOffer { identity, binder });
            }
            if !binders.0.is_empty() || offers.is_empty() {
                return None;
            }
            let end = msg.len().checked_sub(2 + binders_len)?;
            return Some(Self {
                offers,
                truncated: msg.get(..end)?.to_vec(),
            });
        }
        Some(Self {
            offers: Vec::new(),
            truncated: Vec::new(),
        })
    }

    /// The binder offered with `identity`.
    pub fn binder_of(&self, identity: &[u8]) -> Option<&[u8]> {
        self.offers
            .iter()
            .find(|o| o.identity == identity)
            .map(|o| o.binder.as_slice())
    }

    /// Whether `binder` is the one `psk` (of a cipher suite with `hash`) gives this message.
    pub fn binder_matches(&self, psk: &[u8], hash: PskHash, binder: &[u8]) -> bool {
        let want = match hash {
            PskHash::Sha256 => binder_sha256(psk, &self.truncated),
            PskHash::Sha384 => binder_sha384(psk, &self.truncated),
        };
        want.is_some_and(|w| w.len() == binder.len() && bool::from(w.ct_eq(binder)))
    }
}

/// The binder of `psk` for the truncated ClientHello, with hash `$h` (a macro: the two
/// hashes are distinct types).
macro_rules! binder_with {
    ($h:ty, $psk:expr, $truncated:expr) => {{
        let len = <$h as Digest>::output_size();
        let (early, _) = hkdf::Hkdf::<$h>::extract(None, $psk);
        let early = hkdf::Hkdf::<$h>::from_prk(&early).ok()?;
        let mut binder_key = vec![0u8; len];
        early
            .expand(
                &label_info(len, "ext binder", &<$h>::digest(b""))?,
                &mut binder_key,
            )
            .ok()?;
        let bk = hkdf::Hkdf::<$h>::from_prk(&binder_key).ok()?;
        let mut finished = vec![0u8; len];
        bk.expand(&label_info(len, "finished", b"")?, &mut finished)
            .ok()?;
        let mut mac = <Hmac<$h> as Mac>::new_from_slice(&finished).ok()?;
        mac.update(&<$h>::digest($truncated));
        Some(mac.finalize().into_bytes().to_vec())
    }};
}

fn binder_sha256(psk: &[u8], truncated: &[u8]) -> Option<Vec<u8>> {
    binder_with!(Sha256, psk, truncated)
}

fn binder_sha384(psk: &[u8], truncated: &[u8]) -> Option<Vec<u8>> {
    binder_with!(Sha384, psk, truncated)
}

#[cfg(test)]
#[path = "client_hello_tests.rs"]
mod tests;
