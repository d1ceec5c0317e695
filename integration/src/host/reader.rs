//! [`PduReader`]: the receive side of one connection. It reads whatever the socket holds (many
//! PDUs per system call), cuts it into PDUs with the protocol crate's [`Framer`] and hands them
//! to a [`QueueCore`], turning framing faults into the core's fatal errors.
//!
//! Received payloads are views of the receive buffer; once the core has placed or dropped them
//! the buffer's allocation is unique again and `reserve` reuses it, so steady-state reads do
//! not allocate.

use std::io;

use crate::host::link::Link;
use bytes::BytesMut;
use lamina_protocol::{DecodeError, Framer, Pdu};

use crate::host::core::{PduHead, QueueCore};
use crate::host::error::{HostError, Violation};

/// Free space offered to each read.
const READ_CHUNK: usize = 256 * 1024;

/// What the socket gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filled {
    /// This many bytes were read.
    Bytes(usize),
    /// Nothing was ready.
    WouldBlock,
    /// The peer closed the connection.
    Eof,
}

/// Framer and receive buffer of one connection.
#[derive(Debug)]
pub struct PduReader {
    framer: Framer,
    rx: BytesMut,
}

impl PduReader {
    /// Wraps a framer past the IC exchange and any bytes already read after the ICResp.
    pub fn new(framer: Framer, rx: BytesMut) -> Self {
        Self { framer, rx }
    }

    /// Reads what `stream` has without blocking (at most a few reads, so that one busy
    /// connection cannot starve the others sharing a thread).
    pub fn fill(&mut self, stream: &Link) -> io::Result<Filled> {
        let mut total = 0;
        for _ in 0..4 {
            self.rx.reserve(READ_CHUNK);
            let spare = self.rx.capacity() - self.rx.len();
            match stream.try_read_buf(&mut self.rx) {
                Ok(0) if total == 0 => return Ok(Filled::Eof),
                Ok(0) => break,
                Ok(n) => {
                    total += n;
                    if n < spare {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(if total == 0 {
            Filled::WouldBlock
        } else {
            Filled::Bytes(total)
        })
    }

    /// Hands every whole PDU in the buffer to `core`; returns how many. A fatal error has
    /// already been passed to [`QueueCore::fail`] (which queued the H2CTermReq, if any) when
    /// it is returned.
    pub fn dispatch(&mut self, core: &mut QueueCore) -> Result<usize, HostError> {
        let mut count = 0;
        loop {
            let head = PduHead::peek(&self.rx);
            let result = match self.framer.decode(&mut self.rx) {
                Ok(None) => return Ok(count),
                Ok(Some(pdu)) => core.handle_pdu(pdu),
                Err(DecodeError::DataDigest { .. }) => match head.c2h_data() {
                    Some(data_head) => core.handle_data_digest(data_head),
                    // Only C2HData carries data to a host; anything else is a framer bug.
                    None => Err(HostError::Protocol(Violation::UnexpectedPdu(
                        lamina_protocol::tcp::PduType::C2H_DATA,
                    ))),
                },
                Err(e) => Err(HostError::Protocol(Violation::Decode(e))),
            };
            count += 1;
            if let Err(e) = result {
                core.fail(e.clone(), head.as_slice());
                return Err(e);
            }
        }
    }

    /// Decodes the next PDU without a core (used before the queue exists, for the ICResp).
    pub fn next_pdu(&mut self) -> Result<Option<Pdu>, DecodeError> {
        self.framer.decode(&mut self.rx)
    }

    /// Appends received bytes by hand (tests and benchmarks feed byte vectors this way).
    pub fn feed(&mut self, bytes: &[u8]) {
        self.rx.extend_from_slice(bytes);
    }

    /// The framer, to change its negotiated parameters.
    pub fn framer_mut(&mut self) -> &mut Framer {
        &mut self.framer
    }
}
