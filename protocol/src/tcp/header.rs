//! The 8-byte NVMe/TCP common header (CH) that starts every PDU: PDU-Type, FLAGS, HLEN, PDO and
//! PLEN, with the PDU type and flag code spaces.

use bytes::{BufMut, BytesMut};
use nom::Parser;
use nom::number::complete::{le_u8, le_u32};

use crate::wire::open_enum;

//= NVMe/TCP 1.0 §2, Figure 4
//# The PDU Header (HDR) consists of a PDU Common Header (CH) which has a fixed length of 8 bytes
//# and a PDU Specific Header (PSH) which has a variable length (refer to section 3.6.2.1).
/// Size of the common header in bytes.
pub const CH_LEN: usize = 8;
/// Byte offset of PDU-Type in the CH.
pub const CH_TYPE_OFFSET: u32 = 0;
/// Byte offset of FLAGS in the CH.
pub const CH_FLAGS_OFFSET: u32 = 1;
/// Byte offset of HLEN in the CH.
pub const CH_HLEN_OFFSET: u32 = 2;
/// Byte offset of PDO in the CH.
pub const CH_PDO_OFFSET: u32 = 3;
/// Byte offset of PLEN in the CH.
pub const CH_PLEN_OFFSET: u32 = 4;

open_enum! {
    //= NVMe/TCP 1.0 §3.3, Figure 10
    //# 1. Indicates the opcode encoded direction of the PDU. All PDUs shall follow this convention:
    //# a. 0b = Host to Controller (H2C); and
    //# b. 1b = Controller to Host (C2H).
    //# 2. Opcodes not listed are reserved.
    /// PDU-Type: which PDU follows. Even types travel host to controller, odd ones controller
    /// to host.
    pub struct PduType(u8) {
        /// Initialize Connection Request.
        IC_REQ = 0x00,
        /// Initialize Connection Response.
        IC_RESP = 0x01,
        /// Host to Controller Terminate Connection Request.
        H2C_TERM_REQ = 0x02,
        /// Controller to Host Terminate Connection Request.
        C2H_TERM_REQ = 0x03,
        /// Command Capsule.
        CAPSULE_CMD = 0x04,
        /// Response Capsule.
        CAPSULE_RESP = 0x05,
        /// Host to Controller Data.
        H2C_DATA = 0x06,
        /// Controller to Host Data.
        C2H_DATA = 0x07,
        /// Ready to Transfer.
        R2T = 0x09,
    }
}

impl PduType {
    /// HLEN that the specification fixes for this PDU type, or `None` for an unknown type.
    //= NVMe/TCP 1.0 §3.6.2.1, Figure 19
    //# Header Length (HLEN): Length of PDU Header (not including the HDGST) in bytes.
    // Each PDU's figure fixes its HLEN: 128 for ICReq/ICResp, 72 for CapsuleCmd, 24 for the rest.
    pub const fn header_len(self) -> Option<u8> {
        match self {
            Self::IC_REQ | Self::IC_RESP => Some(128),
            Self::H2C_TERM_REQ
            | Self::C2H_TERM_REQ
            | Self::CAPSULE_RESP
            | Self::H2C_DATA
            | Self::C2H_DATA
            | Self::R2T => Some(24),
            Self::CAPSULE_CMD => Some(72),
            _ => None,
        }
    }

    /// Whether this PDU type may carry a header digest (all but ICReq, ICResp and TermReq).
    pub const fn may_have_header_digest(self) -> bool {
        !matches!(
            self,
            Self::IC_REQ | Self::IC_RESP | Self::H2C_TERM_REQ | Self::C2H_TERM_REQ
        )
    }

    /// Whether this PDU type may carry data that a data digest protects.
    pub const fn may_have_data_digest(self) -> bool {
        matches!(self, Self::CAPSULE_CMD | Self::H2C_DATA | Self::C2H_DATA)
    }

    /// Whether the host sends this PDU type to the controller.
    pub const fn is_host_to_controller(self) -> bool {
        matches!(
            self,
            Self::IC_REQ | Self::H2C_TERM_REQ | Self::CAPSULE_CMD | Self::H2C_DATA
        )
    }

    /// Whether the controller sends this PDU type to the host.
    pub const fn is_controller_to_host(self) -> bool {
        matches!(
            self,
            Self::IC_RESP | Self::C2H_TERM_REQ | Self::CAPSULE_RESP | Self::C2H_DATA | Self::R2T
        )
    }

    /// FLAGS bits defined for this PDU type; every other bit is reserved.
    //= NVMe/TCP 1.0 §3.6.2.2, Figure 20
    //# FLAGS: Reserved
    // ICReq, ICResp and TermReq define no FLAGS bits (Figures 20 to 23).
    //= NVMe/TCP 1.0 §3.6.2.8, Figure 26
    //# 7:3 Reserved
    //# LAST_PDU: If set to ‘1’, indicates the PDU is the last in the set of H2CData
    //# PDUs that correspond to the same R2T PDU.
    //# DDGSTF: If set to ‘1’, then a valid DDGST value follows the PDU Data.
    //# HDGSTF: If set to ‘1’, then a valid HDGST value follows the PDU Header.
    // HDGSTF/DDGSTF where digests apply, LAST_PDU on data PDUs, SUCCESS on C2HData only
    // (Figures 24 to 28 list the bits of each PDU).
    pub const fn valid_flags(self) -> PduFlags {
        match self {
            Self::CAPSULE_CMD => PduFlags(PduFlags::HDGSTF.0 | PduFlags::DDGSTF.0),
            Self::CAPSULE_RESP | Self::R2T => PduFlags::HDGSTF,
            Self::H2C_DATA => {
                PduFlags(PduFlags::HDGSTF.0 | PduFlags::DDGSTF.0 | PduFlags::LAST_PDU.0)
            }
            Self::C2H_DATA => PduFlags(
                PduFlags::HDGSTF.0
                    | PduFlags::DDGSTF.0
                    | PduFlags::LAST_PDU.0
                    | PduFlags::SUCCESS.0,
            ),
            _ => PduFlags(0),
        }
    }
}

