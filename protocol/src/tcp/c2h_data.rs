//! C2HData: controller-to-host data for a read-type command, optionally completing it
//! (LAST_PDU | SUCCESS) without a CapsuleResp.

use bytes::{Bytes, BytesMut};

use super::data_pdu::{
    DATA_CCCID_OFFSET, DATA_DATAL_OFFSET, DATA_DATAO_OFFSET, DATA_PDU_HLEN, decode_data_fields,
};
use super::error::DecodeError;
use super::header::{PduFlags, PduType};
use super::layout::{DataTrailer, EncodeError, Layout, TxParams, write_data, write_head};

/// Controller to Host Data. DATAL is the length of `data`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct C2hData {
    /// Command Capsule CID of the command the data belongs to.
    pub cccid: u16,
    /// Data Offset within the command's data buffer.
    pub datao: u32,
    /// LAST_PDU: the last C2HData of the command.
    pub last_pdu: bool,
    /// SUCCESS: the command succeeded and no CapsuleResp follows. Requires `last_pdu`; the
    /// Linux host accepts it only when SQ flow control is disabled on the queue.
    //= NVMe/TCP 1.0 §3.3.2.1
    //# The SUCCESS flag shall be cleared to ‘0’ in all C2HData PDUs that are not the last C2HData
    //# PDU for a command.
    // SUCCESS is sent only together with LAST_PDU.
    //= NVMe/TCP 1.0 §3.6.2.9, Figure 27
    //# SUCCESS: If set to ‘1’, indicates that the command referenced by CCCID was
    //# completed successfully with no other information and that no Response Capsule PDU
    //# is sent by the Controller.
    pub success: bool,
    /// The data.
    pub data: Bytes,
}

impl C2hData {
    fn layout(&self, tx: TxParams) -> Result<Layout, EncodeError> {
        Layout::compute(PduType::C2H_DATA, DATA_PDU_HLEN, tx, self.data.len())
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

    /// Appends CH + PSH + HDGST + PAD and returns the data and digest to send after it.
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
        let flags = PduFlags(0)
            .set_if(PduFlags::LAST_PDU, self.last_pdu)
            .set_if(PduFlags::SUCCESS, self.success);
        let datal = u32::try_from(layout.data_len).unwrap_or(u32::MAX);
        write_head(PduType::C2H_DATA, flags, layout, dst, |w| {
            w.u16(DATA_CCCID_OFFSET, self.cccid);
            w.u32(DATA_DATAO_OFFSET, self.datao);
            w.u32(DATA_DATAL_OFFSET, datal);
        });
    }

    pub(crate) fn decode_psh(
        head: &[u8],
        flags: PduFlags,
        data_len: usize,
    ) -> Result<Self, DecodeError> {
        let f = decode_data_fields(PduType::C2H_DATA, head, data_len)?;
        Ok(Self {
            cccid: f.cccid,
            datao: f.datao,
            last_pdu: flags.contains(PduFlags::LAST_PDU),
            success: flags.contains(PduFlags::SUCCESS),
            data: Bytes::new(),
        })
    }
}
