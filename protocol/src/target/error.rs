//! Why a target queue ended: [`QueueError`], with the Fatal Error Status, the offending field
//! and who broke the rule, so the connection task logs and counts it without parsing a string.

use bytes::Bytes;

use crate::tcp::{DecodeError, Fes, TermReq};

/// Who broke a rule that ended the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The host sent something the protocol forbids.
    Host,
    /// The target could not go on (it reports it to the host all the same).
    Target,
}

/// A rule of the queue, above the framer, that the host broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The first PDU was not an ICReq.
    IcReqFirst,
    /// A PDU type that is valid on the wire but not once the queue is established (a second
    /// ICReq is caught by the framer; this is anything else the host may not send).
    UnexpectedPdu,
    /// A command reused the CID of one still in flight.
    CidInFlight,
    /// More commands in flight than the submission queue holds.
    SqOverrun,
    /// H2CData for a transfer tag with no transfer in progress.
    UnknownTransferTag,
    /// H2CData whose CCCID is not the command of its transfer tag.
    TransferCommandMismatch,
    /// H2CData that does not start where the previous data ended, or carries no data.
    DataOffset,
    /// H2CData reaching past the data the R2T asked for.
    DataPastR2t,
    /// H2CData whose LAST_PDU flag disagrees with the end of the range its R2T asked for.
    LastPduFlag,
    /// H2CData with a bad data digest for no transfer in progress.
    DigestWithoutTransfer,
}

impl Rule {
    /// What the rule says, for the log.
    pub const fn describe(self) -> &'static str {
        match self {
            Self::IcReqFirst => "first PDU is not an ICReq",
            Self::UnexpectedPdu => "unexpected PDU after the IC exchange",
            Self::CidInFlight => "a command reused the CID of one still in flight",
            Self::SqOverrun => "more commands in flight than the submission queue holds",
            Self::UnknownTransferTag => "H2CData for an unknown transfer tag",
            Self::TransferCommandMismatch => {
                "H2CData CCCID does not match the transfer tag's command"
            }
            Self::DataOffset => "H2CData DATAO is not where the previous data ended",
            Self::DataPastR2t => "H2CData reaches past the data the R2T asked for",
            Self::LastPduFlag => "H2CData LAST_PDU flag does not match the end of the R2T",
            Self::DigestWithoutTransfer => "H2CData with a bad digest for no transfer in progress",
        }
    }
}

/// A broken rule found above the framer: what the TermReq reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule.
    pub rule: Rule,
    /// Fatal Error Status.
    pub fes: Fes,
    /// Byte offset of the offending field in the PDU header (FEI, where the FES has one).
    pub field_offset: u32,
    /// Who broke it.
    pub cause: Cause,
    /// The header of the PDU in error (at most 128 bytes; empty when not kept).
    pub header: Bytes,
}

impl Violation {
    pub(crate) fn host(rule: Rule, fes: Fes, field_offset: u32) -> Self {
        Self {
            rule,
            fes,
            field_offset,
            cause: Cause::Host,
            header: Bytes::new(),
        }
    }
}

/// A byte offset as FEI carries it.
pub(crate) fn field_offset(o: usize) -> u32 {
    u32::try_from(o).unwrap_or(u32::MAX)
}

/// Which deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// No ICReq, or no successful Connect, before the connect deadline.
    Connect,
}

/// Why a target queue ended with an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// A PDU the framer refused (see [`DecodeError`]).
    #[error("{0}")]
    Decode(DecodeError),
    /// A rule of the queue was broken.
    #[error("{}", .0.rule.describe())]
    Violation(Violation),
    /// The host sent an H2CTermReq.
    #[error("host terminated the connection (H2CTermReq, FES {:#x})", .0.0)]
    HostTerminated(Fes),
    /// A deadline passed.
    #[error("no ICReq and Connect in time")]
    Timeout(Deadline),
}

impl QueueError {
    /// Who caused it.
    pub fn cause(&self) -> Cause {
        match self {
            Self::Violation(v) => v.cause,
            Self::Decode(_) | Self::HostTerminated(_) | Self::Timeout(_) => Cause::Host,
        }
    }

    /// The Fatal Error Status the target reports, if it sends a TermReq.
    pub fn fes(&self) -> Option<Fes> {
        match self {
            Self::Decode(e) => e.fes(),
            Self::Violation(v) => Some(v.fes),
            Self::HostTerminated(_) | Self::Timeout(_) => None,
        }
    }

    /// The C2HTermReq that reports it, or `None` when none is sent (the host terminated, a
    /// deadline passed, or a TermReq of invalid length arrived).
    pub fn term_req(&self) -> Option<TermReq> {
        match self {
            Self::Decode(e) => e.term_req(),
            Self::Violation(v) => Some(TermReq {
                fes: v.fes,
                fei: if v.fes.has_fei() { v.field_offset } else { 0 },
                header: v.header.clone(),
            }),
            Self::HostTerminated(_) | Self::Timeout(_) => None,
        }
    }
}
