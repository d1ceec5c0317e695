//! H2CTermReq and C2HTermReq: the last PDU on a connection, reporting a fatal transport error
//! with its Fatal Error Status, Fatal Error Information and the header of the PDU in error.

use bytes::{BufMut, Bytes, BytesMut};

use super::fes::Fes;
use super::header::{CommonHeader, PduFlags, PduType};
use super::layout::EncodeError;
use crate::wire::Reader;

//= NVMe/TCP 1.0 §3.6.2.5, Figure 23
//# HLEN: Fixed length of 24 bytes (18h).
//# PDO: Reserved
//# PLEN: Total length of PDU (including PDU Header and DATA) in bytes. This value shall not exceed
//# a limit of 152 bytes.
//# Data: This field contains the PDU Header that was being processed by the controller while the
//# fatal error was detected.
// FES at byte 8, FEI at 10 (4 bytes), reserved to 23, then up to 128 bytes of the PDU header in
// error (Linux NVME_TCP_MIN_C2HTERM_PLEN 24, NVME_TCP_MAX_C2HTERM_PLEN 152).
/// HLEN of a TermReq.
pub const TERM_REQ_HLEN: usize = 24;
/// Byte offset of FES.
pub const TERM_REQ_FES_OFFSET: usize = 8;
/// Byte offset of FEI.
pub const TERM_REQ_FEI_OFFSET: usize = 10;
/// Most bytes of the erroneous header a TermReq carries.
pub const MAX_TERM_DATA: usize = 128;
/// Largest PLEN of a TermReq.
pub const MAX_TERM_REQ_PLEN: usize = TERM_REQ_HLEN + MAX_TERM_DATA;

/// A Terminate Connection Request, in either direction (the [`super::Pdu`] variant says which).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TermReq {
    /// Fatal Error Status.
    pub fes: Fes,
    /// Fatal Error Information (byte offset of the offending field, or 0).
    pub fei: u32,
    /// Header of the PDU in error, at most [`MAX_TERM_DATA`] bytes.
    pub header: Bytes,
}

impl TermReq {
    /// PLEN of the encoded PDU.
    pub fn encoded_len(&self) -> usize {
        TERM_REQ_HLEN + self.header.len()
    }

    /// Appends the PDU to `dst` as `pdu_type` (H2C_TERM_REQ or C2H_TERM_REQ).
    pub fn encode(&self, pdu_type: PduType, dst: &mut BytesMut) -> Result<(), EncodeError> {
        if self.header.len() > MAX_TERM_DATA {
            return Err(EncodeError::TermReqDataTooLong(self.header.len()));
        }
        let plen = u32::try_from(self.encoded_len()).unwrap_or(u32::MAX);
        let hlen = u8::try_from(TERM_REQ_HLEN).unwrap_or(u8::MAX);
        CommonHeader {
            pdu_type,
            flags: PduFlags(0),
            hlen,
            pdo: 0,
            plen,
        }
        .encode(dst);
        dst.put_u16_le(self.fes.0);
        dst.put_u32_le(self.fei);
        dst.put_bytes(0, TERM_REQ_HLEN - TERM_REQ_FEI_OFFSET - 4);
        dst.put_slice(&self.header);
        Ok(())
    }

    /// Parses a whole TermReq PDU (`pdu`), keeping the header data as a view of it. The framer
    /// has already checked PLEN.
    pub(crate) fn decode(pdu: &Bytes) -> Option<Self> {
        let r = Reader::new(pdu, "TermReq", TERM_REQ_HLEN).ok()?;
        let fes = Fes(r.u16(TERM_REQ_FES_OFFSET).ok()?);
        let fei = r.u32(TERM_REQ_FEI_OFFSET).ok()?;
        let header = pdu.slice(TERM_REQ_HLEN..);
        Some(Self { fes, fei, header })
    }
}
