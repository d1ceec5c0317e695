//! NVMe/TCP TLS as the data plane sees it: which PSK a host's identity names (the subsystem's
//! allow-list entry for that host, with its `psk` key from the keyring) and who a TLS
//! connection is, so the Connect on it can be held to the identity the handshake proved.
//! The handshake itself is the transport's (`crate::transport::tls`).

pub mod client_hello;
pub mod psk;

use std::sync::Arc;

use zeroize::Zeroizing;

use crate::plane::DataPlane;
use crate::plane::keyring::interchange::KeyKind;
use client_hello::ClientHello;
use psk::{Derivation, Identity, IdentityError, PskHash};

/// Who a TLS connection's handshake proved the host to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPeer {
    /// The host NQN of the PSK identity.
    pub hostnqn: String,
    /// The subsystem NQN of the PSK identity.
    pub subnqn: String,
    /// The hash of the cipher suites the PSK is used with (the binder's): the identity's, or
    /// SHA-256 where the host's TLS stack uses every PSK so.
    pub hash: PskHash,
    /// The identity's version (0 or 1).
    pub version: u8,
    /// The keyring key the PSK came from.
    pub key: String,
    /// How the host derived the PSK from the key.
    pub derivation: Derivation,
}

/// Why an identity gets no PSK. The label is the metric's `reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not an identity an NVMe host sends.
    #[error("{0}")]
    Malformed(#[from] IdentityError),
    /// A generated PSK (secure channel concatenation), which Lamina does not offer.
    #[error("generated PSKs (secure channel concatenation after DH-HMAC-CHAP) are not supported")]
    Generated,
    /// No NVM subsystem with that NQN.
    #[error("no subsystem {0}")]
    NoSubsystem(String),
    /// The host is not on the subsystem's allow-list with a PSK.
    #[error("host {host} has no PSK on {subnqn}")]
    NoPsk {
        /// The host NQN.
        host: String,
        /// The subsystem NQN.
        subnqn: String,
    },
    /// The identity's hash is not the one the host's key is used with.
    #[error("identity asks for SHA-{asked} but key {key} is a SHA-{has} PSK")]
    Hash {
        /// What the identity names.
        asked: u16,
        /// What the key is.
        has: u16,
        /// The key's name.
        key: String,
    },
    /// A version 1 identity whose digest is not the key's: another key.
    #[error("the identity's PSK digest does not match key {0}: the host holds another key")]
    Digest(String),
    /// The ClientHello's binder matches no PSK derived from the key: another key.
    #[error("the PSK binder matches no derivation of key {0}: the host holds another key")]
    Binder(String),
    /// The key cannot be read now.
    #[error("key {name}: {why}")]
    Key {
        /// The key's name.
        name: String,
        /// What failed.
        why: String,
    },
}

impl Refusal {
    /// The metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "bad_identity",
            Self::Generated => "generated_psk",
            Self::NoSubsystem(_) | Self::NoPsk { .. } => "unknown_identity",
            Self::Hash { .. } | Self::Digest(_) | Self::Binder(_) => "wrong_psk",
            Self::Key { .. } => "keys",
        }
    }
}

fn bits(h: PskHash) -> u16 {
    match h {
        PskHash::Sha256 => 256,
        PskHash::Sha384 => 384,
    }
}

/// The TLS PSK for the identity a host offered, and who it proves: the subsystem's
/// allow-list entry for the identity's host names the key; the identity's digest (version 1)
/// or, failing that, the ClientHello's binder tells which [`Derivation`] the host used.
pub fn resolve(
    plane: &DataPlane,
    offered: &[u8],
    hello: Option<&ClientHello>,
) -> Result<(TlsPeer, Zeroizing<Vec<u8>>), Refusal> {
    let text = std::str::from_utf8(offered).map_err(|_| IdentityError::Prefix)?;
    let id = Identity::parse(text)?;
    if id.generated {
        return Err(Refusal::Generated);
    }
    let sub = plane
        .subsystems
        .get(id.subnqn)
        .filter(|s| s.kind() == crate::plane::subsystem::SubsystemKind::Nvme)
        .ok_or_else(|| Refusal::NoSubsystem(id.subnqn.to_owned()))?;
    let no_psk = || Refusal::NoPsk {
        host: id.hostnqn.to_owned(),
        subnqn: id.subnqn.to_owned(),
    };
    let key = sub
        .host_keys(id.hostnqn)
        .and_then(|k| k.psk)
        .ok_or_else(no_psk)?;
    let name = key.name().to_owned();
    let secret = key.secret().map_err(|e| Refusal::Key {
        name: name.clone(),
        why: e.to_string(),
    })?;
    let KeyKind::TlsPsk { hash: indicator } = secret.kind() else {
        return Err(Refusal::Key {
            name,
            why: format!("the file now holds a {}", secret.kind()),
        });
    };
    let has =
        PskHash::for_configured(indicator, secret.bytes().len()).ok_or_else(|| Refusal::Key {
            name: name.clone(),
            why: "hash indicator and length do not match".into(),
        })?;
    if has != id.hash {
        return Err(Refusal::Hash {
            asked: bits(id.hash),
            has: bits(has),
            key: name,
        });
    }
    let binder = hello.and_then(|h| h.binder_of(offered));
    let mut digest_matched = false;
    for how in Derivation::ALL {
        let Some(retained) = psk::retained(how, secret.bytes(), indicator, id.hostnqn) else {
            continue;
        };
        if let Some(d) = id.digest {
            // Digests are public (they travel in clear in the ClientHello).
            if psk::digest(&retained, id.hash, id.hostnqn, id.subnqn) != d {
                continue;
            }
            digest_matched = true;
        }
        let Some(tls) = psk::tls_psk(how, &retained, &id, text) else {
            continue;
        };
        // The hash TLS uses the PSK with: the identity's; for a SHA-384 identity also SHA-256,
        // which tlshd 1.0 (ktls-utils, the Linux host's handshake agent in Debian 13) uses
        // for every PSK (it then offers TLS_CHACHA20_POLY1305_SHA256).
        let suite_hash = match (hello, binder) {
            (Some(h), Some(b)) => [id.hash, PskHash::Sha256]
                .into_iter()
                .find(|&hash| h.binder_matches(&tls, hash, b)),
            _ => Some(id.hash),
        };
        if let Some(suite_hash) = suite_hash {
            let peer = TlsPeer {
                hostnqn: id.hostnqn.to_owned(),
                subnqn: id.subnqn.to_owned(),
                hash: suite_hash,
                version: id.version,
                key: name,
                derivation: how,
            };
            return Ok((peer, tls));
        }
    }
    if id.digest.is_some() && !digest_matched {
        return Err(Refusal::Digest(name));
    }
    Err(Refusal::Binder(name))
}

/// Shared with the handshake: what the PSK callback found (the last identity it was asked).
pub type Outcome = Arc<parking_lot::Mutex<Option<Result<TlsPeer, Refusal>>>>;
