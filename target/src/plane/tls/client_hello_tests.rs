//! ClientHellos from OpenSSL's client (an implementation not written here) offering a PSK:
//! the offer is found and its binder checks out for that PSK and no other; malformed input
//! is refused without a panic.

use std::io::Read as _;

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};

use super::*;

/// The ClientHello message (header included) OpenSSL sends offering `identity` with `psk`.
fn openssl_client_hello(identity: &'static str, psk: Vec<u8>) -> Vec<u8> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = std::thread::spawn(move || {
        let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
        b.set_min_proto_version(Some(SslVersion::TLS1_3)).unwrap();
        b.set_ciphersuites("TLS_AES_128_GCM_SHA256").unwrap();
        b.set_verify(SslVerifyMode::NONE);
        b.set_psk_client_callback(move |_, _, id_out, psk_out| {
            id_out[..identity.len()].copy_from_slice(identity.as_bytes());
            id_out[identity.len()] = 0;
            psk_out[..psk.len()].copy_from_slice(&psk);
            Ok(psk.len())
        });
        let tcp = std::net::TcpStream::connect(addr).unwrap();
        // Fails once the other side closes; only the ClientHello matters.
        let _ = b.build().configure().unwrap().connect("x", tcp);
    });
    let (mut s, _) = listener.accept().unwrap();
    let mut header = [0u8; 5];
    s.read_exact(&mut header).unwrap();
    assert_eq!(header[0], HANDSHAKE);
    let mut body = vec![0u8; usize::from(u16::from_be_bytes([header[3], header[4]]))];
    s.read_exact(&mut body).unwrap();
    drop(s);
    client.join().unwrap();
    let total = message_len(&body).unwrap();
    body.truncate(total);
    body
}

#[test]
fn binders_of_openssl_client_hellos_check_out() {
    let psk = vec![0x5a; 32];
    let msg = openssl_client_hello("NVMe0R01 host sub", psk.clone());
    let hello = ClientHello::parse(&msg).unwrap();
    assert_eq!(hello.offers.len(), 1);
    let binder = hello.binder_of(b"NVMe0R01 host sub").unwrap();
    assert_eq!(binder.len(), 32);
    assert!(hello.binder_matches(&psk, PskHash::Sha256, binder));
    assert!(!hello.binder_matches(&[0x5b; 32], PskHash::Sha256, binder));
    assert!(!hello.binder_matches(&psk, PskHash::Sha384, binder));
    assert!(hello.binder_of(b"NVMe0R01 host other").is_none());
}

#[test]
fn malformed_client_hellos_are_refused() {
    let msg = openssl_client_hello("NVMe0R01 h s", vec![1; 32]);
    for cut in 0..msg.len() {
        // Every truncation parses to nothing or to no offer, never panics.
        let parsed = ClientHello::parse(&msg[..cut]);
        assert!(parsed.is_none_or(|h| h.offers.is_empty()), "cut {cut}");
    }
    let mut flipped = msg.clone();
    flipped[0] = 2;
    assert!(ClientHello::parse(&flipped).is_none());
}

proptest::proptest! {
    /// Any bytes, and any one-byte change of a real ClientHello: parsing never panics, and
    /// what it finds has binders that only the right PSK verifies.
    #[test]
    fn parsing_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
        let _ = ClientHello::parse(&bytes);
        let _ = message_len(&bytes);
    }

    #[test]
    fn mutated_hellos_never_panic(at in 0usize..1000, value in proptest::num::u8::ANY) {
        let mut msg = hello().to_vec();
        let i = at % msg.len();
        msg[i] = value;
        if let Some(h) = ClientHello::parse(&msg) {
            for o in &h.offers {
                let _ = h.binder_matches(&[0u8; 32], PskHash::Sha256, &o.binder);
            }
        }
    }
}

/// One ClientHello from OpenSSL, made once.
fn hello() -> &'static [u8] {
    static HELLO: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    HELLO.get_or_init(|| openssl_client_hello("NVMe0R01 host sub", vec![9; 32]))
}
