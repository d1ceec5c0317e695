//! [`HostError`], the one error type of the host layer, and [`Violation`], every way this host
//! finds a target breaking NVMe/TCP or the NVMe-oF bring-up rules.
//!
//! Scope follows the NVMe/TCP rules: an NVMe status is a command fault (the queue lives on);
//! a [`Violation`] found on a queue is fatal to that queue (the host sends an H2CTermReq when
//! the violation has a Fatal Error Status, then closes the connection, failing every command
//! in flight with the same error). Errors are `Clone` because one fatal error completes many
//! waiting commands.

use std::sync::Arc;
use std::time::Duration;

use lamina_protocol::DecodeError;
use lamina_protocol::nvme::{Status, StatusCode};
use lamina_protocol::tcp::{Fes, PduType};

/// An NVMe completion status other than success, with the command that got it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandStatus {
    /// Opcode of the failed command (FCTYPE for Fabrics commands is not included).
    pub opcode: u8,
    /// The status from the CQE.
    pub status: Status,
    /// Completion DW0 (for a failed Connect: IATTR and IPO of the invalid parameter).
    pub dw0: u32,
}

impl core::fmt::Display for CommandStatus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = self.status;
        write!(
            f,
            "opcode {:#04x}: SCT {:#x} SC {:#04x} ({:?}){}{}",
            self.opcode,
            s.code.sct.0,
            s.code.sc,
            s.code,
            if s.dnr { " DNR" } else { "" },
            if s.more { " MORE" } else { "" },
        )
    }
}

/// Something the target did that NVMe/TCP, NVMe-oF or the Linux host's bring-up checks forbid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// The framer rejected the byte stream (bad header field, digest, length, sequence...).
    #[error("malformed PDU: {0}")]
    Decode(DecodeError),
    /// A PDU names a command identifier that is not outstanding on this queue.
    #[error("{pdu_type:?} for command {cid:#06x}, which is not outstanding")]
    UnknownCommand {
        /// PDU type received.
        pdu_type: PduType,
        /// CID or CCCID it carried.
        cid: u16,
    },
    /// C2HData for a command that does not read, or R2T for one that does not write data by
    /// R2T (no data, read-type, or in-capsule data).
    #[error("{pdu_type:?} for command {cid:#06x}, which has no such data transfer")]
    WrongTransfer {
        /// PDU type received.
        pdu_type: PduType,
        /// Command identifier.
        cid: u16,
    },
    /// DATAO (C2HData) or R2TO (R2T) is not where the transfer stands: data must arrive in
    /// order, without gaps or overlaps, and R2Ts must ask for the next range.
    #[error("{pdu_type:?} for command {cid:#06x} at offset {got}, expected {expected}")]
    DataOffset {
        /// PDU type received.
        pdu_type: PduType,
        /// Command identifier.
        cid: u16,
        /// Offset the transfer stands at.
        expected: u32,
        /// Offset the PDU carried.
        got: u32,
    },
    /// Data beyond the end of the command's transfer (FES Data Transfer Out of Range).
    #[error(
        "{pdu_type:?} for command {cid:#06x}: {len} bytes at {offset} exceed the {transfer}-byte transfer"
    )]
    DataOutOfRange {
        /// PDU type received.
        pdu_type: PduType,
        /// Command identifier.
        cid: u16,
        /// Offset.
        offset: u32,
        /// Length.
        len: u32,
        /// Transfer length of the command.
        transfer: u32,
    },
    /// A read completed successfully with less data than it asked for.
    #[error("command {cid:#06x} completed with {received} of {expected} data bytes")]
    ShortData {
        /// Command identifier.
        cid: u16,
        /// Bytes received.
        received: u32,
        /// Bytes expected.
        expected: u32,
    },
    /// A write completed successfully before the target asked for all its data.
    #[error(
        "command {cid:#06x} completed after only {sent} of {expected} data bytes were requested"
    )]
    IncompleteWrite {
        /// Command identifier.
        cid: u16,
        /// Bytes the target asked for.
        sent: u32,
        /// Bytes the command carries.
        expected: u32,
    },
    /// C2HData with SUCCESS although this host did not disable SQ flow control in Connect.
    #[error("C2HData SUCCESS for command {cid:#06x} while SQ flow control is enabled")]
    SuccessWithFlowControl {
        /// Command identifier.
        cid: u16,
    },
    /// A PDU type a host never receives once the connection is up.
    #[error("unexpected {0:?}")]
    UnexpectedPdu(PduType),
    /// The ICResp fails a check the Linux host applies (`nvme_tcp_init_connection`).
    #[error("ICResp rejected: {0}")]
    IcResp(&'static str),
    /// Something other than the ICResp came back first.
    #[error("expected an ICResp, got {0:?}")]
    NotIcResp(PduType),
    /// The Identify Controller data fails a check the Linux host applies.
    #[error("Identify Controller rejected: {0}")]
    Identify(String),
    /// The controller reports a fatal status (CSTS.CFS) or never becomes ready.
    #[error("controller state: {0}")]
    ControllerState(String),
}

