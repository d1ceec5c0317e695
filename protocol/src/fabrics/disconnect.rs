//! Disconnect: tears down the I/O queue it is sent on.

use super::{FabricsCommandType, check_fctype, fabrics_sqe};
use crate::nvme::{SglDescriptor, Sqe};
use crate::wire::{StructDecodeError, lo16};

//~ NVMe-oF 1.1, Disconnect Command: RECFMT (40..42).
/// Disconnect command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Disconnect {
    /// Command Identifier.
    pub cid: u16,
    /// Record Format (0).
    pub recfmt: u16,
}

impl Disconnect {
    /// The SQE.
    pub fn to_sqe(&self) -> Sqe {
        let mut sqe = fabrics_sqe(
            FabricsCommandType::DISCONNECT,
            self.cid,
            SglDescriptor::default(),
        );
        sqe.cdw[0] = u32::from(self.recfmt);
        sqe
    }
}

impl TryFrom<&Sqe> for Disconnect {
    type Error = StructDecodeError;

    fn try_from(sqe: &Sqe) -> Result<Self, Self::Error> {
        check_fctype(sqe, FabricsCommandType::DISCONNECT, "Disconnect")?;
        Ok(Self {
            cid: sqe.cid,
            recfmt: lo16(sqe.cdw(10)),
        })
    }
}
