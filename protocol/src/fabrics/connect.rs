//! Connect: the command that creates an admin or I/O queue, its 1024-byte data (HOSTID,
//! CNTLID, SUBNQN, HOSTNQN) and the two shapes of its response DW0.

use bytes::BytesMut;

use super::{FabricsCommandType, check_fctype, fabrics_sqe};
use crate::nvme::strings::Nqn;
use crate::nvme::{Cqe, SglDescriptor, Sqe};
use crate::wire::{Reader, StructDecodeError, Writer, hi16, lo8, lo16};

//~ NVMe-oF 1.1, Connect Command: RECFMT (40..42), QID (42..44), SQSIZE (44..46, 0's
//~ based), CATTR (46), KATO (48..52, ms).
/// Connect command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectCommand {
    /// Command Identifier.
    pub cid: u16,
    /// Record Format (0).
    pub recfmt: u16,
    /// Queue ID: 0 for the admin queue.
    pub qid: u16,
    /// Submission Queue Size, 0's based.
    pub sqsize: u16,
    /// Connect Attributes: priority class (1:0), SQ flow control disable (bit 2).
    pub cattr: u8,
    /// Keep Alive Timeout in ms (admin queue only).
    pub kato_ms: u32,
    /// SGL for the 1024-byte Connect data (in-capsule for Linux).
    pub dptr: SglDescriptor,
}

impl ConnectCommand {
    /// CATTR bit 2: the host disables SQ flow control (SQHD need not be reported; the Linux
    /// host then accepts C2HData with SUCCESS).
    pub const CATTR_DISABLE_SQ_FLOW_CONTROL: u8 = 1 << 2;

    /// Byte offset of RECFMT (IPO of Connect Invalid Parameters in the SQE).
    pub const RECFMT_OFFSET: u16 = 40;
    /// Byte offset of QID.
    pub const QID_OFFSET: u16 = 42;
    /// Byte offset of SQSIZE.
    pub const SQSIZE_OFFSET: u16 = 44;
    /// Byte offset of CATTR.
    pub const CATTR_OFFSET: u16 = 46;
    /// Byte offset of KATO.
    pub const KATO_OFFSET: u16 = 48;

    /// The SQE.
    pub fn to_sqe(&self) -> Sqe {
        let mut sqe = fabrics_sqe(FabricsCommandType::CONNECT, self.cid, self.dptr);
        sqe.cdw[0] = u32::from(self.recfmt) | (u32::from(self.qid) << 16);
        sqe.cdw[1] = u32::from(self.sqsize) | (u32::from(self.cattr) << 16);
        sqe.cdw[2] = self.kato_ms;
        sqe
    }

    /// Whether this Connect creates the admin queue.
    pub fn is_admin(&self) -> bool {
        self.qid == 0
    }
}

impl TryFrom<&Sqe> for ConnectCommand {
    type Error = StructDecodeError;

    fn try_from(sqe: &Sqe) -> Result<Self, Self::Error> {
        check_fctype(sqe, FabricsCommandType::CONNECT, "Connect")?;
        Ok(Self {
            cid: sqe.cid,
            recfmt: lo16(sqe.cdw(10)),
            qid: hi16(sqe.cdw(10)),
            sqsize: lo16(sqe.cdw(11)),
            cattr: lo8(sqe.cdw(11) >> 16),
            kato_ms: sqe.cdw(12),
            dptr: sqe.dptr,
        })
    }
}

/// Byte offsets of the Connect data fields.
//~ NVMe-oF 1.1, Connect Data figure: HOSTID (0..16), CNTLID (16..18), reserved,
//~ SUBNQN (256..512), HOSTNQN (512..768), reserved to 1024.
pub mod connect_data_offsets {
    /// Host Identifier.
    pub const HOSTID: usize = 0;
    /// Controller ID (FFFFh: dynamic controller model, any).
    pub const CNTLID: usize = 16;
    /// NVM Subsystem NQN.
    pub const SUBNQN: usize = 256;
    /// Host NQN.
    pub const HOSTNQN: usize = 512;
}
use connect_data_offsets as o;

/// Size of the Connect data.
pub const CONNECT_DATA_LEN: usize = 1024;

/// Connect data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectData {
    /// Host Identifier (128-bit).
    pub hostid: [u8; 16],
    /// Controller ID asked for: FFFFh on the admin queue (dynamic model), the allocated CNTLID
    /// on I/O queues.
    pub cntlid: u16,
    /// Subsystem to connect to.
    pub subnqn: Nqn,
    /// The host's NQN.
    pub hostnqn: Nqn,
}

impl ConnectData {
    /// CNTLID of a dynamic-model admin Connect.
    pub const DYNAMIC_CNTLID: u16 = 0xFFFF;

