//! ICReq: the first PDU of every connection, host to controller, proposing the protocol
//! version, the host's PDU data alignment, the digests and MAXR2T.

use bytes::BytesMut;

use super::error::{DecodeError, ErrorHeader};
use super::header::PduType;
use super::layout::{Digests, Layout, Pda, TxParams, write_head};
use crate::wire::Reader;

//= NVMe/TCP 1.0 §3.6.2.2, Figure 20
//# PDU-Type: 00h
//# FLAGS: Reserved
//# HLEN: Fixed length of 128 bytes (80h).
//# PDO: Reserved
//# PLEN: Fixed length of 128 bytes (80h).
// No digests on ICReq/ICResp.
/// HLEN and PLEN of an ICReq.
pub const ICREQ_LEN: usize = 128;
/// Byte offset of PFV.
pub const ICREQ_PFV_OFFSET: usize = 8;
/// Byte offset of HPDA.
pub const ICREQ_HPDA_OFFSET: usize = 10;
/// Byte offset of DGST.
pub const ICREQ_DGST_OFFSET: usize = 11;
/// Byte offset of MAXR2T.
pub const ICREQ_MAXR2T_OFFSET: usize = 12;

/// The only PDU format version NVMe/TCP 1.0 defines.
pub const PFV_1_0: u16 = 0;

/// Initialize Connection Request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IcReq {
    /// PDU Format Version (0 for NVMe/TCP 1.0).
    pub pfv: u16,
    /// Host PDU Data Alignment: the alignment the host wants for data in C2H PDUs.
    pub hpda: Pda,
    /// Digests the host asks for.
    pub digests: Digests,
    /// Maximum number of outstanding R2Ts per command, 0's based.
    pub maxr2t: u32,
}

impl IcReq {
    /// PLEN of the encoded PDU.
    pub const fn encoded_len(&self) -> usize {
        ICREQ_LEN
    }

    /// Appends the PDU to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        let layout = fixed_layout(PduType::IC_REQ);
        write_head(PduType::IC_REQ, super::PduFlags(0), &layout, dst, |w| {
            w.u16(ICREQ_PFV_OFFSET, self.pfv);
            w.u8(ICREQ_HPDA_OFFSET, self.hpda.0);
            w.u8(ICREQ_DGST_OFFSET, self.digests.to_byte());
            w.u32(ICREQ_MAXR2T_OFFSET, self.maxr2t);
        });
    }

    /// Parses and validates the PSH; `head` holds the whole 128-byte PDU.
    pub(crate) fn decode(head: &[u8]) -> Result<Self, DecodeError> {
        let fields = decode_ic_fields(PduType::IC_REQ, head)?;
        Ok(Self {
            pfv: fields.pfv,
            hpda: fields.pda,
            digests: fields.digests,
            maxr2t: fields.last,
        })
    }
}

/// The fields ICReq and ICResp share at the same offsets.
pub(crate) struct IcFields {
    pub(crate) pfv: u16,
    pub(crate) pda: Pda,
    pub(crate) digests: Digests,
    pub(crate) last: u32,
}

/// Layout of ICReq/ICResp: never digests, never data.
pub(crate) fn fixed_layout(pdu_type: PduType) -> Layout {
    Layout::compute(pdu_type, ICREQ_LEN, TxParams::INITIAL, 0).unwrap_or(Layout {
        hlen: ICREQ_LEN,
        hdgst_len: 0,
        pdo: 0,
        data_len: 0,
        ddgst_len: 0,
        plen: ICREQ_LEN,
    })
}

//= NVMe/TCP 1.0 §3.1
//# Reception of an ICReq PDU with an invalid field is treated as a fatal transport error with the
//# Fatal Error Status field in the C2HTermReq PDU set to “Invalid PDU Header Field” and the
//# Additional Error Information field containing the invalid PDU field byte offset (refer to
//# section 3.5). Reception of an ICReq PDU with an unsupported parameter is treated as a fatal
//# transport error with the Fatal Error Status field in the C2HTermReq PDU set to “Unsupported
//# Parameter” and the Additional Error Information field containing the unsupported parameter field
//# byte offset.
//= NVMe/TCP 1.0 §3.6.2.2, Figure 20
//# PDU Format Version (PFV): Specifies the format version of NVMe/TCP PDUs. The format of the
//# record specified in this definition shall be cleared to 0h.
//# Host PDU Data Alignment (HPDA): Specifies the data alignment for all PDUs transferred from the
//# controller to the host that contain data. This value is 0’s based value in units of dwords in
//# the range 0 to 31 (e.g., values 0, 1, and 2 correspond to 4 byte, 8 byte, and 12 byte
//# alignment).
//# 7:2 Reserved
// PFV other than 0 is an Unsupported Parameter (FEI 8); xPDA above 31 and reserved DGST bits are
// Invalid PDU Header Field (FEI 10 and 11). Checked in field order so the lowest offending offset
// is reported, as FreeBSD's nvmf_tcp does. The same checks apply to ICResp on the host side.
pub(crate) fn decode_ic_fields(pdu_type: PduType, head: &[u8]) -> Result<IcFields, DecodeError> {
    let err_header = || ErrorHeader::copy_from(head);
    let short = |_| DecodeError::PduLength {
        pdu_type,
        plen: u32::try_from(head.len()).unwrap_or(u32::MAX),
        header: err_header(),
    };
    let r = Reader::new(head, "IC PDU", ICREQ_LEN).map_err(short)?;
    let pfv = r.u16(ICREQ_PFV_OFFSET).map_err(short)?;
    let pda = Pda(r.u8(ICREQ_HPDA_OFFSET).map_err(short)?);
    let dgst = r.u8(ICREQ_DGST_OFFSET).map_err(short)?;
    let last = r.u32(ICREQ_MAXR2T_OFFSET).map_err(short)?;
    if pfv != PFV_1_0 {
        return Err(DecodeError::UnsupportedParameter {
            pdu_type,
            offset: offset_u32(ICREQ_PFV_OFFSET),
            header: err_header(),
        });
    }
    if !pda.is_valid() {
        return Err(DecodeError::InvalidField {
            pdu_type,
            offset: offset_u32(ICREQ_HPDA_OFFSET),
            header: err_header(),
        });
    }
    if dgst & !(Digests::HDGST_ENABLE | Digests::DDGST_ENABLE) != 0 {
        return Err(DecodeError::ReservedField {
            pdu_type,
            offset: offset_u32(ICREQ_DGST_OFFSET),
            header: err_header(),
        });
    }
    Ok(IcFields {
        pfv,
        pda,
        digests: Digests::from_byte(dgst),
        last,
    })
}

pub(crate) fn offset_u32(offset: usize) -> u32 {
    u32::try_from(offset).unwrap_or(u32::MAX)
}
