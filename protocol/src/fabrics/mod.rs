//! NVMe over Fabrics structures (NVMe-oF 1.1, NVMe Base 2.0): Fabrics command types, Connect
//! and its data and response, Property Get/Set and the controller properties (CAP, VS, CC,
//! CSTS), Disconnect, Authentication Send/Receive with the DH-HMAC-CHAP messages, and the
//! Discovery log page.

mod auth;
mod connect;
pub mod dhchap;
mod disconnect;
pub mod discovery;
mod property;
mod registers;

pub use auth::{AuthReceive, AuthSend};
pub use connect::{
    CONNECT_DATA_LEN, ConnectCommand, ConnectData, ConnectInvalidParameter, ConnectSuccess,
    connect_data_offsets,
};
pub use disconnect::Disconnect;
pub use property::{Property, PropertyGet, PropertySet, PropertySize};
pub use registers::{Cap, Cc, Crto, Csts, ShutdownNotification, ShutdownStatus, Vs};

use crate::nvme::{AdminOpcode, Psdt, SglDescriptor, Sqe};
use crate::wire::{StructDecodeError, open_enum};

open_enum! {
    //~ NVMe-oF 1.1 / NVMe Base 2.0, Fabrics Command Type (FCTYPE) figure.
    /// Fabrics command type, in byte 4 of a Fabrics SQE (opcode 7Fh).
    pub struct FabricsCommandType(u8) {
        /// Property Set.
        PROPERTY_SET = 0x00,
        /// Connect.
        CONNECT = 0x01,
        /// Property Get.
        PROPERTY_GET = 0x04,
        /// Authentication Send.
        AUTHENTICATION_SEND = 0x05,
        /// Authentication Receive.
        AUTHENTICATION_RECEIVE = 0x06,
        /// Disconnect.
        DISCONNECT = 0x08,
    }
}

//~ NVMe-oF 1.1, Fabrics Command SQE: OPC 7Fh (0), reserved (1), CID (2..4), FCTYPE (4),
//~ reserved (5..24), SGL1 (24..40), Fabrics command type specific (40..64).
/// Byte offset of FCTYPE in a Fabrics SQE.
pub const FCTYPE_OFFSET: usize = 4;

/// The FCTYPE of a Fabrics SQE, or `None` if the SQE is not a Fabrics command.
pub fn fabrics_command_type(sqe: &Sqe) -> Option<FabricsCommandType> {
    (sqe.opcode == AdminOpcode::FABRICS.0).then(|| FabricsCommandType(sqe.nsid.to_le_bytes()[0]))
}

pub(crate) fn check_fctype(
    sqe: &Sqe,
    fctype: FabricsCommandType,
    structure: &'static str,
) -> Result<(), StructDecodeError> {
    match fabrics_command_type(sqe) {
        Some(t) if t == fctype => Ok(()),
        Some(t) => Err(StructDecodeError::WrongOpcode {
            structure,
            opcode: t.0,
        }),
        None => Err(StructDecodeError::WrongOpcode {
            structure,
            opcode: sqe.opcode,
        }),
    }
}

pub(crate) fn fabrics_sqe(fctype: FabricsCommandType, cid: u16, dptr: SglDescriptor) -> Sqe {
    Sqe {
        opcode: AdminOpcode::FABRICS.0,
        flags: Sqe::flags_for(Psdt::SGL_MPTR_CONTIGUOUS),
        cid,
        nsid: u32::from(fctype.0),
        dptr,
        ..Sqe::default()
    }
}
