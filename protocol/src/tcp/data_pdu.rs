//! What H2CData and C2HData share: the 24-byte header layout (CCCID, TTAG, DATAO, DATAL) and
//! the DATAL check against the data actually present.

use super::error::{DecodeError, ErrorHeader};
use super::header::PduType;
use super::icreq::offset_u32;
use crate::wire::Reader;

//= NVMe/TCP 1.0 §3.6.2.8, Figure 26
//# HLEN: Fixed length of 24 bytes (18h).
//# Command Capsule CID (CCCID): This field contains the SQE.CID value of the Command
//# Capsule PDU associated with the Command Data Buffer.
//# Transfer Tag (TTAG): This field contains the Transfer Tag of the corresponding R2T received
//# by the host.
//# Data Offset (DATAO): Byte offset from start of Command Data Buffer. ...
//# Data Length (DATAL): PDU DATA field length in bytes. ...
// CCCID at 8, TTAG at 10 (reserved in C2HData, Figure 27), DATAO at 12, DATAL at 16, reserved
// 20..24.
/// HLEN of H2CData and C2HData.
pub const DATA_PDU_HLEN: usize = 24;
/// Byte offset of CCCID.
pub const DATA_CCCID_OFFSET: usize = 8;
/// Byte offset of TTAG (H2CData).
pub const DATA_TTAG_OFFSET: usize = 10;
/// Byte offset of DATAO.
pub const DATA_DATAO_OFFSET: usize = 12;
/// Byte offset of DATAL.
pub const DATA_DATAL_OFFSET: usize = 16;

pub(crate) struct DataFields {
    pub(crate) cccid: u16,
    pub(crate) ttag: u16,
    pub(crate) datao: u32,
}

//= NVMe/TCP 1.0 §3.6.2.8, Figure 26
//# Data Length (DATAL): PDU DATA field length in bytes.
// A DATAL that disagrees with PLEN - PDO - DDGST is an Invalid PDU Header Field at DATAL's
// offset.
pub(crate) fn decode_data_fields(
    pdu_type: PduType,
    head: &[u8],
    data_len: usize,
) -> Result<DataFields, DecodeError> {
    let bad = |offset: usize| DecodeError::InvalidField {
        pdu_type,
        offset: offset_u32(offset),
        header: ErrorHeader::copy_from(head),
    };
    let r = Reader::new(head, "data PDU", DATA_PDU_HLEN).map_err(|_| bad(0))?;
    let cccid = r
        .u16(DATA_CCCID_OFFSET)
        .map_err(|_| bad(DATA_CCCID_OFFSET))?;
    let ttag = r.u16(DATA_TTAG_OFFSET).map_err(|_| bad(DATA_TTAG_OFFSET))?;
    let datao = r
        .u32(DATA_DATAO_OFFSET)
        .map_err(|_| bad(DATA_DATAO_OFFSET))?;
    let datal = r
        .u32(DATA_DATAL_OFFSET)
        .map_err(|_| bad(DATA_DATAL_OFFSET))?;
    if usize::try_from(datal).ok() != Some(data_len) {
        return Err(bad(DATA_DATAL_OFFSET));
    }
    Ok(DataFields { cccid, ttag, datao })
}
