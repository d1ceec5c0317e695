//! Finite-field Diffie-Hellman for DH-HMAC-CHAP: the groups a host may negotiate (null and
//! RFC 7919's ffdhe2048 to ffdhe8192), an ephemeral key pair per transaction, and the shared
//! secret from the host's public value. The arithmetic is crypto-bigint's constant-time
//! Montgomery exponentiation (audited by NCC Group); the private exponent is random, of twice
//! the group's security strength in bits (NIST SP 800-56A: at least 2s bits), so a
//! transaction costs two short exponentiations, not two full-width ones.

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, Odd};
use subtle::ConstantTimeLess as _;
use zeroize::Zeroizing;

use super::ffdhe;

/// A DH group DH-HMAC-CHAP names (NVMe Base 2.x, DH Group Identifiers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DhGroup {
    /// No Diffie-Hellman exchange.
    Null,
    /// ffdhe2048 (RFC 7919).
    Ffdhe2048,
    /// ffdhe3072.
    Ffdhe3072,
    /// ffdhe4096.
    Ffdhe4096,
    /// ffdhe6144.
    Ffdhe6144,
    /// ffdhe8192.
    Ffdhe8192,
}

impl DhGroup {
    /// Every group, in identifier order.
    pub const ALL: [Self; 6] = [
        Self::Null,
        Self::Ffdhe2048,
        Self::Ffdhe3072,
        Self::Ffdhe4096,
        Self::Ffdhe6144,
        Self::Ffdhe8192,
    ];

    /// The identifier on the wire.
    pub fn id(self) -> u8 {
        match self {
            Self::Null => 0,
            Self::Ffdhe2048 => 1,
            Self::Ffdhe3072 => 2,
            Self::Ffdhe4096 => 3,
            Self::Ffdhe6144 => 4,
            Self::Ffdhe8192 => 5,
        }
    }

    /// The group with identifier `id`.
    pub fn from_id(id: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.id() == id)
    }

    /// The name SPDK's RPCs use (`null`, `ffdhe2048`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Ffdhe2048 => "ffdhe2048",
            Self::Ffdhe3072 => "ffdhe3072",
            Self::Ffdhe4096 => "ffdhe4096",
            Self::Ffdhe6144 => "ffdhe6144",
            Self::Ffdhe8192 => "ffdhe8192",
        }
    }

    /// The group named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.name() == name)
    }

    /// The modulus in bits (0 for the null group).
    pub fn bits(self) -> u32 {
        match self {
            Self::Null => 0,
            Self::Ffdhe2048 => 2048,
            Self::Ffdhe3072 => 3072,
            Self::Ffdhe4096 => 4096,
            Self::Ffdhe6144 => 6144,
            Self::Ffdhe8192 => 8192,
        }
    }

    /// Bytes of a public value or shared secret (the modulus' size).
    pub fn value_len(self) -> usize {
        self.bits() as usize / 8
    }

    //~ RFC 7919 appendix A: estimated strength 103, 125, 150, 175 and 192 bits for ffdhe2048
    //~ to ffdhe8192; the private exponent should be at least twice that.
    /// Bits of the private exponent.
    fn exponent_bits(self) -> u32 {
        match self {
            Self::Null => 0,
            Self::Ffdhe2048 => 225,
            Self::Ffdhe3072 => 275,
            Self::Ffdhe4096 => 325,
            Self::Ffdhe6144 => 375,
            Self::Ffdhe8192 => 400,
        }
    }

    fn modulus_hex(self) -> Option<&'static str> {
        match self {
            Self::Null => None,
            Self::Ffdhe2048 => Some(ffdhe::FFDHE2048),
            Self::Ffdhe3072 => Some(ffdhe::FFDHE3072),
            Self::Ffdhe4096 => Some(ffdhe::FFDHE4096),
            Self::Ffdhe6144 => Some(ffdhe::FFDHE6144),
            Self::Ffdhe8192 => Some(ffdhe::FFDHE8192),
        }
    }

    fn params(self) -> Option<BoxedMontyParams> {
        let hex = self.modulus_hex()?;
        let p = Option::<BoxedUint>::from(BoxedUint::from_be_hex(hex, self.bits()))?;
        let odd = Option::<Odd<BoxedUint>>::from(Odd::new(p))?;
        Some(BoxedMontyParams::new_vartime(odd))
    }
}

/// Why a host's public value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DhError {
    /// The value is not the group's size.
    #[error("DH value of {got} bytes, the group needs {want}")]
    Length { got: usize, want: usize },
    /// 0, 1 or p - 1 and above: a value that would give a predictable secret.
    #[error("DH value outside 2..p-2")]
    Range,
}

