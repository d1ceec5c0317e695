//! CapsuleCmd: a command capsule, host to controller: the 64-byte SQE and any in-capsule data.

use bytes::{Bytes, BytesMut};

use super::error::{DecodeError, ErrorHeader};
use super::header::{PduFlags, PduType};
use super::layout::{DataTrailer, EncodeError, Layout, TxParams, write_data, write_head};
use crate::nvme::{SQE_LEN, SglId, Sqe, StatusCode};

//= NVMe/TCP 1.0 §3.6.2.6, Figure 24
//# HLEN: Fixed length of 72 bytes (48h).
//# NVMe-oF Command Capsule SQE (CCSQE): Command Capsule SQE.
//# NVMe-oF In-Capsule Data (CCICD): This field contains the in-capsule data, if any, of the
//# NVMe-oF Command Capsule.
// HLEN 72 (CH + 64-byte SQE); in-capsule data at PDO.
/// HLEN of a CapsuleCmd.
pub const CAPSULE_CMD_HLEN: usize = 72;
/// Byte offset of the SQE.
pub const CAPSULE_CMD_SQE_OFFSET: usize = 8;

/// Where the data of a received command is, once its SGL is checked against the capsule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataLocation {
    /// The command moves no data.
    None,
    /// The data is the capsule's in-capsule data (this many bytes).
    InCapsule(u32),
    /// The data moves by R2T/H2CData (write) or C2HData (read): this many bytes.
    Transport(u32),
}

/// A command capsule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CapsuleCmd {
    /// The submission queue entry.
    pub sqe: Sqe,
    /// In-capsule data (empty when the data, if any, moves by R2T/H2CData or C2HData).
    pub data: Bytes,
}

impl CapsuleCmd {
    fn layout(&self, tx: TxParams) -> Result<Layout, EncodeError> {
        Layout::compute(PduType::CAPSULE_CMD, CAPSULE_CMD_HLEN, tx, self.data.len())
    }

    /// PLEN of the encoded PDU.
    pub fn encoded_len(&self, tx: TxParams) -> Result<usize, EncodeError> {
        Ok(self.layout(tx)?.plen)
    }

    /// Appends the whole PDU, copying the data, to `dst`.
    pub fn encode(&self, tx: TxParams, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let layout = self.layout(tx)?;
        self.write_head(&layout, dst);
        write_data(&layout, &self.data, dst);
        Ok(())
    }

    /// Appends CH + PSH + HDGST + PAD to `dst` and returns the data and digest to send after
    /// it, for vectored writes without copying the data.
    pub fn encode_head(
        &self,
        tx: TxParams,
        dst: &mut BytesMut,
    ) -> Result<DataTrailer, EncodeError> {
        let layout = self.layout(tx)?;
        self.write_head(&layout, dst);
        Ok(DataTrailer::new(&layout, &self.data))
    }

    fn write_head(&self, layout: &Layout, dst: &mut BytesMut) {
        write_head(PduType::CAPSULE_CMD, PduFlags(0), layout, dst, |w| {
            w.bytes(CAPSULE_CMD_SQE_OFFSET, &self.sqe.to_bytes());
        });
    }

