//! NVMe/TCP secure channels (TLS 1.3 with a pre-shared key, TP 8011): the server side of the
//! handshake on a port added with `secure_channel`, before the ICReq.
//!
//! OpenSSL (through the `openssl` crate, on the system's libssl) does the TLS: it is what
//! SPDK, nvme-cli and libnvme use, it has a long audit history and FIPS-validated builds, and,
//! unlike rustls today, a TLS 1.3 server with external PSKs. Only TLS 1.3 is offered, with the
//! two cipher suites NVMe/TCP names (TLS_AES_128_GCM_SHA256 for SHA-256 PSKs,
//! TLS_AES_256_GCM_SHA384 for SHA-384 ones) and TLS_CHACHA20_POLY1305_SHA256, which the Linux
//! host's tlshd offers for a SHA-384 key it uses with SHA-256; no certificates, no session
//! tickets, no resumption. The PSK for the identity a host offers comes from
//! [`crate::plane::tls::resolve`]; the identity is then who the connection is, and the Connect
//! on it must name the same host and subsystem.
//!
//! The ClientHello is read ahead of OpenSSL (and handed to it after): its PSK binder tells
//! which of the two derivations in use the host's PSK came from (see
//! `crate::plane::tls::psk::Derivation`), and a wrong key is named as such. A connection whose
//! first record is not a TLS handshake record (a clear-text ICReq) is closed at once, and so
//! is one whose handshake fails or does not finish within the connect deadline; each is counted in `lamina_tls_handshakes_total{result}` and logged once with the
//! peer's address, never with key material.

mod ffi;
pub mod link;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use openssl::ssl::{
    ErrorCode, Ssl, SslContext, SslMethod, SslMode, SslOptions, SslSessionCacheMode, SslStream,
    SslVersion,
};
use tokio::net::TcpStream;

use crate::plane::DataPlane;
use crate::plane::tls::client_hello::{self, ClientHello};
use crate::plane::tls::{Outcome, TlsPeer, resolve};
use link::Nb;
pub use link::TlsLink;

/// Why a handshake failed; the label is the metric's `result`.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The host spoke clear text on a TLS port.
    #[error("not a TLS ClientHello (a clear-text connection on a secure-channel port?)")]
    NotTls,
    /// The identity named no usable PSK.
    #[error("PSK identity refused: {0}")]
    Identity(crate::plane::tls::Refusal),
    /// TLS refused it (for example the host's PSK is not ours: the binder does not verify).
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// Not done within the connect deadline.
    #[error("TLS handshake not done in {0:?}")]
    Timeout(Duration),
}

impl HandshakeError {
    /// The metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::NotTls => "not_tls",
            Self::Identity(r) => r.label(),
            Self::Tls(_) => "handshake",
            Self::Timeout(_) => "timeout",
        }
    }
}

/// The server context every secure-channel connection shares.
fn context() -> Result<&'static SslContext, HandshakeError> {
    static CTX: OnceLock<Result<SslContext, String>> = OnceLock::new();
    CTX.get_or_init(|| build_context().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| HandshakeError::Tls(format!("TLS context: {e}")))
}

fn build_context() -> Result<SslContext, openssl::error::ErrorStack> {
    let mut b = SslContext::builder(SslMethod::tls_server())?;
    b.set_min_proto_version(Some(SslVersion::TLS1_3))?;
    b.set_max_proto_version(Some(SslVersion::TLS1_3))?;
    b.set_ciphersuites(
        "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
    )?;
    b.set_num_tickets(0)?;
    b.set_options(SslOptions::NO_TICKET);
    b.set_session_cache_mode(SslSessionCacheMode::OFF);
    b.set_mode(SslMode::ENABLE_PARTIAL_WRITE | SslMode::ACCEPT_MOVING_WRITE_BUFFER);
    ffi::install(&mut b)?;
    Ok(b.build())
}

/// Runs the server side of the handshake on `stream` within `deadline`: the established
/// link, and who the PSK proved the host to be.
pub async fn accept(
    plane: &Arc<DataPlane>,
    stream: Arc<TcpStream>,
    deadline: Duration,
) -> Result<(TlsLink, TlsPeer), HandshakeError> {
    match tokio::time::timeout(deadline, handshake(plane, stream)).await {
        Ok(r) => r,
        Err(_) => Err(HandshakeError::Timeout(deadline)),
    }
}

/// Largest ClientHello read ahead of OpenSSL.
const MAX_HELLO: usize = 64 * 1024;

