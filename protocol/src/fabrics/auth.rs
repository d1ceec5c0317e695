//! Authentication Send and Authentication Receive (in-band authentication, DH-HMAC-CHAP).

use super::{FabricsCommandType, check_fctype, fabrics_sqe};
use crate::nvme::{SglDescriptor, Sqe};
use crate::wire::StructDecodeError;

//~ NVMe Base 2.0, Authentication Send/Receive: byte 41 SPSP0, 42 SPSP1, 43 SECP,
//~ CDW11 TL (send) / AL (receive). Linux `struct nvmf_auth_send_command`.
fn auth_sqe(
    fctype: FabricsCommandType,
    cid: u16,
    secp: u8,
    spsp: [u8; 2],
    len: u32,
    dptr: SglDescriptor,
) -> Sqe {
    let mut sqe = fabrics_sqe(fctype, cid, dptr);
    sqe.cdw[0] = u32::from_le_bytes([0, spsp[0], spsp[1], secp]);
    sqe.cdw[1] = len;
    sqe
}

fn auth_fields(sqe: &Sqe) -> (u8, [u8; 2], u32) {
    let [_, spsp0, spsp1, secp] = sqe.cdw(10).to_le_bytes();
    (secp, [spsp0, spsp1], sqe.cdw(11))
}

/// Authentication Send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuthSend {
    /// Command Identifier.
    pub cid: u16,
    /// Security Protocol (E9h for NVMe in-band authentication).
    pub secp: u8,
    /// SP Specific 0 and 1.
    pub spsp: [u8; 2],
    /// Transfer Length in bytes.
    pub tl: u32,
    /// Data pointer.
    pub dptr: SglDescriptor,
}

impl AuthSend {
    /// The SQE.
    pub fn to_sqe(&self) -> Sqe {
        auth_sqe(
            FabricsCommandType::AUTHENTICATION_SEND,
            self.cid,
            self.secp,
            self.spsp,
            self.tl,
            self.dptr,
        )
    }
}

impl TryFrom<&Sqe> for AuthSend {
    type Error = StructDecodeError;

    fn try_from(sqe: &Sqe) -> Result<Self, Self::Error> {
        check_fctype(
            sqe,
            FabricsCommandType::AUTHENTICATION_SEND,
            "Authentication Send",
        )?;
        let (secp, spsp, tl) = auth_fields(sqe);
        Ok(Self {
            cid: sqe.cid,
            secp,
            spsp,
            tl,
            dptr: sqe.dptr,
        })
    }
}

/// Authentication Receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuthReceive {
    /// Command Identifier.
    pub cid: u16,
    /// Security Protocol.
    pub secp: u8,
    /// SP Specific 0 and 1.
    pub spsp: [u8; 2],
    /// Allocation Length in bytes.
    pub al: u32,
    /// Data pointer.
    pub dptr: SglDescriptor,
}

impl AuthReceive {
    /// The SQE.
    pub fn to_sqe(&self) -> Sqe {
        auth_sqe(
            FabricsCommandType::AUTHENTICATION_RECEIVE,
            self.cid,
            self.secp,
            self.spsp,
            self.al,
            self.dptr,
        )
    }
}

impl TryFrom<&Sqe> for AuthReceive {
    type Error = StructDecodeError;

    fn try_from(sqe: &Sqe) -> Result<Self, Self::Error> {
        check_fctype(
            sqe,
            FabricsCommandType::AUTHENTICATION_RECEIVE,
            "Authentication Receive",
        )?;
        let (secp, spsp, al) = auth_fields(sqe);
        Ok(Self {
            cid: sqe.cid,
            secp,
            spsp,
            al,
            dptr: sqe.dptr,
        })
    }
}