/// An ephemeral key pair: the private exponent (wiped on drop) and the public value.
pub struct KeyPair {
    group: DhGroup,
    private: Zeroizing<Vec<u8>>,
    public: Vec<u8>,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

fn uint_bytes(x: &BoxedUint, len: usize) -> Vec<u8> {
    let be = x.to_be_bytes();
    // `to_be_bytes` gives whole limbs: the value fits in `len` bytes, so the rest are zeros.
    be[be.len().saturating_sub(len)..].to_vec()
}

impl KeyPair {
    /// A fresh key pair in `group` (`None` for the null group).
    pub fn generate(group: DhGroup) -> Option<Self> {
        let params = group.params()?;
        let mut private = Zeroizing::new(vec![0u8; group.exponent_bits().div_ceil(8) as usize]);
        getrandom::fill(&mut private).ok()?;
        let x = BoxedUint::from_be_slice(&private, group.bits()).ok()?;
        let g = BoxedMontyForm::new(BoxedUint::from_be_slice(&[2], group.bits()).ok()?, params);
        let public = g.pow_bounded_exp(&x, group.exponent_bits()).retrieve();
        Some(Self {
            group,
            private,
            public: uint_bytes(&public, group.value_len()),
        })
    }

    /// The public value, big-endian, the group's size.
    pub fn public(&self) -> &[u8] {
        &self.public
    }

    /// The shared secret with the peer's public value, big-endian, the group's size.
    pub fn shared_secret(&self, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>, DhError> {
        let group = self.group;
        let want = group.value_len();
        if peer.len() != want {
            return Err(DhError::Length {
                got: peer.len(),
                want,
            });
        }
        let params = group.params().ok_or(DhError::Range)?;
        let y = BoxedUint::from_be_slice(peer, group.bits()).map_err(|_| DhError::Range)?;
        let two = BoxedUint::from_be_slice(&[2], group.bits()).map_err(|_| DhError::Range)?;
        let p_minus_1 = params.modulus().as_ref().wrapping_sub(&BoxedUint::one());
        // SP 800-56A full public key validation's range check: 2 <= y <= p - 2.
        if bool::from(y.ct_lt(&two)) || !bool::from(y.ct_lt(&p_minus_1)) {
            return Err(DhError::Range);
        }
        let x =
            BoxedUint::from_be_slice(&self.private, group.bits()).map_err(|_| DhError::Range)?;
        let z = BoxedMontyForm::new(y, params)
            .pow_bounded_exp(&x, group.exponent_bits())
            .retrieve();
        Ok(Zeroizing::new(uint_bytes(&z, want)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moduli_are_the_rfc_groups() {
        for g in &DhGroup::ALL[1..] {
            let hex = g.modulus_hex().unwrap();
            assert_eq!(hex.len() * 4, g.bits() as usize, "{g:?}");
            // RFC 7919: the top and bottom 64 bits are all ones.
            assert!(hex.starts_with("FFFFFFFFFFFFFFFF") && hex.ends_with("FFFFFFFFFFFFFFFF"));
            assert!(hex.starts_with("FFFFFFFFFFFFFFFFADF85458A2BB4A9AAFDC5620273D3CF1D8B9C583"));
        }
    }

    #[test]
    fn two_generates_the_prime_order_subgroup() {
        // p is a safe prime with 2 a quadratic residue: 2^q = 1 mod p for q = (p - 1) / 2, and a
        // mistyped digit would almost surely break it.
        for g in [DhGroup::Ffdhe2048, DhGroup::Ffdhe3072] {
            let params = g.params().unwrap();
            let q = params
                .modulus()
                .as_ref()
                .wrapping_sub(&BoxedUint::one())
                .shr(1);
            let two =
                BoxedMontyForm::new(BoxedUint::from_be_slice(&[2], g.bits()).unwrap(), params);
            let r = two.pow(&q).retrieve();
            assert_eq!(r, BoxedUint::one_with_precision(g.bits()), "{g:?}");
        }
    }

    #[test]
    fn both_sides_derive_the_same_secret() {
        for g in &DhGroup::ALL[1..] {
            let a = KeyPair::generate(*g).unwrap();
            let b = KeyPair::generate(*g).unwrap();
            assert_eq!(a.public().len(), g.value_len());
            let s1 = a.shared_secret(b.public()).unwrap();
            let s2 = b.shared_secret(a.public()).unwrap();
            assert_eq!(*s1, *s2, "{g:?}");
            assert_ne!(a.public(), b.public());
        }
        assert!(KeyPair::generate(DhGroup::Null).is_none());
    }

    #[test]
    fn degenerate_public_values_are_refused() {
        let g = DhGroup::Ffdhe2048;
        let a = KeyPair::generate(g).unwrap();
        let mut v = vec![0u8; g.value_len()];
        assert_eq!(a.shared_secret(&v).unwrap_err(), DhError::Range);
        v[g.value_len() - 1] = 1;
        assert_eq!(a.shared_secret(&v).unwrap_err(), DhError::Range);
        let p = uint_bytes(g.params().unwrap().modulus().as_ref(), g.value_len());
        assert_eq!(a.shared_secret(&p).unwrap_err(), DhError::Range);
        assert!(matches!(
            a.shared_secret(&v[1..]).unwrap_err(),
            DhError::Length { .. }
        ));
        assert_eq!(DhGroup::from_name("ffdhe6144"), Some(DhGroup::Ffdhe6144));
        assert_eq!(DhGroup::from_id(5), Some(DhGroup::Ffdhe8192));
        assert_eq!(DhGroup::from_id(6), None);
    }
}