/// Fills `buf` from the socket.
async fn read_exact(stream: &TcpStream, buf: &mut [u8]) -> std::io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        stream.readable().await?;
        match stream.try_read(&mut buf[got..]) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads the handshake records that hold the ClientHello: their raw bytes (for OpenSSL to
/// read again) and the ClientHello's PSK offers.
async fn read_client_hello(
    stream: &TcpStream,
) -> Result<(Vec<u8>, Option<ClientHello>), HandshakeError> {
    let io_err = |e: std::io::Error| HandshakeError::Tls(format!("reading the ClientHello: {e}"));
    let mut raw = Vec::new();
    let mut msg = Vec::new();
    loop {
        let mut header = [0u8; 5];
        read_exact(stream, &mut header).await.map_err(io_err)?;
        if header[0] != client_hello::HANDSHAKE {
            return Err(HandshakeError::NotTls);
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if len == 0 || raw.len() + len > MAX_HELLO {
            return Err(HandshakeError::Tls("malformed ClientHello record".into()));
        }
        let start = raw.len() + header.len();
        raw.extend_from_slice(&header);
        raw.resize(start + len, 0);
        read_exact(stream, &mut raw[start..])
            .await
            .map_err(io_err)?;
        msg.extend_from_slice(&raw[start..]);
        if let Some(total) = client_hello::message_len(&msg) {
            if total > MAX_HELLO {
                return Err(HandshakeError::Tls("ClientHello too long".into()));
            }
            if msg.len() >= total {
                return Ok((raw, ClientHello::parse(&msg[..total])));
            }
        }
    }
}

async fn handshake(
    plane: &Arc<DataPlane>,
    stream: Arc<TcpStream>,
) -> Result<(TlsLink, TlsPeer), HandshakeError> {
    let io_err = |e: std::io::Error| HandshakeError::Tls(e.to_string());
    let (raw, hello) = read_client_hello(&stream).await?;
    let tls = |e: openssl::error::ErrorStack| HandshakeError::Tls(e.to_string());
    let mut ssl = Ssl::new(context()?).map_err(tls)?;
    // Every offered identity resolved once, before OpenSSL reads the ClientHello: the cipher
    // suites are cut to those of the first usable PSK's hash, so OpenSSL picks one it can use
    // the PSK with, and OpenSSL's lookup below takes the answers from here.
    let offers: Vec<_> = hello
        .as_ref()
        .map(|h| {
            h.offers
                .iter()
                .map(|o| (o.identity.clone(), resolve(plane, &o.identity, Some(h))))
                .collect()
        })
        .unwrap_or_default();
    if let Some((peer, _)) = offers.iter().find_map(|(_, r)| r.as_ref().ok()) {
        ssl.set_ciphersuites(peer.hash.suites()).map_err(tls)?;
    }
    let outcome: Outcome = Outcome::default();
    let (p, o) = (plane.clone(), outcome.clone());
    ffi::set_lookup(
        &mut ssl,
        Box::new(move |id: &[u8]| {
            // (An identity the ClientHello did not show has no binder to check.)
            let result = offers
                .iter()
                .find(|(offered, _)| offered.as_slice() == id)
                .map_or_else(|| resolve(&p, id, None), |(_, r)| r.clone());
            match result {
                Ok((peer, psk)) => {
                    let hash = peer.hash;
                    *o.lock() = Some(Ok(peer));
                    Some((hash, psk))
                }
                Err(e) => {
                    *o.lock() = Some(Err(e));
                    None
                }
            }
        }),
    )
    .map_err(tls)?;
    let mut s = SslStream::new(ssl, Nb::new(stream.clone(), raw)).map_err(tls)?;
    loop {
        match s.accept() {
            Ok(()) => break,
            Err(e) if e.code() == ErrorCode::WANT_READ => {
                stream.readable().await.map_err(io_err)?;
            }
            Err(e) if e.code() == ErrorCode::WANT_WRITE => {
                stream.writable().await.map_err(io_err)?;
            }
            Err(e) => {
                return Err(match outcome.lock().take() {
                    Some(Err(refusal)) => HandshakeError::Identity(refusal),
                    _ => HandshakeError::Tls(describe(&e)),
                });
            }
        }
    }
    match outcome.lock().take() {
        Some(Ok(peer)) => Ok((TlsLink::new(s), peer)),
        Some(Err(refusal)) => Err(HandshakeError::Identity(refusal)),
        None => Err(HandshakeError::Tls("no PSK was used".into())),
    }
}

/// A handshake error in a line: OpenSSL's reasons, or the I/O error.
fn describe(e: &openssl::ssl::Error) -> String {
    if let Some(stack) = e.ssl_error() {
        let reasons: Vec<String> = stack
            .errors()
            .iter()
            .map(|x| x.reason().unwrap_or("unknown").to_owned())
            .collect();
        if !reasons.is_empty() {
            return reasons.join("; ");
        }
    }
    match e.io_error() {
        Some(io) => io.to_string(),
        None => format!("{:?}", e.code()),
    }
}
