//! Negotiated per-connection parameters (digests, PDU data alignment) and the arithmetic that
//! places a PDU's header digest, padding, data and data digest: PDO and PLEN.

use bytes::{BufMut, Bytes, BytesMut};

use super::digest::{DIGEST_LEN, crc32c, digest_bytes};
use super::header::{CommonHeader, PduFlags, PduType};
use crate::wire::Writer;

/// PDU Data Alignment as exchanged in ICReq (HPDA) and ICResp (CPDA).
//= NVMe/TCP 1.0 §3.3
//# The Host PDU Data Alignment (HPDA) field in the ICReq PDU specifies the required alignment of
//# PDU Data (DATA) from the start of the PDU for PDUs that are transferred from the controller to
//# the host. The Controller PDU Data Alignment (CPDA) field in the ICResp PDU specifies the
//# required alignment of PDU Data (DATA) from the start of the PDU for PDUs that are transferred
//# from the host to the controller. An appropriate number of padding bytes shall be inserted by the
//# controller or host in the PAD field to achieve the required alignment.
// A 0's based value in units of dwords, 0 to 31 (Figures 20 and 21): PDO of every data-carrying
// PDU sent to that side is a multiple of (xPDA + 1) * 4 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Pda(pub u8);

impl Pda {
    /// Largest value the specification allows.
    pub const MAX: Self = Self(31);

    /// Whether the value is within the specification's range.
    pub const fn is_valid(self) -> bool {
        self.0 <= Self::MAX.0
    }

    /// Alignment in bytes the data of a PDU must start on.
    pub fn alignment_bytes(self) -> usize {
        (usize::from(self.0.min(Self::MAX.0)) + 1) * 4
    }
}

/// Which digests were negotiated in the ICReq/ICResp exchange.
//= NVMe/TCP 1.0 §3.6.2.2, Figure 20
//# DGST: Host PDU header and data digest enable options.
//# 7:2 Reserved
//# DDGST_ENABLE: If set to ‘1’, the use of data digest is requested by the host for the
//# connection. If cleared to ‘0’, data digest shall not be used for the connection.
//# HDGST_ENABLE: If set to ‘1’, the use of header digest is requested by the host for
//# the connection. If cleared to ‘0’, header digest shall not be used for the connection.
// DGST bit 0 HDGST_ENABLE, bit 1 DDGST_ENABLE, bits 7:2 reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Digests {
    /// Header digest (HDGST) on every PDU that may carry one.
    pub header: bool,
    /// Data digest (DDGST) on every PDU that carries data.
    pub data: bool,
}

impl Digests {
    /// No digests: the state before the ICReq/ICResp exchange completes.
    pub const NONE: Self = Self {
        header: false,
        data: false,
    };
    /// Both digests.
    pub const BOTH: Self = Self {
        header: true,
        data: true,
    };

    /// DGST bit 0.
    pub const HDGST_ENABLE: u8 = 1 << 0;
    /// DGST bit 1.
    pub const DDGST_ENABLE: u8 = 1 << 1;

    /// Decodes the DGST byte; reserved bits are ignored here (the ICReq/ICResp decoder checks
    /// them).
    pub const fn from_byte(dgst: u8) -> Self {
        Self {
            header: dgst & Self::HDGST_ENABLE != 0,
            data: dgst & Self::DDGST_ENABLE != 0,
        }
    }

    /// The DGST byte.
    pub fn to_byte(self) -> u8 {
        u8::from(self.header) | (u8::from(self.data) << 1)
    }

    pub(crate) fn header_len(self, pdu_type: PduType) -> usize {
        if self.header && pdu_type.may_have_header_digest() {
            DIGEST_LEN
        } else {
            0
        }
    }
}

/// What this side must honour when it sends PDUs: the digests negotiated and the alignment the
/// peer asked for (HPDA from the ICReq when we are the controller, CPDA from the ICResp when we
/// are the host).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TxParams {
    /// Negotiated digests.
    pub digests: Digests,
    /// The receiving peer's PDU data alignment.
    pub peer_pda: Pda,
}

impl TxParams {
    /// Before the IC exchange: no digests, 4-byte alignment (ICReq/ICResp carry neither).
    pub const INITIAL: Self = Self {
        digests: Digests::NONE,
        peer_pda: Pda(0),
    };
}

/// A PDU that cannot be represented on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The data does not fit PLEN (a `u32`) with the header, padding and digests.
    #[error("{pdu_type:?}: {data_len} data bytes do not fit in one PDU")]
    DataTooLong {
        /// PDU being encoded.
        pdu_type: PduType,
        /// Data length asked for.
        data_len: usize,
    },
    /// A TermReq carries at most [`super::term_req::MAX_TERM_DATA`] bytes of the offending
    /// header.
    #[error("TermReq data of {0} bytes exceeds the 128-byte limit")]
    TermReqDataTooLong(usize),
}

/// Where each part of a data-carrying PDU lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) hlen: usize,
    pub(crate) hdgst_len: usize,
    pub(crate) pdo: usize,
    pub(crate) data_len: usize,
    pub(crate) ddgst_len: usize,
    pub(crate) plen: usize,
}

