//! The DH-HMAC-CHAP computations (NVMe Base 2.x, DH-HMAC-CHAP protocol): the hash functions a
//! host may negotiate, the transformation of a configured secret by the NQN of its owner, the
//! challenge augmented with the Diffie-Hellman session key, and the two responses (the host's,
//! which the controller checks, and the controller's, for bidirectional authentication). Hash
//! and HMAC are RustCrypto's `sha2` and `hmac`; responses are compared in constant time.

use hmac::Hmac;
use sha2::{Digest as _, Sha256, Sha384, Sha512};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

/// A hash function DH-HMAC-CHAP names (NVMe Base 2.x, Hash Function Identifiers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HashFn {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashFn {
    /// Every hash function, in identifier order.
    pub const ALL: [Self; 3] = [Self::Sha256, Self::Sha384, Self::Sha512];

    /// The identifier on the wire (and in a `DHHC-1:HH:` secret's transform field).
    pub fn id(self) -> u8 {
        match self {
            Self::Sha256 => 1,
            Self::Sha384 => 2,
            Self::Sha512 => 3,
        }
    }

    /// The hash function with identifier `id`.
    pub fn from_id(id: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.id() == id)
    }

    /// The name SPDK's RPCs use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    /// The hash function named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.name() == name)
    }

    /// Output length in bytes (the challenge and response length, HL).
    pub fn output_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(match self {
            Self::Sha256 => Sha256::digest(data).to_vec(),
            Self::Sha384 => Sha384::digest(data).to_vec(),
            Self::Sha512 => Sha512::digest(data).to_vec(),
        })
    }

    /// HMAC keyed with `key` over the concatenation of `parts`.
    pub fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
        fn run<M: hmac::Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
            // HMAC takes keys of any length.
            let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
            for p in parts {
                mac.update(p);
            }
            mac.finalize().into_bytes().to_vec()
        }
        Zeroizing::new(match self {
            Self::Sha256 => run::<Hmac<Sha256>>(key, parts),
            Self::Sha384 => run::<Hmac<Sha384>>(key, parts),
            Self::Sha512 => run::<Hmac<Sha512>>(key, parts),
        })
    }
}

//~ NVMe Base 2.x, DHHC-1 secret representation: a secret with a transform hash is used as
//~ HMAC(secret, NQN || "NVMe-over-Fabrics") under that hash; 00 means the secret as it is.
/// The key a secret configured for `nqn` authenticates with: the secret itself for transform
/// 0, else HMAC under the transform hash of the owner's NQN and "NVMe-over-Fabrics".
pub fn transform_secret(secret: &[u8], transform: u8, nqn: &str) -> Option<Zeroizing<Vec<u8>>> {
    if transform == 0 {
        return Some(Zeroizing::new(secret.to_vec()));
    }
    let hash = HashFn::from_id(transform)?;
    Some(hash.hmac(secret, &[nqn.as_bytes(), b"NVMe-over-Fabrics"]))
}

/// The challenge as the responses use it: itself with the null DH group, else HMAC of it
/// keyed with the hash of the DH shared secret.
pub fn augment_challenge(
    hash: HashFn,
    challenge: &[u8],
    session_key: Option<&[u8]>,
) -> Zeroizing<Vec<u8>> {
    match session_key {
        None => Zeroizing::new(challenge.to_vec()),
        Some(z) => {
            let k = hash.digest(z);
            hash.hmac(&k, &[challenge])
        }
    }
}

/// What both responses are computed over, besides the key and the challenge.
#[derive(Debug, Clone, Copy)]
pub struct Transcript<'a> {
    /// The sequence number of the challenge.
    pub seqnum: u32,
    /// The transaction identifier.
    pub t_id: u16,
    /// The secure channel concatenation field.
    pub sc_c: u8,
    /// The host NQN.
    pub hostnqn: &'a str,
    /// The subsystem NQN.
    pub subnqn: &'a str,
}

//~ NVMe Base 2.x, DH-HMAC-CHAP_Reply: R1 = HMAC(Kh, Ca1 || S1 || T_ID || SC_C || "HostHost" ||
//~ NQNh || 00h || NQNc), S1 little-endian 32 bits, T_ID little-endian 16 bits.
/// The host's response R1, which the controller computes to check the reply.
pub fn host_response(
    hash: HashFn,
    key: &[u8],
    challenge: &[u8],
    t: &Transcript<'_>,
) -> Zeroizing<Vec<u8>> {
    response(hash, key, challenge, t, b"HostHost", [t.hostnqn, t.subnqn])
}