/// The CH FLAGS byte.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PduFlags(pub u8);

impl PduFlags {
    /// HDGSTF: a header digest follows the PSH.
    pub const HDGSTF: Self = Self(1 << 0);
    /// DDGSTF: a data digest follows the data.
    pub const DDGSTF: Self = Self(1 << 1);
    /// LAST_PDU (H2CData, C2HData): last data PDU of the transfer.
    pub const LAST_PDU: Self = Self(1 << 2);
    /// SUCCESS (C2HData): the command completed successfully and no CapsuleResp follows.
    pub const SUCCESS: Self = Self(1 << 3);

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Union of both flag sets.
    #[must_use]
    pub const fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// `other` set or cleared according to `on`.
    #[must_use]
    pub const fn set_if(self, other: Self, on: bool) -> Self {
        if on { Self(self.0 | other.0) } else { self }
    }
}

impl core::fmt::Debug for PduFlags {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let names = [
            (Self::HDGSTF, "HDGSTF"),
            (Self::DDGSTF, "DDGSTF"),
            (Self::LAST_PDU, "LAST_PDU"),
            (Self::SUCCESS, "SUCCESS"),
        ];
        write!(f, "PduFlags(")?;
        let mut first = true;
        for (flag, name) in names {
            if self.contains(flag) {
                write!(f, "{}{name}", if first { "" } else { "|" })?;
                first = false;
            }
        }
        let rest = self.0 & 0xf0;
        if rest != 0 {
            write!(f, "{}{rest:#x}", if first { "" } else { "|" })?;
        }
        write!(f, ")")
    }
}

//= NVMe/TCP 1.0 §3.6.2.1, Figure 19
//# PDU-Type: Specifies the type of PDU. This value is also referred to as the PDU opcode. Refer to
//# Figure 10 for PDU opcodes.
//# FLAGS: PDU-TYPE specific flags
//# Header Length (HLEN): Length of PDU Header (not including the HDGST) in bytes.
//# PDU Data Offset (PDO): PDU Data Offset from the start of the PDU in bytes.
//# PDU Length (PLEN): Total length of PDU (includes CH, PSH, HDGST, PAD, DATA, and DDGST) in bytes.
/// The decoded common header, exactly as it was on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommonHeader {
    /// PDU-Type.
    pub pdu_type: PduType,
    /// FLAGS.
    pub flags: PduFlags,
    /// HLEN: length of CH + PSH, excluding the header digest.
    pub hlen: u8,
    /// PDO: offset of the data from the start of the PDU, 0 when the PDU has no data.
    pub pdo: u8,
    /// PLEN: length of the whole PDU including digests and padding.
    pub plen: u32,
}

impl CommonHeader {
    /// Parses the first [`CH_LEN`] bytes of `src`; `None` if fewer are available.
    pub fn parse(src: &[u8]) -> Option<Self> {
        let (_, (pdu_type, flags, hlen, pdo, plen)) = (
            le_u8::<_, nom::error::Error<&[u8]>>,
            le_u8,
            le_u8,
            le_u8,
            le_u32,
        )
            .parse(src)
            .ok()?;
        Some(Self {
            pdu_type: PduType(pdu_type),
            flags: PduFlags(flags),
            hlen,
            pdo,
            plen,
        })
    }

    /// Appends the 8 header bytes to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(self.pdu_type.0);
        dst.put_u8(self.flags.0);
        dst.put_u8(self.hlen);
        dst.put_u8(self.pdo);
        dst.put_u32_le(self.plen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // NVMe/TCP 1.0 §2
    #[test]
    fn common_header_round_trips_and_is_8_bytes() {
        let ch = CommonHeader {
            pdu_type: PduType::C2H_DATA,
            flags: PduFlags::LAST_PDU.with(PduFlags::SUCCESS),
            hlen: 24,
            pdo: 24,
            plen: 0x0102_0304,
        };
        let mut b = BytesMut::new();
        ch.encode(&mut b);
        assert_eq!(b.len(), CH_LEN);
        assert_eq!(&b[..], &[0x07, 0x0c, 24, 24, 0x04, 0x03, 0x02, 0x01]);
        assert_eq!(CommonHeader::parse(&b), Some(ch));
        assert_eq!(CommonHeader::parse(&b[..7]), None);
    }

    // NVMe/TCP 1.0 §3.6.2.1
    #[test]
    fn header_lengths_match_the_spec() {
        assert_eq!(PduType::IC_REQ.header_len(), Some(128));
        assert_eq!(PduType::IC_RESP.header_len(), Some(128));
        assert_eq!(PduType::CAPSULE_CMD.header_len(), Some(72));
        assert_eq!(PduType::CAPSULE_RESP.header_len(), Some(24));
        assert_eq!(PduType::H2C_DATA.header_len(), Some(24));
        assert_eq!(PduType::C2H_DATA.header_len(), Some(24));
        assert_eq!(PduType::R2T.header_len(), Some(24));
        assert_eq!(PduType::H2C_TERM_REQ.header_len(), Some(24));
        assert_eq!(PduType(8).header_len(), None);
    }

    #[test]
    fn flags_debug_names_bits() {
        let f = PduFlags::HDGSTF
            .with(PduFlags::LAST_PDU)
            .with(PduFlags(0x40));
        assert_eq!(format!("{f:?}"), "PduFlags(HDGSTF|LAST_PDU|0x40)");
    }
}