impl Violation {
    /// The Fatal Error Status and Fatal Error Information of the H2CTermReq that reports this
    /// violation, or `None` when none is sent (the framer decides for decode errors).
    pub fn fes(&self) -> Option<(Fes, u32)> {
        use lamina_protocol::tcp::{DATA_CCCID_OFFSET, DATA_DATAO_OFFSET, R2T_R2TO_OFFSET};
        let off = |o: usize| u32::try_from(o).unwrap_or(0);
        match self {
            Self::Decode(e) => e
                .fes()
                .map(|fes| (fes, if fes.has_fei() { e.fei() } else { 0 })),
            Self::UnknownCommand { .. } | Self::WrongTransfer { .. } => {
                Some((Fes::INVALID_HEADER_FIELD, off(DATA_CCCID_OFFSET)))
            }
            Self::DataOffset { pdu_type, .. } => {
                let at = if *pdu_type == PduType::R2T {
                    R2T_R2TO_OFFSET
                } else {
                    DATA_DATAO_OFFSET
                };
                Some((Fes::INVALID_HEADER_FIELD, off(at)))
            }
            Self::DataOutOfRange { .. } => Some((Fes::DATA_OUT_OF_RANGE, 0)),
            Self::SuccessWithFlowControl { .. } => Some((Fes::INVALID_HEADER_FIELD, 1)),
            Self::UnexpectedPdu(_) => Some((Fes::PDU_SEQUENCE_ERROR, 0)),
            Self::ShortData { .. }
            | Self::IncompleteWrite { .. }
            | Self::IcResp(_)
            | Self::NotIcResp(_)
            | Self::Identify(_)
            | Self::ControllerState(_) => None,
        }
    }
}

/// Every error of the host layer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HostError {
    /// A socket operation failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The operating system's error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// An operation did not finish in time.
    #[error("{op} timed out after {after:?}")]
    Timeout {
        /// What timed out.
        op: &'static str,
        /// The limit.
        after: Duration,
    },
    /// The command completed with an error status.
    #[error("NVMe status: {0}")]
    Status(CommandStatus),
    /// The target violated the protocol; the queue was torn down.
    #[error("protocol violation by the target: {0}")]
    Protocol(Violation),
    /// The target sent a C2HTermReq and closed the connection.
    #[error("target terminated the connection: FES {fes:?}, FEI {fei}")]
    Terminated {
        /// Fatal Error Status.
        fes: Fes,
        /// Fatal Error Information.
        fei: u32,
    },
    /// The data digest of C2HData for this command did not match (the Linux host completes
    /// such a command with Data Transfer Error; the queue lives on).
    #[error("data digest mismatch on command {cid:#06x}")]
    DataDigest {
        /// Command identifier.
        cid: u16,
    },
    /// The target closed the connection.
    #[error("connection closed by the target")]
    ConnectionClosed,
    /// Every command slot of the queue is in use.
    #[error("no free command slot on the queue")]
    QueueFull,
    /// The queue was shut down on this side (dropped, disconnected or after an error).
    #[error("queue closed")]
    QueueClosed,
    /// A request this host refuses to send (bad size, unsupported by the controller...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl HostError {
    /// Wraps an I/O error.
    pub fn io(op: &'static str, source: std::io::Error) -> Self {
        Self::Io {
            op,
            source: Arc::new(source),
        }
    }

    /// The NVMe status, when this is one.
    pub fn status(&self) -> Option<Status> {
        match self {
            Self::Status(s) => Some(s.status),
            _ => None,
        }
    }

    /// Whether this is an NVMe status with the given code.
    pub fn is_status(&self, code: StatusCode) -> bool {
        self.status().is_some_and(|s| s.code == code)
    }

    /// Whether the connection this error came from is gone (as opposed to one command failing).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::Io { .. }
                | Self::Protocol(_)
                | Self::Terminated { .. }
                | Self::ConnectionClosed
                | Self::QueueClosed
        )
    }
}

impl From<lamina_protocol::nvme::NqnError> for HostError {
    fn from(e: lamina_protocol::nvme::NqnError) -> Self {
        Self::InvalidRequest(format!("NQN: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_display_names_the_code() {
        let e = HostError::Status(CommandStatus {
            opcode: 0x02,
            status: Status::dnr(StatusCode::LBA_OUT_OF_RANGE),
            dw0: 0,
        });
        let text = e.to_string();
        assert!(text.contains("LBA_OUT_OF_RANGE"), "{text}");
        assert!(text.contains("DNR"), "{text}");
        assert!(e.is_status(StatusCode::LBA_OUT_OF_RANGE));
        assert!(!e.is_fatal());
    }

    #[test]
    fn violations_map_to_term_req_fields() {
        let v = Violation::DataOffset {
            pdu_type: PduType::C2H_DATA,
            cid: 1,
            expected: 0,
            got: 8,
        };
        assert_eq!(v.fes(), Some((Fes::INVALID_HEADER_FIELD, 12)));
        let v = Violation::DataOffset {
            pdu_type: PduType::R2T,
            cid: 1,
            expected: 0,
            got: 8,
        };
        assert_eq!(v.fes(), Some((Fes::INVALID_HEADER_FIELD, 12)));
        let v = Violation::DataOutOfRange {
            pdu_type: PduType::C2H_DATA,
            cid: 1,
            offset: 0,
            len: 8,
            transfer: 4,
        };
        assert_eq!(v.fes(), Some((Fes::DATA_OUT_OF_RANGE, 0)));
        assert_eq!(Violation::IcResp("cpda").fes(), None);
    }
}
