//! H2CData: host-to-controller data answering an R2T.

use bytes::{Bytes, BytesMut};

use super::data_pdu::{
    DATA_CCCID_OFFSET, DATA_DATAL_OFFSET, DATA_DATAO_OFFSET, DATA_PDU_HLEN, DATA_TTAG_OFFSET,
    decode_data_fields,
};
use super::error::DecodeError;
use super::header::{PduFlags, PduType};
use super::layout::{DataTrailer, EncodeError, Layout, TxParams, write_data, write_head};

/// Host to Controller Data. DATAL is the length of `data`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct H2cData {
    /// Command Capsule CID of the command the data belongs to.
    pub cccid: u16,
    /// Transfer Tag copied from the R2T.
    pub ttag: u16,
    /// Data Offset within the command's data buffer.
    pub datao: u32,
    /// LAST_PDU: the last H2CData for this R2T.
    pub last_pdu: bool,
    /// The data.
    pub data: Bytes,
}

impl H2cData {
    fn layout(&self, tx: TxParams) -> Result<Layout, EncodeError> {
        Layout::compute(PduType::H2C_DATA, DATA_PDU_HLEN, tx, self.data.len())
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
        let flags = PduFlags(0).set_if(PduFlags::LAST_PDU, self.last_pdu);
        let datal = u32::try_from(layout.data_len).unwrap_or(u32::MAX);
        write_head(PduType::H2C_DATA, flags, layout, dst, |w| {
            w.u16(DATA_CCCID_OFFSET, self.cccid);
            w.u16(DATA_TTAG_OFFSET, self.ttag);
            w.u32(DATA_DATAO_OFFSET, self.datao);
            w.u32(DATA_DATAL_OFFSET, datal);
        });
    }

    pub(crate) fn decode_psh(
        head: &[u8],
        flags: PduFlags,
        data_len: usize,
    ) -> Result<Self, DecodeError> {
        let f = decode_data_fields(PduType::H2C_DATA, head, data_len)?;
        Ok(Self {
            cccid: f.cccid,
            ttag: f.ttag,
            datao: f.datao,
            last_pdu: flags.contains(PduFlags::LAST_PDU),
            data: Bytes::new(),
        })
    }
}
