//! [`DecodeError`]: every way a byte stream can violate NVMe/TCP, with the Fatal Error Status
//! and Fatal Error Information the specification names for the TermReq that reports it.
//!
//! Scope is decided here, where the error is raised: every variant but
//! [`DecodeError::DataDigest`] is fatal to the connection (send the TermReq that
//! [`DecodeError::term_req`] builds, then close). [`DecodeError::TermReqLength`] is fatal but
//! must not be answered. A data digest mismatch leaves the stream in sync: the framer has
//! consumed the PDU and the caller decides the policy (see the variant's documentation).

use bytes::Bytes;

use super::{Fes, PduFlags, PduType, TermReq};

//= NVMe/TCP 1.0 §3.5
//# The maximum
//# C2HTermReq PDU data size shall not exceed 128 bytes.
//= NVMe/TCP 1.0 §3.6.2.5, Figure 23
//# Data: This field contains the PDU Header that was being processed by the controller while the
//# fatal error was detected.
/// The header bytes of the PDU in error (CH + PSH + HDGST as received, at most 128 bytes), for
/// the data field of the TermReq.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ErrorHeader(Bytes);

impl ErrorHeader {
    /// Largest header a TermReq may carry.
    pub const MAX_LEN: usize = 128;

    /// Copies at most [`Self::MAX_LEN`] bytes of `header` (this only happens on fatal errors).
    pub fn copy_from(header: &[u8]) -> Self {
        let len = header.len().min(Self::MAX_LEN);
        Self(Bytes::copy_from_slice(
            header.get(..len).unwrap_or_default(),
        ))
    }

    /// The bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }
}

impl core::fmt::Debug for ErrorHeader {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "ErrorHeader({} bytes)", self.0.len())
    }
}

