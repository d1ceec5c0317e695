//! Fatal Error Status (FES) values carried by H2CTermReq and C2HTermReq.

use crate::wire::open_enum;

open_enum! {
    //= NVMe/TCP 1.0, H2CTermReq and C2HTermReq PDUs: FES.
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
    //= NVMe/TCP 1.0: FEI is defined for Invalid PDU Header Field and Unsupported
    //= Parameter; it is reserved for every other FES.
    pub const fn has_fei(self) -> bool {
        matches!(
            self,
            Self::INVALID_HEADER_FIELD | Self::UNSUPPORTED_PARAMETER
        )
    }
}