    /// Checks SGL1 against the capsule the way NVMe/TCP requires, and says where the data is.
    /// The error is the status to complete the command with (the connection lives on).
    //= NVMe/TCP 1.0 §3.3.2
    //# The NVMe/TCP transport supports exactly one SGL descriptor per command. NVMe/TCP supports
    //# two SGL Descriptor types. An SGL Data Block descriptor with an SGL Descriptor Sub Type value
    //# of 1h specifies the use of in-capsule data. A Transport SGL Data block descriptor with an
    //# SGL Descriptor Sub Type value of Ah is referred to as Command Data Buffer Descriptor and
    //# specifies the use of the NVMe/TCP transport specific data transfer mechanism. The length
    //# field in the descriptor specifies the size of the Command Data Buffer associated with the
    //# command (refer to Figure 14). A Command Capsule PDU with an unsupported SGL descriptor type
    //# shall be completed by the controller with an “SGL DESCRIPTOR TYPE INVALID” error status set
    //# in the Response Capsule PDU.
    // The in-capsule descriptor length must equal the in-capsule data. FreeBSD
    // `tcp_validate_command_capsule` applies the same checks.
    pub fn data_location(&self) -> Result<DataLocation, StatusCode> {
        let sgl = &self.sqe.dptr;
        let data_len =
            u32::try_from(self.data.len()).map_err(|_| StatusCode::DATA_SGL_LENGTH_INVALID)?;
        if sgl.id == SglId::IN_CAPSULE {
            if sgl.length != data_len {
                return Err(StatusCode::DATA_SGL_LENGTH_INVALID);
            }
            //= NVMe/TCP 1.0 §3.3.1
            //# The NVMe/TCP transport does not use ICDOFF to control
            //# the in-capsule data offset, thus ICDOFF shall be cleared to ‘0’.
            // Lamina and Linux use ICDOFF 0: the data starts at the in-capsule offset 0.
            if sgl.address != 0 {
                return Err(StatusCode::SGL_OFFSET_INVALID);
            }
            return Ok(if data_len == 0 {
                DataLocation::None
            } else {
                DataLocation::InCapsule(data_len)
            });
        }
        if !sgl.is_transport() {
            return Err(StatusCode::SGL_DESCRIPTOR_TYPE_INVALID);
        }
        if data_len != 0 {
            return Err(StatusCode::INVALID_FIELD);
        }
        Ok(if sgl.length == 0 {
            DataLocation::None
        } else {
            DataLocation::Transport(sgl.length)
        })
    }

    /// Parses the PSH of a received CapsuleCmd; data is attached later by the framer.
    pub(crate) fn decode_psh(head: &[u8]) -> Result<Self, DecodeError> {
        let sqe = head
            .get(CAPSULE_CMD_SQE_OFFSET..CAPSULE_CMD_SQE_OFFSET + SQE_LEN)
            .and_then(|s| <&[u8; SQE_LEN]>::try_from(s).ok())
            .map(Sqe::from_bytes)
            .ok_or_else(|| DecodeError::HeaderLength {
                pdu_type: PduType::CAPSULE_CMD,
                hlen: u8::try_from(head.len()).unwrap_or(u8::MAX),
                expected: 72,
                header: ErrorHeader::copy_from(head),
            })?;
        Ok(Self {
            sqe,
            data: Bytes::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nvme::SglDescriptor;

    fn cmd(dptr: SglDescriptor, data: &'static [u8]) -> CapsuleCmd {
        CapsuleCmd {
            sqe: Sqe {
                dptr,
                ..Sqe::default()
            },
            data: Bytes::from_static(data),
        }
    }

    // NVMe/TCP 1.0 §3.3.2
    // NVMe/TCP 1.0 §3.3.1
    #[test]
    fn data_location_follows_the_sgl() {
        assert_eq!(
            cmd(SglDescriptor::in_capsule(0, 4), b"abcd").data_location(),
            Ok(DataLocation::InCapsule(4))
        );
        assert_eq!(
            cmd(SglDescriptor::transport(4096), b"").data_location(),
            Ok(DataLocation::Transport(4096))
        );
        assert_eq!(
            cmd(SglDescriptor::transport(0), b"").data_location(),
            Ok(DataLocation::None)
        );
        assert_eq!(
            cmd(SglDescriptor::in_capsule(0, 8), b"abcd").data_location(),
            Err(StatusCode::DATA_SGL_LENGTH_INVALID)
        );
        assert_eq!(
            cmd(SglDescriptor::in_capsule(16, 4), b"abcd").data_location(),
            Err(StatusCode::SGL_OFFSET_INVALID)
        );
        assert_eq!(
            cmd(SglDescriptor::transport(4), b"abcd").data_location(),
            Err(StatusCode::INVALID_FIELD)
        );
        assert_eq!(
            cmd(
                SglDescriptor {
                    id: SglId(0x40),
                    ..SglDescriptor::default()
                },
                b""
            )
            .data_location(),
            Err(StatusCode::SGL_DESCRIPTOR_TYPE_INVALID)
        );
    }
}
