//! The OpenSSL entry points the `openssl` crate does not wrap: the TLS 1.3 server's external
//! PSK lookup (`SSL_CTX_set_psk_find_session_callback`), which hands OpenSSL the PSK *and* its
//! cipher suite as a session. (The crate's PSK callback is the TLS 1.2 style one, which in
//! TLS 1.3 serves SHA-256 PSKs only; NVMe/TCP also uses SHA-384 ones.)
//!
//! The lookup itself is safe Rust: a [`PskLookup`] stored in the `Ssl`'s ex-data, called with
//! the identity's bytes. Everything unsafe is in this file.
#![allow(unsafe_code)]

use std::ffi::{c_int, c_uchar};
use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;

use foreign_types_shared::ForeignTypeRef;
use openssl::error::ErrorStack;
use openssl::ex_data::Index;
use openssl::ssl::{Ssl, SslContextBuilder, SslRef};
use openssl_sys::{SSL, SSL_CIPHER, SSL_CTX, SSL_SESSION};
use zeroize::Zeroizing;

use crate::plane::tls::psk::PskHash;

/// Finds the TLS PSK for an identity: its cipher suite's hash and the key, or `None` for an
/// identity without one.
pub type PskLookup =
    Box<dyn Fn(&[u8]) -> Option<(PskHash, Zeroizing<Vec<u8>>)> + Send + Sync + 'static>;

type FindSession = unsafe extern "C" fn(
    ssl: *mut SSL,
    identity: *const c_uchar,
    identity_len: usize,
    sess: *mut *mut SSL_SESSION,
) -> c_int;

unsafe extern "C" {
    fn SSL_CTX_set_psk_find_session_callback(ctx: *mut SSL_CTX, cb: Option<FindSession>);
    fn SSL_SESSION_new() -> *mut SSL_SESSION;
    fn SSL_SESSION_set1_master_key(
        sess: *mut SSL_SESSION,
        key: *const c_uchar,
        len: usize,
    ) -> c_int;
    fn SSL_SESSION_set_cipher(sess: *mut SSL_SESSION, cipher: *const SSL_CIPHER) -> c_int;
    fn SSL_SESSION_set_protocol_version(sess: *mut SSL_SESSION, version: c_int) -> c_int;
    fn SSL_CIPHER_find(ssl: *mut SSL, ptr: *const c_uchar) -> *const SSL_CIPHER;
}

/// The ex-data slot of an `Ssl`'s [`PskLookup`].
fn lookup_index() -> Result<Index<Ssl, PskLookup>, ErrorStack> {
    static INDEX: OnceLock<Index<Ssl, PskLookup>> = OnceLock::new();
    if let Some(i) = INDEX.get() {
        return Ok(*i);
    }
    let i = Ssl::new_ex_index::<PskLookup>()?;
    Ok(*INDEX.get_or_init(|| i))
}

/// Makes `ssl` look PSKs up with `lookup`.
pub fn set_lookup(ssl: &mut SslRef, lookup: PskLookup) -> Result<(), ErrorStack> {
    ssl.set_ex_data(lookup_index()?, lookup);
    Ok(())
}

/// Makes every `Ssl` of the context find its PSKs with the [`PskLookup`] set on it.
pub fn install(ctx: &mut SslContextBuilder) -> Result<(), ErrorStack> {
    lookup_index()?;
    // SAFETY: `ctx.as_ptr()` is the builder's live SSL_CTX; the callback is a plain function
    // with the signature OpenSSL declares.
    unsafe { SSL_CTX_set_psk_find_session_callback(ctx.as_ptr(), Some(find_session)) };
    Ok(())
}

/// OpenSSL's callback: 1 with `*sess` set (a PSK) or null (no PSK for this identity), 0 to
/// abort the handshake. Never unwinds into C.
unsafe extern "C" fn find_session(
    ssl: *mut SSL,
    identity: *const c_uchar,
    identity_len: usize,
    sess: *mut *mut SSL_SESSION,
) -> c_int {
    if ssl.is_null() || sess.is_null() || (identity.is_null() && identity_len != 0) {
        return 0;
    }
    // SAFETY: OpenSSL passes a valid out pointer.
    unsafe { *sess = std::ptr::null_mut() };
    let found = std::panic::catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ssl` is the live SSL this handshake runs on; OpenSSL holds it for the
        // duration of the callback. The identity is `identity_len` readable bytes.
        let (ssl_ref, id) = unsafe {
            (
                SslRef::from_ptr(ssl),
                if identity_len == 0 {
                    &[][..]
                } else {
                    std::slice::from_raw_parts(identity, identity_len)
                },
            )
        };
        let lookup = ssl_ref.ex_data(lookup_index().ok()?)?;
        lookup(id)
    }));
    let Ok(found) = found else {
        return 0;
    };
    let Some((hash, key)) = found else {
        return 1;
    };
    // SAFETY: `ssl` is live (above); the suite id is two readable bytes; the session is fresh,
    // owned here until it is handed to OpenSSL through `*sess` (which then owns it) or freed.
    unsafe {
        let cipher = SSL_CIPHER_find(ssl, hash.suite_id().as_ptr());
        if cipher.is_null() {
            return 1;
        }
        let s = SSL_SESSION_new();
        if s.is_null() {
            return 0;
        }
        if SSL_SESSION_set1_master_key(s, key.as_ptr(), key.len()) != 1
            || SSL_SESSION_set_cipher(s, cipher) != 1
            || SSL_SESSION_set_protocol_version(s, openssl_sys::TLS1_3_VERSION) != 1
        {
            openssl_sys::SSL_SESSION_free(s);
            return 0;
        }
        *sess = s;
    }
    1
}
