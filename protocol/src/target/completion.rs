//! What the controller hands back to the queue: a [`Completion`] (status, result dwords, data
//! for the host, and whether the queue closes afterwards), and what the queue hands the
//! controller: a [`Command`] whose data is all here.

use bytes::Bytes;

use crate::nvme::{Sqe, Status, StatusCode};

/// A command ready to run: its SQE and all its host-to-controller data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The submission queue entry.
    pub sqe: Sqe,
    /// Host-to-controller data (in-capsule, or gathered from H2CData), empty if none.
    pub data: Bytes,
    /// Controller-to-host bytes the host's SGL describes (0 if none).
    pub c2h_len: u32,
}

/// What happens to the queue after the completion is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum After {
    /// Nothing special.
    #[default]
    Continue,
    /// Close the queue's connection once the completion is sent (Disconnect).
    CloseQueue,
}

/// One command's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The command identifier.
    pub cid: u16,
    /// The status.
    pub status: Status,
    /// Command specific DW0.
    pub dw0: u32,
    /// Command specific DW1.
    pub dw1: u32,
    /// Data for the host (sent as C2HData when the status is success).
    pub data: Option<Bytes>,
    /// What the queue does next.
    pub after: After,
}

impl Completion {
    /// Success with no result.
    pub fn ok(cid: u16) -> Self {
        Self::with_status(cid, Status::SUCCESS)
    }

    /// A completion with `status`.
    pub fn with_status(cid: u16, status: Status) -> Self {
        Self {
            cid,
            status,
            dw0: 0,
            dw1: 0,
            data: None,
            after: After::Continue,
        }
    }

    /// A failure with `code` and Do Not Retry.
    pub fn error(cid: u16, code: StatusCode) -> Self {
        Self::with_status(cid, Status::dnr(code))
    }

    /// Success carrying data for the host.
    pub fn data(cid: u16, data: Bytes) -> Self {
        Self {
            data: Some(data),
            ..Self::ok(cid)
        }
    }

    /// Success with DW0 set.
    pub fn dw0(cid: u16, dw0: u32) -> Self {
        Self {
            dw0,
            ..Self::ok(cid)
        }
    }
}
