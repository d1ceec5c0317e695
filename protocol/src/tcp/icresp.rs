//! ICResp: the controller's answer to ICReq, fixing the protocol version, the controller's PDU
//! data alignment, the digests in force and MAXH2CDATA.

use bytes::BytesMut;

use super::error::{DecodeError, ErrorHeader};
use super::header::{PduFlags, PduType};
use super::icreq::{
    ICREQ_DGST_OFFSET, ICREQ_HPDA_OFFSET, ICREQ_LEN, ICREQ_PFV_OFFSET, decode_ic_fields,
    fixed_layout, offset_u32,
};
use super::layout::{Digests, Pda, write_head};

//= NVMe/TCP 1.0 §3.6.2.3, Figure 21
//# PDU-Type: 01h
//# HLEN: Fixed length of 128 bytes (80h).
//# PLEN: Fixed length of 128 bytes (80h).
//# Controller PDU Data Alignment (CPDA): Specifies the data alignment for all PDUs that transfer
//# data in addiion to the PDU Header (refer to section 2). This is a 0’s based value in units of
//# dwords in the range 0 to 31 ...
// Same layout as ICReq with CPDA and MAXH2CDATA.
/// HLEN and PLEN of an ICResp.
pub const ICRESP_LEN: usize = ICREQ_LEN;
/// Byte offset of PFV.
pub const ICRESP_PFV_OFFSET: usize = ICREQ_PFV_OFFSET;
/// Byte offset of CPDA.
pub const ICRESP_CPDA_OFFSET: usize = ICREQ_HPDA_OFFSET;
/// Byte offset of DGST.
pub const ICRESP_DGST_OFFSET: usize = ICREQ_DGST_OFFSET;
/// Byte offset of MAXH2CDATA.
pub const ICRESP_MAXH2CDATA_OFFSET: usize = 12;

//= NVMe/TCP 1.0 §3.6.2.3, Figure 21
//# Maximum Host to Controller Data length (MAXH2CDATA): Specifies the maximum number of
//# PDU-Data bytes per H2CData PDU in bytes. This value is a multiple of dwords and should be no
//# less than 4,096.
// Lamina treats 4096 as a hard minimum, as Linux does (NVME_TCP_MIN_MAXH2CDATA).
/// Smallest MAXH2CDATA a controller may announce.
pub const MIN_MAXH2CDATA: u32 = 4096;

/// Initialize Connection Response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcResp {
    /// PDU Format Version (0 for NVMe/TCP 1.0).
    pub pfv: u16,
    /// Controller PDU Data Alignment: the alignment the controller wants for data in H2C PDUs.
    /// The Linux host rejects anything but 0.
    pub cpda: Pda,
    /// Digests in force from now on. The Linux host rejects bits that differ from its ICReq.
    pub digests: Digests,
    /// Maximum data bytes in one H2CData PDU.
    pub maxh2cdata: u32,
}

impl Default for IcResp {
    fn default() -> Self {
        Self {
            pfv: 0,
            cpda: Pda(0),
            digests: Digests::NONE,
            maxh2cdata: MIN_MAXH2CDATA,
        }
    }
}

impl IcResp {
    /// PLEN of the encoded PDU.
    pub const fn encoded_len(&self) -> usize {
        ICRESP_LEN
    }

    /// Appends the PDU to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        let layout = fixed_layout(PduType::IC_RESP);
        write_head(PduType::IC_RESP, PduFlags(0), &layout, dst, |w| {
            w.u16(ICRESP_PFV_OFFSET, self.pfv);
            w.u8(ICRESP_CPDA_OFFSET, self.cpda.0);
            w.u8(ICRESP_DGST_OFFSET, self.digests.to_byte());
            w.u32(ICRESP_MAXH2CDATA_OFFSET, self.maxh2cdata);
        });
    }

    /// Parses and validates the PSH; `head` holds the whole 128-byte PDU.
    pub(crate) fn decode(head: &[u8]) -> Result<Self, DecodeError> {
        let fields = decode_ic_fields(PduType::IC_RESP, head)?;
        if fields.last < MIN_MAXH2CDATA || !fields.last.is_multiple_of(4) {
            return Err(DecodeError::InvalidField {
                pdu_type: PduType::IC_RESP,
                offset: offset_u32(ICRESP_MAXH2CDATA_OFFSET),
                header: ErrorHeader::copy_from(head),
            });
        }
        Ok(Self {
            pfv: fields.pfv,
            cpda: fields.pda,
            digests: fields.digests,
            maxh2cdata: fields.last,
        })
    }

    /// Checks the rules the Linux host (`nvme_tcp_init_connection`) applies to an ICResp
    /// answering `req`: CPDA 0, digests exactly as requested, MAXH2CDATA ≥ 4096 and a multiple
    /// of 4. Returns the offset of the first field it would reject.
    pub fn linux_host_rejects(&self, req: &super::IcReq) -> Option<usize> {
        if self.pfv != super::icreq::PFV_1_0 {
            Some(ICRESP_PFV_OFFSET)
        } else if self.cpda != Pda(0) {
            Some(ICRESP_CPDA_OFFSET)
        } else if self.digests != req.digests {
            Some(ICRESP_DGST_OFFSET)
        } else if self.maxh2cdata < MIN_MAXH2CDATA || !self.maxh2cdata.is_multiple_of(4) {
            Some(ICRESP_MAXH2CDATA_OFFSET)
        } else {
            None
        }
    }
}
