//! A TLS connection after its handshake: what the connection task reads and writes through
//! instead of the bare socket. OpenSSL runs on the non-blocking socket (a read or write that
//! would block is `WouldBlock`, and the task waits for readiness as it does without TLS).
//!
//! Output is staged: the task's queued PDUs (many small slices) are copied into one buffer of
//! up to `STAGE` (64 KiB) bytes, which OpenSSL cuts into full records, instead of one record per
//! slice. Once staged the bytes are the link's: OpenSSL requires a write it could not finish
//! to be retried with the same bytes, which the stage keeps until it is all out.
#![allow(unsafe_code)]

use std::io::{self, IoSlice, Write as _};
use std::sync::Arc;

use bytes::BytesMut;
use openssl::ssl::SslStream;
use tokio::net::TcpStream;

/// Most output bytes staged at once (four full TLS records).
const STAGE: usize = 64 * 1024;

/// The socket as OpenSSL's transport: non-blocking reads and writes, the bytes the target
/// read ahead of OpenSSL (the ClientHello) first.
#[derive(Debug)]
pub struct Nb {
    stream: Arc<TcpStream>,
    replay: Vec<u8>,
    replayed: usize,
}

impl Nb {
    /// Reads `replay`, then the socket.
    pub fn new(stream: Arc<TcpStream>, replay: Vec<u8>) -> Self {
        Self {
            stream,
            replay,
            replayed: 0,
        }
    }
}

impl io::Read for Nb {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = &self.replay[self.replayed..];
        if left.is_empty() {
            return self.stream.try_read(buf);
        }
        let n = left.len().min(buf.len());
        buf[..n].copy_from_slice(&left[..n]);
        self.replayed += n;
        if self.replayed == self.replay.len() {
            self.replay = Vec::new();
            self.replayed = 0;
        }
        Ok(n)
    }
}

impl io::Write for Nb {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.try_write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An established TLS connection.
#[derive(Debug)]
pub struct TlsLink {
    ssl: SslStream<Nb>,
    staged: Vec<u8>,
    /// How much of `staged` OpenSSL has taken.
    sent: usize,
}

impl TlsLink {
    pub fn new(ssl: SslStream<Nb>) -> Self {
        Self {
            ssl,
            staged: Vec::with_capacity(STAGE),
            sent: 0,
        }
    }

    /// The negotiated cipher suite.
    pub fn cipher(&self) -> &'static str {
        self.ssl
            .ssl()
            .current_cipher()
            .and_then(openssl::ssl::SslCipherRef::standard_name)
            .unwrap_or("unknown")
    }

    /// Decrypts what has arrived into `buf`'s spare capacity: `Ok(0)` when the host closed
    /// (close_notify or EOF), `WouldBlock` when a whole record has not arrived yet.
    pub fn read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        let spare = buf.spare_capacity_mut();
        if spare.is_empty() {
            return Err(io::Error::other("TLS read into a full buffer"));
        }
        let n = self.ssl.read_uninit(spare)?;
        // SAFETY: OpenSSL initialised the first `n` bytes of the spare capacity.
        unsafe { buf.set_len(buf.len() + n) };
        // Acknowledge at once: a host's TLS stack that writes a PDU as several records without
        // TCP_NODELAY (SPDK's ssl socket) holds the last one back until the previous segment
        // is acknowledged, and a delayed ACK would stall each large write by 40 ms.
        let _ = socket2::SockRef::from(&*self.ssl.get_ref().stream).set_tcp_quickack(true);
        Ok(n)
    }

    /// Whether decrypted input waits inside OpenSSL (a record read only in part): the socket
    /// may not signal readable for it.
    pub fn pending(&self) -> bool {
        self.ssl.ssl().pending() > 0
    }

    /// Whether staged output is still waiting for the socket.
    pub fn has_staged(&self) -> bool {
        self.sent < self.staged.len()
    }

    /// Sends what is staged; `WouldBlock` until it is all out.
    pub fn flush_staged(&mut self) -> io::Result<()> {
        while self.has_staged() {
            match self.ssl.write(&self.staged[self.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(e) => return Err(e),
            }
        }
        self.staged.clear();
        self.sent = 0;
        Ok(())
    }

    /// Takes up to `STAGE` bytes of `iov` and starts sending them: how many were taken
    /// (they are the link's now), or `WouldBlock` while earlier output is still staged.
    pub fn write_vectored(&mut self, iov: &[IoSlice<'_>]) -> io::Result<usize> {
        self.flush_staged()?;
        for s in iov {
            let room = STAGE - self.staged.len();
            if room == 0 {
                break;
            }
            self.staged.extend_from_slice(&s[..s.len().min(room)]);
        }
        let taken = self.staged.len();
        match self.flush_staged() {
            Ok(()) => Ok(taken),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(taken),
            Err(e) => Err(e),
        }
    }

    /// Sends close_notify if the socket takes it now (best effort, at close).
    pub fn close(&mut self) {
        let _ = self.flush_staged();
        let _ = self.ssl.shutdown();
    }
}
