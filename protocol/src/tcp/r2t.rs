//! R2T: the controller asks the host for a range of a write-type command's data.

use bytes::BytesMut;

use super::error::{DecodeError, ErrorHeader};
use super::header::{PduFlags, PduType};
use super::icreq::offset_u32;
use super::layout::{Layout, TxParams, write_head};
use crate::wire::Reader;

//= NVMe/TCP 1.0 §3.6.2.10, Figure 28
//# HLEN: Fixed length of 24 bytes (18h).
//# PLEN: Length of PDU Header and HDGST (if present) in bytes.
//# Command Capsule CID (CCCID): This field contains the SQE.CID value of the Command
//# Capsule PDU associated with the host-resident data.
//# Transfer Tag (TTAG): This field contains a controller generated tag. The rules of the tag
//# generation are completely up to the controller’s discretion.
//# Requested Data Offset (R2TO): Byte offset from the start of the host-resident data. ...
//# Requested Data Length (R2TL): Number of bytes of Command Data Buffer requested by the
//# controller. ...
// CCCID at 8, TTAG at 10, R2TO at 12, R2TL at 16, reserved 20..24; no data.
/// HLEN of an R2T.
pub const R2T_HLEN: usize = 24;
/// Byte offset of CCCID.
pub const R2T_CCCID_OFFSET: usize = 8;
/// Byte offset of TTAG.
pub const R2T_TTAG_OFFSET: usize = 10;
/// Byte offset of R2TO.
pub const R2T_R2TO_OFFSET: usize = 12;
/// Byte offset of R2TL.
pub const R2T_R2TL_OFFSET: usize = 16;

/// Ready to Transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct R2t {
    /// Command Capsule CID of the write-type command.
    pub cccid: u16,
    /// Transfer Tag the host echoes in its H2CData PDUs.
    pub ttag: u16,
    /// R2T Offset: where in the command's data the requested range starts.
    pub r2to: u32,
    /// R2T Length: bytes requested; never zero.
    pub r2tl: u32,
}

impl R2t {
    fn layout(tx: TxParams) -> Layout {
        let hd = tx.digests.header_len(PduType::R2T);
        Layout {
            hlen: R2T_HLEN,
            hdgst_len: hd,
            pdo: 0,
            data_len: 0,
            ddgst_len: 0,
            plen: R2T_HLEN + hd,
        }
    }

    /// PLEN of the encoded PDU.
    pub fn encoded_len(&self, tx: TxParams) -> usize {
        Self::layout(tx).plen
    }

    /// Appends the PDU to `dst`.
    pub fn encode(&self, tx: TxParams, dst: &mut BytesMut) {
        write_head(PduType::R2T, PduFlags(0), &Self::layout(tx), dst, |w| {
            w.u16(R2T_CCCID_OFFSET, self.cccid);
            w.u16(R2T_TTAG_OFFSET, self.ttag);
            w.u32(R2T_R2TO_OFFSET, self.r2to);
            w.u32(R2T_R2TL_OFFSET, self.r2tl);
        });
    }

    // R2TL of zero is refused as an Invalid PDU Header Field. This is Lamina's rule (an R2T
    // must request data); the NVMe/TCP 1.0 text has no requirement that R2TL be non-zero.
    pub(crate) fn decode_psh(head: &[u8]) -> Result<Self, DecodeError> {
        let bad = |offset: usize| DecodeError::InvalidField {
            pdu_type: PduType::R2T,
            offset: offset_u32(offset),
            header: ErrorHeader::copy_from(head),
        };
        let r = Reader::new(head, "R2T", R2T_HLEN).map_err(|_| bad(0))?;
        let r2t = Self {
            cccid: r.u16(R2T_CCCID_OFFSET).map_err(|_| bad(R2T_CCCID_OFFSET))?,
            ttag: r.u16(R2T_TTAG_OFFSET).map_err(|_| bad(R2T_TTAG_OFFSET))?,
            r2to: r.u32(R2T_R2TO_OFFSET).map_err(|_| bad(R2T_R2TO_OFFSET))?,
            r2tl: r.u32(R2T_R2TL_OFFSET).map_err(|_| bad(R2T_R2TL_OFFSET))?,
        };
        if r2t.r2tl == 0 {
            return Err(bad(R2T_R2TL_OFFSET));
        }
        Ok(r2t)
    }
}
