//! [`PduHead`]: a copy of the header of the next PDU in the receive buffer, taken before the
//! framer consumes it.
//!
//! Two things need the raw header after decoding: the H2CTermReq this host sends when a
//! well-formed PDU breaks the protocol (its data is the offending header), and the handling of
//! a C2HData data digest error. For the latter the framer reports only the CCCID
//! (`DecodeError::DataDigest`), but the host also needs DATAO, DATAL and the LAST_PDU/SUCCESS
//! flags: with SUCCESS set no CapsuleResp follows, and the command must be completed (with a
//! data transfer error) right away.

use lamina_protocol::tcp::{
    CommonHeader, DATA_CCCID_OFFSET, DATA_DATAL_OFFSET, DATA_DATAO_OFFSET, DIGEST_LEN, PduFlags,
    PduType,
};

/// Largest header kept: a 24-byte PSH plus its header digest.
const KEEP: usize = 32;

/// The first bytes of one PDU as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PduHead {
    bytes: [u8; KEEP],
    len: usize,
}

/// DATAO, DATAL and flags of a C2HData header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DataHead {
    pub(crate) cccid: u16,
    pub(crate) datao: u32,
    pub(crate) datal: u32,
    pub(crate) last_pdu: bool,
    pub(crate) success: bool,
}

impl PduHead {
    /// Copies the header at the front of `buf` (CH + PSH + HDGST, at most 32 bytes).
    pub(crate) fn peek(buf: &[u8]) -> Self {
        let mut head = Self {
            bytes: [0; KEEP],
            len: 0,
        };
        let Some(ch) = CommonHeader::parse(buf) else {
            return head;
        };
        let digest = if ch.flags.contains(PduFlags::HDGSTF) {
            DIGEST_LEN
        } else {
            0
        };
        let len = (usize::from(ch.hlen) + digest).min(KEEP).min(buf.len());
        if let (Some(dst), Some(src)) = (head.bytes.get_mut(..len), buf.get(..len)) {
            dst.copy_from_slice(src);
            head.len = len;
        }
        head
    }

    /// The bytes kept.
    pub(crate) fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }

    /// The C2HData fields, if this is a complete C2HData header.
    pub(crate) fn c2h_data(&self) -> Option<DataHead> {
        let b = self.as_slice();
        let ch = CommonHeader::parse(b)?;
        if ch.pdu_type != PduType::C2H_DATA {
            return None;
        }
        let u16_at = |o: usize| Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?));
        let u32_at = |o: usize| Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?));
        Some(DataHead {
            cccid: u16_at(DATA_CCCID_OFFSET)?,
            datao: u32_at(DATA_DATAO_OFFSET)?,
            datal: u32_at(DATA_DATAL_OFFSET)?,
            last_pdu: ch.flags.contains(PduFlags::LAST_PDU),
            success: ch.flags.contains(PduFlags::SUCCESS),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use lamina_protocol::tcp::{C2hData, Digests, Pda, TxParams};

    #[test]
    fn keeps_a_c2h_data_header_with_its_digest() {
        let pdu = C2hData {
            cccid: 0x1234,
            datao: 4096,
            last_pdu: true,
            success: true,
            data: Bytes::from_static(&[7; 100]),
        };
        let tx = TxParams {
            digests: Digests::BOTH,
            peer_pda: Pda(0),
        };
        let mut b = BytesMut::new();
        pdu.encode(tx, &mut b).unwrap();
        let head = PduHead::peek(&b);
        assert_eq!(head.as_slice().len(), 28);
        assert_eq!(
            head.c2h_data(),
            Some(DataHead {
                cccid: 0x1234,
                datao: 4096,
                datal: 100,
                last_pdu: true,
                success: true,
            })
        );
    }

    #[test]
    fn short_or_empty_input_gives_an_empty_head() {
        assert!(PduHead::peek(&[]).as_slice().is_empty());
        assert!(PduHead::peek(&[7, 0, 24]).c2h_data().is_none());
        let partial = PduHead::peek(&[7, 0, 24, 24, 100, 0, 0, 0, 1, 2]);
        assert_eq!(partial.as_slice().len(), 10);
        assert!(partial.c2h_data().is_none());
    }
}