/// A violation of NVMe/TCP found while framing or parsing a received PDU.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// PDU-Type is not one NVMe/TCP 1.0 defines. FES Invalid PDU Header Field, FEI 0.
    #[error("unknown PDU type {:#04x}", pdu_type.0)]
    UnknownPduType {
        /// Type received.
        pdu_type: PduType,
        /// Offending header.
        header: ErrorHeader,
    },
    /// A PDU type the peer in this role never sends (e.g. a CapsuleResp sent to a controller).
    /// FES Invalid PDU Header Field, FEI 0.
    #[error("{pdu_type:?} is not valid in this direction")]
    WrongDirection {
        /// Type received.
        pdu_type: PduType,
        /// Offending header.
        header: ErrorHeader,
    },
    /// A valid PDU at the wrong time: anything but ICReq/ICResp (or a TermReq) before the IC
    /// exchange, or a second ICReq/ICResp after it. FES PDU Sequence Error.
    #[error("{pdu_type:?} received out of sequence")]
    Sequence {
        /// Type received.
        pdu_type: PduType,
        /// Offending header.
        header: ErrorHeader,
    },
    /// FLAGS has a bit the PDU type does not define, a digest flag that disagrees with the
    /// negotiated digests, or SUCCESS without LAST_PDU. FES Invalid PDU Header Field, FEI 1.
    #[error("{pdu_type:?}: invalid FLAGS {flags:?}")]
    InvalidFlags {
        /// Type received.
        pdu_type: PduType,
        /// FLAGS received.
        flags: PduFlags,
        /// Offending header.
        header: ErrorHeader,
    },
    /// HLEN is not the fixed length of the type. FES Invalid PDU Header Field, FEI 2.
    #[error("{pdu_type:?}: HLEN {hlen}, expected {expected}")]
    HeaderLength {
        /// Type received.
        pdu_type: PduType,
        /// HLEN received.
        hlen: u8,
        /// HLEN the type requires.
        expected: u8,
        /// Offending header.
        header: ErrorHeader,
    },
    /// PDO is non-zero on a PDU without data, points inside the header or past PLEN, or is not
    /// a multiple of our PDU data alignment. FES Invalid PDU Header Field, FEI 3.
    #[error("{pdu_type:?}: invalid PDO {pdo}")]
    DataOffset {
        /// Type received.
        pdu_type: PduType,
        /// PDO received.
        pdo: u8,
        /// Offending header.
        header: ErrorHeader,
    },
    /// PLEN is inconsistent with HLEN, PDO and the digests, or above the configured maximum.
    /// FES Invalid PDU Header Field, FEI 4.
    #[error("{pdu_type:?}: invalid PLEN {plen}")]
    PduLength {
        /// Type received.
        pdu_type: PduType,
        /// PLEN received.
        plen: u32,
        /// Offending header.
        header: ErrorHeader,
    },
    /// A TermReq whose PLEN is outside 24..=152: the connection is closed without answering.
    //= NVMe/TCP 1.0 §3.5
    //# The host shall ignore a C2HTermReq PDU with a PDU length (PLEN) that exceeds 152 bytes
    //# (24-byte PDU Header plus 128-byte PDU data) and shall terminate the connection immediately.
    //# Additionally, the host shall ignore a C2HTermReq PDU with PLEN less than 24 bytes and shall
    //# terminate the connection immediately.
    // The controller side has the same rule for H2CTermReq: no TermReq is sent in response.
    #[error("TermReq with invalid PLEN {plen}")]
    TermReqLength {
        /// PLEN received.
        plen: u32,
    },
    /// More data in one PDU than negotiated (MAXH2CDATA, the in-capsule data size, or our
    /// configured C2H limit). FES Data Transfer Limit Exceeded.
    #[error("{pdu_type:?}: {data_len} data bytes exceed the limit of {limit}")]
    DataLimitExceeded {
        /// Type received.
        pdu_type: PduType,
        /// Data length the header announces.
        data_len: u64,
        /// Negotiated limit.
        limit: u32,
        /// Offending header.
        header: ErrorHeader,
    },
    /// The header digest does not match the CH and PSH. FES Header Digest Error.
    #[error("{pdu_type:?}: header digest {received:#010x}, computed {computed:#010x}")]
    HeaderDigest {
        /// Type received.
        pdu_type: PduType,
        /// Digest on the wire.
        received: u32,
        /// Digest of the bytes received.
        computed: u32,
        /// Offending header.
        header: ErrorHeader,
    },
    /// A PSH field holds a value the specification forbids (DATAL inconsistent with PLEN, HPDA
    /// or CPDA above 31, MAXH2CDATA below 4096 or not a multiple of 4, ...). FES Invalid PDU
    /// Header Field, FEI = the field's byte offset.
    #[error("{pdu_type:?}: invalid field at byte {offset}")]
    InvalidField {
        /// Type received.
        pdu_type: PduType,
        /// Byte offset of the field from the start of the PDU.
        offset: u32,
        /// Offending header.
        header: ErrorHeader,
    },
    /// A reserved bit or field is set where the specification requires zero (reserved FLAGS
    /// bits, reserved DGST bits). FES Invalid PDU Header Field, FEI = its byte offset.
    #[error("{pdu_type:?}: reserved field set at byte {offset}")]
    ReservedField {
        /// Type received.
        pdu_type: PduType,
        /// Byte offset of the reserved field.
        offset: u32,
        /// Offending header.
        header: ErrorHeader,
    },
    /// A parameter this implementation does not support (PFV other than 0). FES Unsupported
    /// Parameter, FEI = its byte offset.
    #[error("{pdu_type:?}: unsupported parameter at byte {offset}")]
    UnsupportedParameter {
        /// Type received.
        pdu_type: PduType,
        /// Byte offset of the parameter.
        offset: u32,
        /// Offending header.
        header: ErrorHeader,
    },
    /// The data digest does not match the data. The PDU has been consumed and the framer stays
    /// in sync; this error is not fatal by itself.
    ///
    /// Policy belongs to the caller. The specification has the controller complete the command
    /// with Transient Transport Error (SCT 0h, SC 22h) and SPDK's target does exactly that;
    /// Linux nvmet-tcp instead treats it as a fatal error and tears the queue down, and the
    /// Linux host completes its request with Data Transfer Error (04h).
    //= NVMe/TCP 1.0 §3.5
    //# When a host detects a data digest error in a C2HData PDU, that host shall continue
    //# processing C2HData PDUs associated with the command and when the command processing has
    //# completed, if a successful status was returned by the controller, the host shall fail the
    //# command with a non-fatal transport error.
    // Data digest errors are reported per command, not by TermReq.
    #[error(
        "{pdu_type:?} for command {command_id}: data digest {received:#010x}, computed {computed:#010x}"
    )]
    DataDigest {
        /// Type received (CapsuleCmd, H2CData or C2HData).
        pdu_type: PduType,
        /// The command the data belongs to (CID of the SQE, or CCCID of a data PDU).
        command_id: u16,
        /// Digest on the wire.
        received: u32,
        /// Digest of the data received.
        computed: u32,
    },
}

