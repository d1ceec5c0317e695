//! Known answers computed with OpenSSL's command line (`openssl kdf ... HKDF` and
//! `openssl mac ... HMAC`), an implementation independent of this one, for the keys of the
//! interchange-format tests; and for libnvme's encoding, the PSKs and digest that Debian 13's
//! nvme-cli 2.13 (`check-tls-key --insert`, identities 0 and 1) put in the Linux host's
//! keyring, as `nvme tls-key --export` showed them in the VM.

use super::*;

const HOST: &str = "nqn.2014-08.org.nvmexpress:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6";
const SUB: &str = "nqn.2026-12.io.lamina:tls";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn hex(b: &[u8]) -> String {
    use std::fmt::Write as _;
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

#[test]
fn sha256_identities_of_both_versions() {
    let configured = unhex("5512dbb6737d0106f65975b773dfb011ffc344bcf442e2dd6d8bc4870b5d5b03");
    let r = retained(Derivation::Standard, &configured, 1, HOST).unwrap();
    assert_eq!(
        hex(&r),
        "f0af1bc718d4f23bdd7c1683a3d79bd953ea789d106a0f5207bb574bbe5446ce"
    );

    let text0 = Identity::format(PskHash::Sha256, HOST, SUB, None);
    let id0 = Identity::parse(&text0).unwrap();
    assert_eq!(
        (id0.version, id0.hash, id0.digest),
        (0, PskHash::Sha256, None)
    );
    assert_eq!(
        hex(&tls_psk(Derivation::Standard, &r, &id0, &text0).unwrap()),
        "c4a988a148c7fcde28a62e7ca7c46cb6780ba72305db8231d8fb28e0ab6ba31b"
    );

    let d = digest(&r, PskHash::Sha256, HOST, SUB);
    assert_eq!(d, "43kxEPS0dFozC6Cl6nMBYISQ3Dkb2beZOAtwDdwdaBc=");
    let text1 = Identity::format(PskHash::Sha256, HOST, SUB, Some(&d));
    let id1 = Identity::parse(&text1).unwrap();
    assert_eq!((id1.version, id1.hostnqn, id1.subnqn), (1, HOST, SUB));
    assert_eq!(
        hex(&tls_psk(Derivation::Standard, &r, &id1, &text1).unwrap()),
        "0040d2c325e2e9b9e33b0953bbe7571e2aac5e131cc540db5be823a22ec661a3"
    );
}

#[test]
fn sha384_version_1() {
    let configured = unhex(
        "5512dbb6737d0106f65975b773dfb011ffc344bcf442e2dd6d8bc4870b5d5b03\
         ffc344bcf442e2dd6d8bc4870b5d5b03",
    );
    let r = retained(Derivation::Standard, &configured, 2, HOST).unwrap();
    assert_eq!(
        hex(&r),
        "e42f24faf45337718cfd5068c928d40d4d22b7a915a47bc50280933f9530c5d6\
         4980ecfefb890b0b59016a3781c6b93e"
    );
    let d = digest(&r, PskHash::Sha384, HOST, SUB);
    assert_eq!(
        d,
        "iQnX0y39of7NjjJQOLhC5hlfYRR/VjVx6lqFJwX5u3dmZ5NfjTTYChCiEi+PCvR7"
    );
    let text = Identity::format(PskHash::Sha384, HOST, SUB, Some(&d));
    let id = Identity::parse(&text).unwrap();
    assert_eq!(
        hex(&tls_psk(Derivation::Standard, &r, &id, &text).unwrap()),
        "a17addd0338fdd84e6dc4ed0d8c05a413f4ab1901d8158fde5c763341c75995c\
         c32d9a4483acf90a7b61f6a06a7b5fec"
    );
}

#[test]
fn unhashed_configured_key_is_its_own_retained_key() {
    let k = [7u8; 48];
    assert_eq!(
        &*retained(Derivation::Standard, &k, 0, HOST).unwrap(),
        &k[..]
    );
    assert_eq!(PskHash::for_configured(0, 48), Some(PskHash::Sha384));
    assert_eq!(PskHash::for_configured(1, 48), None);
    assert_eq!(retained(Derivation::Standard, &k, 3, HOST), None);
}

#[test]
fn malformed_identities_are_refused() {
    let cases: &[(&str, IdentityError)] = &[
        ("", IdentityError::Prefix),
        ("nvme0R01 h s", IdentityError::Prefix),
        ("NVMe0X01 h s", IdentityError::Prefix),
        ("NVMe2R01 h s", IdentityError::Version('2')),
        ("NVMe0R03 h s", IdentityError::Hash("03".into())),
        ("NVMe0R01 h", IdentityError::Fields(0)),
        ("NVMe0R01 h s d", IdentityError::Fields(0)),
        ("NVMe1R01 h s", IdentityError::Fields(1)),
        ("NVMe0R01  s", IdentityError::Fields(0)),
    ];
    for (text, want) in cases {
        assert_eq!(Identity::parse(text).as_ref(), Err(want), "{text:?}");
    }
    let g = Identity::parse("NVMe0G02 h s").unwrap();
    assert!(g.generated);
}

#[test]
fn libnvme_encoding_matches_nvme_cli() {
    let sub = "nqn.2014-08.org.nvmexpress:testsubsys";
    let configured = unhex("5512dbb6737d0106f65975b773dfb011ffc344bcf442e2dd6d8bc4870b5d5b03");
    let r = retained(Derivation::Compat, &configured, 1, HOST).unwrap();
    let d = digest(&r, PskHash::Sha256, HOST, sub);
    assert_eq!(d, "evM+5q2cp4NKeW55EU9qp3RIb8O0MxpTDXMk6QjvNVI=");
    let text0 = Identity::format(PskHash::Sha256, HOST, sub, None);
    let id0 = Identity::parse(&text0).unwrap();
    assert_eq!(
        hex(&tls_psk(Derivation::Compat, &r, &id0, &text0).unwrap()),
        "b7dea6cbe9d710a39af3ae683a13b3492aeb0a458bb4ed32c23ecce73028283b"
    );
    let text1 = Identity::format(PskHash::Sha256, HOST, sub, Some(&d));
    let id1 = Identity::parse(&text1).unwrap();
    assert_eq!(
        hex(&tls_psk(Derivation::Compat, &r, &id1, &text1).unwrap()),
        "8a1fce85673db5fcf6c9207af39c140ef630720b65291b628392a7d0c966612d"
    );
    // The standard encoding gives other keys for the same inputs.
    let std = retained(Derivation::Standard, &configured, 1, HOST).unwrap();
    assert_ne!(hex(&std), hex(&r));
}