impl Layout {
    //= NVMe/TCP 1.0 §2, Figure 3
    //# As shown in Figure 3, an NVMe/TCP PDU consists of five parts. The PDU Header (HDR) is
    //# required in all PDUs. The PDU Header Digest (HDGST), the PDU Padding field (PAD), the PDU
    //# Data field (DATA), and the Data Digest (DDGST) field are included or omitted based on the
    //# PDU type and the values exchanged during connection establishment (refer to section 3.6.2).
    // CH, PSH, optional HDGST, PAD up to PDO, DATA, optional DDGST. PDO is 0 when there is no data.
    pub(crate) fn compute(
        pdu_type: PduType,
        hlen: usize,
        tx: TxParams,
        data_len: usize,
    ) -> Result<Self, EncodeError> {
        let hdgst_len = tx.digests.header_len(pdu_type);
        let full = hlen + hdgst_len;
        let (pdo, ddgst_len) = if data_len == 0 {
            (0, 0)
        } else {
            let align = tx.peer_pda.alignment_bytes();
            let ddgst = if tx.digests.data { DIGEST_LEN } else { 0 };
            (full.div_ceil(align) * align, ddgst)
        };
        let plen = pdo.max(full) + data_len + ddgst_len;
        if u32::try_from(plen).is_err() {
            return Err(EncodeError::DataTooLong { pdu_type, data_len });
        }
        Ok(Self {
            hlen,
            hdgst_len,
            pdo,
            data_len,
            ddgst_len,
            plen,
        })
    }

    pub(crate) fn flags(&self, base: PduFlags) -> PduFlags {
        base.set_if(PduFlags::HDGSTF, self.hdgst_len != 0)
            .set_if(PduFlags::DDGSTF, self.ddgst_len != 0)
    }
}

/// Writes CH + PSH (through `psh`, at offsets from the start of the PDU) + HDGST + PAD.
pub(crate) fn write_head(
    pdu_type: PduType,
    flags: PduFlags,
    layout: &Layout,
    dst: &mut BytesMut,
    psh: impl FnOnce(&mut Writer<'_>),
) {
    let start = dst.len();
    let ch = CommonHeader {
        pdu_type,
        flags: layout.flags(flags),
        hlen: u8::try_from(layout.hlen).unwrap_or(u8::MAX),
        pdo: u8::try_from(layout.pdo).unwrap_or(u8::MAX),
        plen: u32::try_from(layout.plen).unwrap_or(u32::MAX),
    };
    dst.reserve(layout.pdo.max(layout.hlen + layout.hdgst_len));
    let mut w = Writer::append(dst, layout.hlen);
    // The PSH writer uses offsets from the start of the PDU, like the spec's figures and FEI.
    w.u8(0, ch.pdu_type.0);
    w.u8(1, ch.flags.0);
    w.u8(2, ch.hlen);
    w.u8(3, ch.pdo);
    w.u32(4, ch.plen);
    psh(&mut w);
    if layout.hdgst_len != 0 {
        let digest = crc32c(dst.get(start..).unwrap_or_default());
        dst.put_u32_le(digest);
    }
    let written = layout.hlen + layout.hdgst_len;
    if layout.pdo > written {
        dst.put_bytes(0, layout.pdo - written);
    }
}

/// Appends data and its digest after a head written by [`write_head`].
pub(crate) fn write_data(layout: &Layout, data: &[u8], dst: &mut BytesMut) {
    dst.put_slice(data);
    if layout.ddgst_len != 0 {
        dst.put_slice(&digest_bytes(data));
    }
}

/// What the caller sends after the head in split (vectored) encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataTrailer {
    /// The data, to be sent as is (a reference-counted view, not a copy).
    pub data: Bytes,
    /// The data digest to send right after the data, when data digests are on and there is data.
    pub data_digest: Option<[u8; DIGEST_LEN]>,
}

impl DataTrailer {
    pub(crate) fn new(layout: &Layout, data: &Bytes) -> Self {
        let data_digest = (layout.ddgst_len != 0).then(|| digest_bytes(data));
        Self {
            data: data.clone(),
            data_digest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // NVMe/TCP 1.0 §3.3
    #[test]
    fn alignment_is_zero_based_dwords() {
        assert_eq!(Pda(0).alignment_bytes(), 4);
        assert_eq!(Pda(1).alignment_bytes(), 8);
        assert_eq!(Pda(31).alignment_bytes(), 128);
    }

    // NVMe/TCP 1.0 §2
    #[test]
    fn layout_places_padding_before_data() {
        let tx = TxParams {
            digests: Digests::BOTH,
            peer_pda: Pda(7),
        };
        let l = Layout::compute(PduType::C2H_DATA, 24, tx, 100).unwrap();
        assert_eq!((l.pdo, l.plen), (32, 32 + 100 + 4));
        let l = Layout::compute(PduType::C2H_DATA, 24, tx, 0).unwrap();
        assert_eq!((l.pdo, l.plen), (0, 28));
        let l = Layout::compute(PduType::CAPSULE_CMD, 72, TxParams::INITIAL, 8).unwrap();
        assert_eq!((l.pdo, l.plen), (72, 80));
    }
}
