//! NVMe/TCP PDUs (NVMe/TCP Transport Specification 1.0): the common header, one module per PDU,
//! the digests, the Fatal Error Status codes and the PDO/PLEN arithmetic.
//!
//! Every PDU type has `encode` into a `BytesMut` and `encoded_len`; the ones that carry data
//! (CapsuleCmd, H2CData, C2HData) also have `encode_head`, which writes only CH + PSH + HDGST +
//! PAD and hands back the data and its digest, so the caller can send the payload with a
//! vectored write and never copy it. Decoding goes through [`crate::Framer`].

mod c2h_data;
mod capsule_cmd;
mod capsule_resp;
mod data_pdu;
pub mod digest;
mod error;
mod fes;
mod h2c_data;
pub mod header;
mod icreq;
mod icresp;
mod layout;
mod r2t;
mod term_req;

use bytes::BytesMut;

pub use c2h_data::C2hData;
pub use capsule_cmd::{CAPSULE_CMD_HLEN, CAPSULE_CMD_SQE_OFFSET, CapsuleCmd, DataLocation};
pub use capsule_resp::{CAPSULE_RESP_CQE_OFFSET, CAPSULE_RESP_HLEN, CapsuleResp};
pub use data_pdu::{
    DATA_CCCID_OFFSET, DATA_DATAL_OFFSET, DATA_DATAO_OFFSET, DATA_PDU_HLEN, DATA_TTAG_OFFSET,
};
pub use digest::{DIGEST_LEN, data_digest};
pub use error::{DecodeError, ErrorHeader};
pub use fes::Fes;
pub use h2c_data::H2cData;
pub use header::{CH_LEN, CommonHeader, PduFlags, PduType};
pub use icreq::{
    ICREQ_DGST_OFFSET, ICREQ_HPDA_OFFSET, ICREQ_LEN, ICREQ_MAXR2T_OFFSET, ICREQ_PFV_OFFSET, IcReq,
    PFV_1_0,
};
pub use icresp::{
    ICRESP_CPDA_OFFSET, ICRESP_DGST_OFFSET, ICRESP_LEN, ICRESP_MAXH2CDATA_OFFSET,
    ICRESP_PFV_OFFSET, IcResp, MIN_MAXH2CDATA,
};
pub use layout::{DataTrailer, Digests, EncodeError, Pda, TxParams};
pub use r2t::{R2T_CCCID_OFFSET, R2T_HLEN, R2T_R2TL_OFFSET, R2T_R2TO_OFFSET, R2T_TTAG_OFFSET, R2t};
pub use term_req::{
    MAX_TERM_DATA, MAX_TERM_REQ_PLEN, TERM_REQ_FEI_OFFSET, TERM_REQ_FES_OFFSET, TERM_REQ_HLEN,
    TermReq,
};

/// Every NVMe/TCP 1.0 PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pdu {
    /// Initialize Connection Request (host to controller).
    IcReq(IcReq),
    /// Initialize Connection Response (controller to host).
    IcResp(IcResp),
    /// Host to Controller Terminate Connection Request.
    H2cTermReq(TermReq),
    /// Controller to Host Terminate Connection Request.
    C2hTermReq(TermReq),
    /// Command capsule (host to controller).
    CapsuleCmd(CapsuleCmd),
    /// Response capsule (controller to host).
    CapsuleResp(CapsuleResp),
    /// Host to Controller Data.
    H2cData(H2cData),
    /// Controller to Host Data.
    C2hData(C2hData),
    /// Ready to Transfer (controller to host).
    R2t(R2t),
}

impl Pdu {
    /// The PDU-Type this PDU is sent as.
    pub fn pdu_type(&self) -> PduType {
        match self {
            Self::IcReq(_) => PduType::IC_REQ,
            Self::IcResp(_) => PduType::IC_RESP,
            Self::H2cTermReq(_) => PduType::H2C_TERM_REQ,
            Self::C2hTermReq(_) => PduType::C2H_TERM_REQ,
            Self::CapsuleCmd(_) => PduType::CAPSULE_CMD,
            Self::CapsuleResp(_) => PduType::CAPSULE_RESP,
            Self::H2cData(_) => PduType::H2C_DATA,
            Self::C2hData(_) => PduType::C2H_DATA,
            Self::R2t(_) => PduType::R2T,
        }
    }

    /// PLEN of the encoded PDU under `tx`.
    pub fn encoded_len(&self, tx: TxParams) -> Result<usize, EncodeError> {
        match self {
            Self::IcReq(p) => Ok(p.encoded_len()),
            Self::IcResp(p) => Ok(p.encoded_len()),
            Self::H2cTermReq(p) | Self::C2hTermReq(p) => Ok(p.encoded_len()),
            Self::CapsuleCmd(p) => p.encoded_len(tx),
            Self::CapsuleResp(p) => Ok(p.encoded_len(tx)),
            Self::H2cData(p) => p.encoded_len(tx),
            Self::C2hData(p) => p.encoded_len(tx),
            Self::R2t(p) => Ok(p.encoded_len(tx)),
        }
    }

    /// Appends the whole PDU to `dst` under `tx` (ICReq, ICResp and TermReq ignore `tx`: they
    /// never carry digests or padding).
    pub fn encode(&self, tx: TxParams, dst: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            Self::IcReq(p) => p.encode(dst),
            Self::IcResp(p) => p.encode(dst),
            Self::H2cTermReq(p) => p.encode(PduType::H2C_TERM_REQ, dst)?,
            Self::C2hTermReq(p) => p.encode(PduType::C2H_TERM_REQ, dst)?,
            Self::CapsuleCmd(p) => p.encode(tx, dst)?,
            Self::CapsuleResp(p) => p.encode(tx, dst),
            Self::H2cData(p) => p.encode(tx, dst)?,
            Self::C2hData(p) => p.encode(tx, dst)?,
            Self::R2t(p) => p.encode(tx, dst),
        }
        Ok(())
    }
}