    /// Bytes `encode` appends.
    pub const fn encoded_len(&self) -> usize {
        CONNECT_DATA_LEN
    }

    /// Appends the 1024 bytes.
    pub fn encode(&self, dst: &mut BytesMut) {
        let mut w = Writer::append(dst, CONNECT_DATA_LEN);
        w.bytes(o::HOSTID, &self.hostid);
        w.u16(o::CNTLID, self.cntlid);
        w.bytes(o::SUBNQN, &self.subnqn.to_field());
        w.bytes(o::HOSTNQN, &self.hostnqn.to_field());
    }

    /// Parses the data. An invalid NQN is reported with its offset, which is the IPO of the
    /// Connect Invalid Parameters response.
    pub fn decode(src: &[u8]) -> Result<Self, StructDecodeError> {
        let r = Reader::new(src, "Connect data", CONNECT_DATA_LEN)?;
        Ok(Self {
            hostid: r.array(o::HOSTID)?,
            cntlid: r.u16(o::CNTLID)?,
            subnqn: Nqn::read(&r, o::SUBNQN, "SUBNQN")?,
            // Empty from some initiators (SPDK's perf tool by default); the target decides.
            hostnqn: Nqn::read_or_empty(&r, o::HOSTNQN, "HOSTNQN")?,
        })
    }
}

//~ NVMe-oF 1.1, Connect Response: on success DW0 holds CNTLID (15:0) and AUTHREQ
//~ (31:16).
/// DW0 of a successful Connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectSuccess {
    /// Controller ID allocated (admin queue) or confirmed (I/O queue).
    pub cntlid: u16,
    /// Authentication Requirements (bit 1 ATR, bit 2 ASCR).
    pub authreq: u16,
}

impl ConnectSuccess {
    /// AUTHREQ bit 1, ATR: the host must authenticate (an authentication transaction is
    /// required) before the queue takes other commands. Linux: NVME_CONNECT_AUTHREQ_ATR.
    pub const AUTHREQ_ATR: u16 = 1 << 1;
    /// AUTHREQ bit 2, ASCR: secure channel concatenation required.
    pub const AUTHREQ_ASCR: u16 = 1 << 2;

    /// Completion DW0.
    pub fn dw0(self) -> u32 {
        u32::from(self.cntlid) | (u32::from(self.authreq) << 16)
    }

    /// From a completion.
    pub fn from_cqe(cqe: &Cqe) -> Self {
        Self {
            cntlid: lo16(cqe.dw0),
            authreq: hi16(cqe.dw0),
        }
    }
}

//~ NVMe-oF 1.1, Connect Response for Connect Invalid Parameters: IPO (15:0) the byte
//~ offset of the invalid parameter, IATTR (23:16) bit 0: 1 = in the Connect data, 0 = in the
//~ SQE. Linux IPO_IATTR_CONNECT_DATA(x) = (1 << 16) | offsetof(struct nvmf_connect_data, x).
/// DW0 of a Connect that failed with Connect Invalid Parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectInvalidParameter {
    /// The invalid parameter is in the Connect data (IATTR bit 0), not the SQE.
    pub in_data: bool,
    /// Invalid Parameter Offset.
    pub ipo: u16,
}

impl ConnectInvalidParameter {
    /// A parameter of the Connect data at `offset`.
    pub const fn data(offset: u16) -> Self {
        Self {
            in_data: true,
            ipo: offset,
        }
    }

    /// A parameter of the SQE at `offset`.
    pub const fn sqe(offset: u16) -> Self {
        Self {
            in_data: false,
            ipo: offset,
        }
    }

    /// Completion DW0.
    pub fn dw0(self) -> u32 {
        u32::from(self.ipo) | (u32::from(self.in_data) << 16)
    }

    /// From a completion.
    pub fn from_cqe(cqe: &Cqe) -> Self {
        Self {
            in_data: cqe.dw0 & (1 << 16) != 0,
            ipo: lo16(cqe.dw0),
        }
    }
}

impl ConnectInvalidParameter {
    /// The response for Connect data that failed to decode with an invalid field (an
    /// unparsable SUBNQN or HOSTNQN); `None` for other errors.
    pub fn from_data_error(err: &StructDecodeError) -> Option<Self> {
        match err {
            StructDecodeError::InvalidField { offset, .. } => {
                u16::try_from(*offset).ok().map(Self::data)
            }
            StructDecodeError::Short { .. } | StructDecodeError::WrongOpcode { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_parameter_dw0_matches_linux() {
        // Linux: IPO_IATTR_CONNECT_DATA(subsysnqn) = (1 << 16) | 256.
        assert_eq!(ConnectInvalidParameter::data(256).dw0(), 0x0001_0100);
        assert_eq!(
            ConnectInvalidParameter::sqe(ConnectCommand::SQSIZE_OFFSET).dw0(),
            44
        );
    }
}
