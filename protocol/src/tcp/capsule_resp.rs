//! CapsuleResp: a response capsule, controller to host, carrying the 16-byte CQE.

use bytes::BytesMut;

use super::error::{DecodeError, ErrorHeader};
use super::header::{PduFlags, PduType};
use super::layout::{Layout, TxParams, write_head};
use crate::nvme::{CQE_LEN, Cqe};

//= NVMe/TCP 1.0 §3.6.2.7, Figure 25
//# HLEN: Fixed length of 24 bytes (18h).
//# PDO: Reserved
//# PLEN: Length of PDU Header and HDGST (if present) in bytes.
//# NVMe-oF Response Capsule CQE (RCCQE): Response Capsule CQE.
// HLEN 24 (CH + 16-byte CQE), no data.
/// HLEN of a CapsuleResp.
pub const CAPSULE_RESP_HLEN: usize = 24;
/// Byte offset of the CQE.
pub const CAPSULE_RESP_CQE_OFFSET: usize = 8;

/// A response capsule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CapsuleResp {
    /// The completion queue entry.
    pub cqe: Cqe,
}

impl CapsuleResp {
    fn layout(tx: TxParams) -> Layout {
        let hd = tx.digests.header_len(PduType::CAPSULE_RESP);
        Layout {
            hlen: CAPSULE_RESP_HLEN,
            hdgst_len: hd,
            pdo: 0,
            data_len: 0,
            ddgst_len: 0,
            plen: CAPSULE_RESP_HLEN + hd,
        }
    }

    /// PLEN of the encoded PDU.
    pub fn encoded_len(&self, tx: TxParams) -> usize {
        Self::layout(tx).plen
    }

    /// Appends the PDU to `dst`.
    pub fn encode(&self, tx: TxParams, dst: &mut BytesMut) {
        write_head(
            PduType::CAPSULE_RESP,
            PduFlags(0),
            &Self::layout(tx),
            dst,
            |w| {
                w.bytes(CAPSULE_RESP_CQE_OFFSET, &self.cqe.to_bytes());
            },
        );
    }

    pub(crate) fn decode_psh(head: &[u8]) -> Result<Self, DecodeError> {
        let cqe = head
            .get(CAPSULE_RESP_CQE_OFFSET..CAPSULE_RESP_CQE_OFFSET + CQE_LEN)
            .and_then(|s| <&[u8; CQE_LEN]>::try_from(s).ok())
            .map(Cqe::from_bytes)
            .ok_or_else(|| DecodeError::HeaderLength {
                pdu_type: PduType::CAPSULE_RESP,
                hlen: u8::try_from(head.len()).unwrap_or(u8::MAX),
                expected: 24,
                header: ErrorHeader::copy_from(head),
            })?;
        Ok(Self { cqe })
    }
}