impl DecodeError {
    /// The Fatal Error Status for the TermReq, or `None` when no TermReq is to be sent (an
    /// invalid TermReq, or a data digest error which is not fatal).
    pub fn fes(&self) -> Option<Fes> {
        match self {
            Self::UnknownPduType { .. }
            | Self::WrongDirection { .. }
            | Self::InvalidFlags { .. }
            | Self::HeaderLength { .. }
            | Self::DataOffset { .. }
            | Self::PduLength { .. }
            | Self::InvalidField { .. }
            | Self::ReservedField { .. } => Some(Fes::INVALID_HEADER_FIELD),
            Self::Sequence { .. } => Some(Fes::PDU_SEQUENCE_ERROR),
            Self::HeaderDigest { .. } => Some(Fes::HEADER_DIGEST_ERROR),
            Self::DataLimitExceeded { .. } => Some(Fes::DATA_LIMIT_EXCEEDED),
            Self::UnsupportedParameter { .. } => Some(Fes::UNSUPPORTED_PARAMETER),
            Self::TermReqLength { .. } | Self::DataDigest { .. } => None,
        }
    }

    /// Fatal Error Information: the byte offset of the offending field for Invalid PDU Header
    /// Field and Unsupported Parameter, 0 (reserved) otherwise.
    pub fn fei(&self) -> u32 {
        use crate::tcp::header as ch;
        match self {
            Self::UnknownPduType { .. } | Self::WrongDirection { .. } => ch::CH_TYPE_OFFSET,
            Self::InvalidFlags { .. } => ch::CH_FLAGS_OFFSET,
            Self::HeaderLength { .. } => ch::CH_HLEN_OFFSET,
            Self::DataOffset { .. } => ch::CH_PDO_OFFSET,
            Self::PduLength { .. } => ch::CH_PLEN_OFFSET,
            Self::InvalidField { offset, .. }
            | Self::ReservedField { offset, .. }
            | Self::UnsupportedParameter { offset, .. } => *offset,
            Self::Sequence { .. }
            | Self::TermReqLength { .. }
            | Self::DataLimitExceeded { .. }
            | Self::HeaderDigest { .. }
            | Self::DataDigest { .. } => 0,
        }
    }

    /// The offending PDU header, empty where the error carries none.
    pub fn header(&self) -> &[u8] {
        match self {
            Self::UnknownPduType { header, .. }
            | Self::WrongDirection { header, .. }
            | Self::Sequence { header, .. }
            | Self::InvalidFlags { header, .. }
            | Self::HeaderLength { header, .. }
            | Self::DataOffset { header, .. }
            | Self::PduLength { header, .. }
            | Self::DataLimitExceeded { header, .. }
            | Self::HeaderDigest { header, .. }
            | Self::InvalidField { header, .. }
            | Self::ReservedField { header, .. }
            | Self::UnsupportedParameter { header, .. } => header.bytes(),
            Self::TermReqLength { .. } | Self::DataDigest { .. } => &[],
        }
    }

    /// Whether the connection must be closed. Only a data digest error is not fatal.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, Self::DataDigest { .. })
    }

    /// The TermReq that reports this error to the peer (send it as H2CTermReq or C2HTermReq
    /// depending on the role), or `None` when nothing is to be sent.
    pub fn term_req(&self) -> Option<TermReq> {
        let fes = self.fes()?;
        Some(TermReq {
            fes,
            fei: if fes.has_fei() { self.fei() } else { 0 },
            header: Bytes::copy_from_slice(self.header()),
        })
    }
}
