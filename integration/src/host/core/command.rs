//! What a caller submits ([`Command`]: an SQE and its data [`Transfer`]) and what it gets back
//! ([`Completion`]).

use bytes::{Bytes, BytesMut};
use lamina_protocol::nvme::Identify;
use lamina_protocol::nvme::identify::Cns;
use lamina_protocol::nvme::{Cqe, Sqe};

use crate::host::HostError;
use crate::host::error::CommandStatus;

/// The data a command moves.
#[derive(Debug, Clone, Default)]
pub enum Transfer {
    /// No data.
    #[default]
    None,
    /// Host to controller: in-capsule when it fits the queue's in-capsule data size, otherwise
    /// fetched by the target with R2T/H2CData.
    ToController(Bytes),
    /// Host to controller, always by R2T/H2CData even when it would fit in the capsule.
    ToControllerByR2t(Bytes),
    /// Controller to host: `len` bytes appended to `buf` (which is cleared first; give it
    /// capacity to avoid a reallocation).
    FromController {
        /// Destination buffer.
        buf: BytesMut,
        /// Bytes the command reads.
        len: u32,
    },
    /// Controller to host, `len` bytes counted and dropped (load generation).
    Discard(u32),
}

impl Transfer {
    /// A read of `len` bytes into a new buffer.
    pub fn read(len: u32) -> Self {
        Self::FromController {
            buf: BytesMut::with_capacity(usize::try_from(len).unwrap_or(0)),
            len,
        }
    }

    /// Bytes the command moves, in either direction.
    pub fn len(&self) -> u64 {
        match self {
            Self::None => 0,
            Self::ToController(d) | Self::ToControllerByR2t(d) => {
                u64::try_from(d.len()).unwrap_or(u64::MAX)
            }
            Self::FromController { len, .. } | Self::Discard(len) => u64::from(*len),
        }
    }

    /// Whether the command moves no data.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A command to submit: the SQE (its CID and DPTR are filled in by the queue) and its data.
#[derive(Debug, Clone, Default)]
pub struct Command {
    /// Submission queue entry.
    pub sqe: Sqe,
    /// Data transfer.
    pub transfer: Transfer,
}

impl Command {
    /// A command without data.
    pub fn new(sqe: Sqe) -> Self {
        Self {
            sqe,
            transfer: Transfer::None,
        }
    }

    /// A command with a data transfer.
    pub fn with_transfer(sqe: Sqe, transfer: Transfer) -> Self {
        Self { sqe, transfer }
    }
}

/// A finished command.
#[derive(Debug, Clone)]
pub struct Completion {
    /// The completion queue entry (synthesized with a success status, the command's CID and
    /// the queue's SQID when the target completed the command with C2HData SUCCESS).
    pub cqe: Cqe,
    /// The read buffer of a [`Transfer::FromController`], holding the data received.
    pub data: Option<BytesMut>,
    /// Data bytes received from the controller.
    pub received: u32,
    /// The target completed the command with the C2HData SUCCESS flag (no CapsuleResp).
    pub by_success_flag: bool,
    /// Opcode of the command.
    pub opcode: u8,
}

impl Completion {
    /// Whether the status is Successful Completion.
    pub fn is_success(&self) -> bool {
        self.cqe.status.code.is_success()
    }

    /// `Ok(self)` on success, the status as [`HostError::Status`] otherwise.
    pub fn into_result(self) -> Result<Self, HostError> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(HostError::Status(CommandStatus {
                opcode: self.opcode,
                status: self.cqe.status,
                dw0: self.cqe.dw0,
            }))
        }
    }

    /// The read data (empty when the command read nothing).
    pub fn take_data(&mut self) -> BytesMut {
        self.data.take().unwrap_or_default()
    }
}

/// The Identify command for `cns` (NSID and CNTID as the CNS needs), reading 4096 bytes.
pub fn identify_command(cns: Cns, nsid: u32, csi: u8) -> Command {
    let sqe = Identify {
        nsid,
        cns,
        csi,
        ..Identify::default()
    }
    .to_sqe();
    Command::with_transfer(sqe, Transfer::read(4096))
}
