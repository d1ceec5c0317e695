//! The byte stream under one queue: the TCP socket itself, or TLS 1.3 on it (an NVMe/TCP
//! secure channel, with a PSK), so the rest of the host reads and writes without caring which.
//!
//! TLS runs through the target's [`TlsLink`] (OpenSSL on the non-blocking socket, output
//! staged into full records), behind a mutex held only for one non-blocking read or write:
//! the queue's driver reads while submitters write. The handshake offers one PSK identity;
//! OpenSSL's client uses every such PSK with SHA-256 (TLS_AES_128_GCM_SHA256 and, for a
//! 48-byte key, TLS_CHACHA20_POLY1305_SHA256), as the Linux host's tlshd does, which Lamina
//! accepts for SHA-384 identities too.

use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::BytesMut;
use lamina_target::transport::tls::TlsLink;
use lamina_target::transport::tls::link::Nb;
use openssl::ssl::{ErrorCode, SslConnector, SslMethod, SslStream, SslVerifyMode, SslVersion};
use tokio::io::{Interest, Ready};
use tokio::net::TcpStream;

use crate::host::error::HostError;
use lamina_target::plane::keyring::interchange::{self, KeyKind};
use lamina_target::plane::tls::psk::{self, Derivation, Identity, PskHash};

/// What a TLS connection offers.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsPsk {
    /// The PSK identity (`NVMe0R01 <hostnqn> <subnqn>`...).
    pub identity: String,
    /// The TLS PSK (already derived from the configured key).
    pub psk: Vec<u8>,
}

impl TlsPsk {
    /// The identity and TLS PSK a host holding the configured key `text` (interchange
    /// format) offers for `hostnqn` and `subnqn`, derived as RFC 8446 and SPDK derive them.
    pub fn from_configured(
        text: &str,
        hostnqn: &str,
        subnqn: &str,
        version: u8,
    ) -> Result<Self, String> {
        let secret = interchange::parse(text).map_err(|e| e.to_string())?;
        let KeyKind::TlsPsk { hash: indicator } = secret.kind() else {
            return Err(format!("a {}, not a TLS PSK", secret.kind()));
        };
        let hash = PskHash::for_configured(indicator, secret.bytes().len())
            .ok_or("hash indicator and length do not match")?;
        let how = Derivation::Standard;
        let retained = psk::retained(how, secret.bytes(), indicator, hostnqn)
            .ok_or("NQN too long for HKDF's label")?;
        let digest = (version == 1).then(|| psk::digest(&retained, hash, hostnqn, subnqn));
        let identity = Identity::format(hash, hostnqn, subnqn, digest.as_deref());
        let id = Identity::parse(&identity).map_err(|e| e.to_string())?;
        let tls = psk::tls_psk(how, &retained, &id, &identity).ok_or("derivation failed")?;
        Ok(Self {
            identity,
            psk: tls.to_vec(),
        })
    }
}

impl std::fmt::Debug for TlsPsk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsPsk")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// A queue's stream.
#[derive(Debug)]
pub enum Link {
    /// Clear text.
    Plain(TcpStream),
    /// TLS on the socket.
    Tls {
        /// The socket (readiness, shutdown).
        tcp: Arc<TcpStream>,
        /// The TLS connection.
        tls: Mutex<TlsLink>,
    },
}

impl Link {
    /// The TCP socket.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(s) => s,
            Self::Tls { tcp, .. } => tcp,
        }
    }

    fn tls(tls: &Mutex<TlsLink>) -> MutexGuard<'_, TlsLink> {
        tls.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes without blocking; with TLS, first what is staged, then up to a stage of `iov`.
    pub fn try_write_vectored(&self, iov: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.try_write_vectored(iov),
            Self::Tls { tls, .. } => Self::tls(tls).write_vectored(iov),
        }
    }

    /// Sends staged TLS output; `Ok(true)` when nothing is left staged.
    pub fn flush_staged(&self) -> io::Result<bool> {
        match self {
            Self::Plain(_) => Ok(true),
            Self::Tls { tls, .. } => match Self::tls(tls).flush_staged() {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
                Err(e) => Err(e),
            },
        }
    }

    /// Whether TLS output waits for the socket.
    pub fn has_staged(&self) -> bool {
        match self {
            Self::Plain(_) => false,
            Self::Tls { tls, .. } => Self::tls(tls).has_staged(),
        }
    }

    /// Whether decrypted input waits inside TLS (the socket may never signal it).
    pub fn has_pending_input(&self) -> bool {
        match self {
            Self::Plain(_) => false,
            Self::Tls { tls, .. } => Self::tls(tls).pending(),
        }
    }

    /// Reads into `buf`'s spare capacity without blocking; `Ok(0)` at the end.
    pub fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.try_read_buf(buf),
            Self::Tls { tls, .. } => Self::tls(tls).read_into(buf),
        }
    }

    /// Waits for the socket's readiness.
    pub async fn ready(&self, interest: Interest) -> io::Result<Ready> {
        self.tcp().ready(interest).await
    }

    /// Writes all of `bytes` (the ICReq).
    pub async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() || self.has_staged() {
            if !self.flush_staged()? {
                self.tcp().writable().await?;
                continue;
            }
            if bytes.is_empty() {
                break;
            }
            match self.try_write_vectored(&[IoSlice::new(bytes)]) {
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.tcp().writable().await?,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Runs the client side of a TLS 1.3 handshake offering `psk` on `tcp`.
    pub async fn tls_connect(tcp: TcpStream, psk: TlsPsk) -> Result<Self, HostError> {
        let tls_err =
            |e: openssl::error::ErrorStack| HostError::io("TLS setup", io::Error::other(e));
        let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(tls_err)?;
        b.set_min_proto_version(Some(SslVersion::TLS1_3))
            .map_err(tls_err)?;
        b.set_max_proto_version(Some(SslVersion::TLS1_3))
            .map_err(tls_err)?;
        b.set_ciphersuites("TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256")
            .map_err(tls_err)?;
        b.set_verify(SslVerifyMode::NONE);
        let offer = psk.clone();
        b.set_psk_client_callback(move |_, _, id_out, psk_out| {
            let id = offer.identity.as_bytes();
            if id.len() >= id_out.len() || offer.psk.len() > psk_out.len() {
                return Ok(0);
            }
            id_out[..id.len()].copy_from_slice(id);
            id_out[id.len()] = 0;
            psk_out[..offer.psk.len()].copy_from_slice(&offer.psk);
            Ok(offer.psk.len())
        });
        let ssl = b
            .build()
            .configure()
            .and_then(|c| c.verify_hostname(false).into_ssl("nvme"))
            .map_err(tls_err)?;
        let tcp = Arc::new(tcp);
        let mut s = SslStream::new(ssl, Nb::new(tcp.clone(), Vec::new())).map_err(tls_err)?;
        loop {
            match s.connect() {
                Ok(()) => break,
                Err(e) if e.code() == ErrorCode::WANT_READ => tcp
                    .readable()
                    .await
                    .map_err(|e| HostError::io("TLS handshake", e))?,
                Err(e) if e.code() == ErrorCode::WANT_WRITE => tcp
                    .writable()
                    .await
                    .map_err(|e| HostError::io("TLS handshake", e))?,
                Err(e) => {
                    return Err(HostError::io(
                        "TLS handshake",
                        io::Error::other(format!("refused: {e}")),
                    ));
                }
            }
        }
        Ok(Self::Tls {
            tcp,
            tls: Mutex::new(TlsLink::new(s)),
        })
    }
}
