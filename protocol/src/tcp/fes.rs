//! Fatal Error Status (FES) values carried by H2CTermReq and C2HTermReq.

use crate::wire::open_enum;

open_enum! {
    //= NVMe/TCP 1.0 §3.6.2.5, Figure 23
    //# Fatal Error Status (FES): Indicates the fatal error information.
    //# 00h Reserved
    //# 01h Invalid PDU Header Field: An invalid field in the transport header was
    //# detected by the controller.
    //# 02h PDU Sequence Error: An unexpected protocol sequence was detected by
    //# the controller.
    //# 03h Header Digest Error: An HDGST error was detected by the controller.
    //# 04h Data Transfer Out of Range: An H2CData PDU with data offset or data
    //# offset plus data length is out of its associated R2T range.
    //# 05h Data Transfer Limit Exceeded: An H2CData PDU with data length that
    //# exceeds MAXH2CDATA was received by the controller.
    //# 06h Unsupported Parameter: An unsupported parameter was received by the
    //# controller.
    //# 07h to FFFFh Reserved
    // H2CTermReq (Figure 22) uses the same values; its 05h is R2T Limit Exceeded.
    /// Fatal Error Status: why the sender terminates the connection.
    pub struct Fes(u16) {
        /// Invalid PDU Header Field; FEI holds the byte offset of the offending field.
        INVALID_HEADER_FIELD = 0x01,
        /// PDU Sequence Error: a valid PDU arrived when the protocol state does not allow it.
        PDU_SEQUENCE_ERROR = 0x02,
        /// Header Digest Error.
        HEADER_DIGEST_ERROR = 0x03,
        /// Data Transfer Out of Range: data offset/length outside the command's transfer.
        DATA_OUT_OF_RANGE = 0x04,
        /// C2HTermReq: Data Transfer Limit Exceeded (more data in a PDU than negotiated);
        /// H2CTermReq: R2T Limit Exceeded (more outstanding R2Ts than MAXR2T).
        DATA_LIMIT_EXCEEDED = 0x05,
        /// Unsupported Parameter (e.g. ICReq PFV); FEI holds the byte offset of the parameter.
        UNSUPPORTED_PARAMETER = 0x06,
    }
}

impl Fes {
    /// H2CTermReq name of value 05h.
    pub const R2T_LIMIT_EXCEEDED: Self = Self::DATA_LIMIT_EXCEEDED;

    /// Whether the FEI field carries a byte offset for this FES (it is reserved otherwise).
    //= NVMe/TCP 1.0 §3.6.2.5, Figure 23
    //# 01h PDU Header Field Offset: This field indicates the offset in bytes from
    //# the start of the PDU Header to the start of the field that has an error. If
    //# multiple errors exist, then this field indicates the lowest offset that has
    //# an error.
    //# ...
    //# 06h Unsupported Parameter Field Offset: This field indicates the offset
    //# in bytes from the start of the PDU Header to the start of the field that
    //# has an error.
    // FEI is a byte offset for Invalid PDU Header Field and Unsupported Parameter. For Header
    // Digest Error (03h) the figure gives FEI the received HDGST, which is not an offset.
    pub const fn has_fei(self) -> bool {
        matches!(
            self,
            Self::INVALID_HEADER_FIELD | Self::UNSUPPORTED_PARAMETER
        )
    }
}