//~ NVMe Base 2.x, DH-HMAC-CHAP_Success1: R2 = HMAC(Kc, Ca2 || S2 || T_ID || SC_C ||
//~ "Controller" || NQNc || 00h || NQNh).
/// The controller's response R2 to the host's challenge (bidirectional authentication).
pub fn controller_response(
    hash: HashFn,
    key: &[u8],
    challenge: &[u8],
    t: &Transcript<'_>,
) -> Zeroizing<Vec<u8>> {
    response(
        hash,
        key,
        challenge,
        t,
        b"Controller",
        [t.subnqn, t.hostnqn],
    )
}

/// Both responses: the role string, then the responder's NQN and the other's, NUL between.
fn response(
    hash: HashFn,
    key: &[u8],
    challenge: &[u8],
    t: &Transcript<'_>,
    role: &[u8],
    [own, other]: [&str; 2],
) -> Zeroizing<Vec<u8>> {
    hash.hmac(
        key,
        &[
            challenge,
            &t.seqnum.to_le_bytes(),
            &t.t_id.to_le_bytes(),
            &[t.sc_c],
            role,
            own.as_bytes(),
            &[0],
            other.as_bytes(),
        ],
    )
}

/// Whether two responses are equal, in time independent of where they differ.
pub fn responses_match(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mac = HashFn::Sha256.hmac(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        let want = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        let want: Vec<u8> = (0..want.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&want[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(*mac, want);
        assert_eq!(HashFn::Sha384.hmac(b"Jefe", &[b"x"]).len(), 48);
        assert_eq!(HashFn::Sha512.digest(b"").len(), 64);
    }

    /// Known answers from another implementation: nvme-cli 2.3 with libnvme 1.3 (Debian 12),
    /// `nvme gen-dhchap-key --secret=00010203... --hmac=H --nqn=NQN`, which prints the secret
    /// transformed exactly as a controller transforms it (HMAC of the NQN and
    /// "NVMe-over-Fabrics"), CRC appended.
    #[test]
    fn transforms_match_nvme_cli() {
        use base64::Engine as _;
        let nqn = "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-000000000001";
        for (hash, printed) in [
            (1u8, "bHuByyp0b3RFSx1xQPMVO1HKmUWfzveoahfydpW4fNgSLMVm"),
            (
                2,
                "yRbznXvUOKyUzpjxLyIgLGvEOxsb9/CBo2/XbRG0sXMHJv918yV2tXSc+gbRp7T1eXmwtA==",
            ),
            (
                3,
                "XaedOIjF3axQewl4QMTIr4xwmePzL78hYgnSQQP1S88iKE5wNLtXmomXR19QrsC/88ytGEVjd56B9IxAUHG5cMGgMCQ=",
            ),
        ] {
            let len = HashFn::from_id(hash).unwrap().output_len();
            let secret: Vec<u8> = (0..u8::try_from(len).unwrap()).collect();
            let want = base64::engine::general_purpose::STANDARD
                .decode(printed)
                .unwrap();
            let got = transform_secret(&secret, hash, nqn).unwrap();
            assert_eq!(*got, want[..len], "hash {hash}");
        }
    }

    #[test]
    fn transforms_and_responses_depend_on_every_input() {
        let secret = [7u8; 32];
        let plain = transform_secret(&secret, 0, "nqn.a").unwrap();
        assert_eq!(*plain, secret.to_vec());
        let a = transform_secret(&secret, 1, "nqn.a").unwrap();
        let b = transform_secret(&secret, 1, "nqn.b").unwrap();
        assert_ne!(a, b);
        assert_eq!(transform_secret(&secret, 3, "nqn.a").unwrap().len(), 64);
        assert!(transform_secret(&secret, 4, "nqn.a").is_none());
        let t = Transcript {
            seqnum: 1,
            t_id: 2,
            sc_c: 0,
            hostnqn: "nqn.h",
            subnqn: "nqn.s",
        };
        let c = [9u8; 32];
        let r1 = host_response(HashFn::Sha256, &a, &c, &t);
        let r2 = controller_response(HashFn::Sha256, &a, &c, &t);
        assert_ne!(r1, r2, "the role strings separate the two responses");
        let other = Transcript { seqnum: 2, ..t };
        assert_ne!(r1, host_response(HashFn::Sha256, &a, &c, &other));
        assert!(responses_match(&r1, &r1.clone()));
        assert!(!responses_match(&r1, &r2));
        assert!(!responses_match(&r1, &r1[1..]));
        let aug = augment_challenge(HashFn::Sha256, &c, Some(&[1, 2, 3]));
        assert_ne!(*aug, c.to_vec());
        assert_eq!(*augment_challenge(HashFn::Sha256, &c, None), c.to_vec());
    }
}
