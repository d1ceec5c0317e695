//! Host-to-controller transfers in progress: commands whose data comes by R2T and H2CData.
//!
//! Each transfer has a transfer tag (TTAG, the slot index) and expects its data in order: the
//! target sends one R2T for the whole length (the Linux host allows one outstanding R2T per
//! command), and the host answers with H2CData PDUs of at most MAXH2CDATA bytes each, DATAO
//! equal to what arrived so far, LAST_PDU on the final one. Anything else is a protocol
//! violation that terminates the connection; its [`Violation`] names the rule, FES and field.

use bytes::{Bytes, BytesMut};

use super::error::{Rule, Violation, field_offset as offset};
use crate::nvme::Sqe;
use crate::tcp::header::CH_FLAGS_OFFSET;
use crate::tcp::{DATA_CCCID_OFFSET, DATA_DATAO_OFFSET, DATA_TTAG_OFFSET, Fes, H2cData};

/// One command waiting for its data.
#[derive(Debug)]
pub struct Transfer {
    /// The command.
    pub sqe: Sqe,
    /// Bytes the command transfers.
    pub total: u32,
    /// Bytes received so far.
    pub received: u32,
    /// The data: one chunk kept as is (zero-copy), several gathered into `gathered`.
    first: Option<Bytes>,
    gathered: Option<BytesMut>,
}

impl Transfer {
    /// Adds one H2CData; `Ok(true)` when the transfer is complete.
    fn accept(&mut self, pdu: &H2cData) -> Result<bool, Violation> {
        if pdu.cccid != self.sqe.cid {
            return Err(Violation::host(
                Rule::TransferCommandMismatch,
                Fes::INVALID_HEADER_FIELD,
                offset(DATA_CCCID_OFFSET),
            ));
        }
        //= NVMe/TCP 1.0 §3.3.2.2
        //# H2CData PDUs start at the offset specified in the R2T PDU (R2TO) and transfer data
        //# contiguously until the data transfer length specified by the R2T PDU (R2TL) is reached
        //# (i.e., the DATAO field in the first H2CData PDU is equal to R2TO that specified in the
        //# R2T PDU and DATAO field in subsequent PDUs is equal the DATAO field plus DATAL field of
        //# the previous H2CData PDU).
        // DATAO must equal the bytes received so far (the one R2T starts at 0). Lamina reports a
        // non-contiguous DATAO as Data Transfer Out of Range at DATAO.
        let len = u32::try_from(pdu.data.len()).unwrap_or(u32::MAX);
        if pdu.datao != self.received || len == 0 {
            return Err(Violation::host(
                Rule::DataOffset,
                Fes::DATA_OUT_OF_RANGE,
                offset(DATA_DATAO_OFFSET),
            ));
        }
        //= NVMe/TCP 1.0 §3.3.2.2
        //# Reception of a H2CData PDU that is outside the range starting from R2TO to R2TO + R2TL
        //# is treated as a fatal transport error with the Fatal Error Status field in the
        //# C2HTermReq PDU set to “Data Transfer Out of Range”.
        let end = self.received.checked_add(len).filter(|e| *e <= self.total);
        let Some(end) = end else {
            return Err(Violation::host(
                Rule::DataPastR2t,
                Fes::DATA_OUT_OF_RANGE,
                offset(DATA_DATAO_OFFSET),
            ));
        };
        let complete = end == self.total;
        //= NVMe/TCP 1.0 §3.3.2.2
        //# The LAST_PDU flag in H2CData PDUs is cleared to ‘0’ in all but the last H2CData PDU that
        //# is associated with a single R2T PDU. The LAST_PDU flag is set to ‘1’ in the last H2CData
        //# PDU that satisfies a R2T request.
        // A LAST_PDU flag that disagrees with the end of the transfer is a PDU Sequence Error.
        if pdu.last_pdu != complete {
            return Err(Violation::host(
                Rule::LastPduFlag,
                Fes::PDU_SEQUENCE_ERROR,
                CH_FLAGS_OFFSET,
            ));
        }
        self.received = end;
        match (&mut self.first, &mut self.gathered) {
            (None, None) if complete => self.first = Some(pdu.data.clone()),
            (None, None) => {
                let mut b = BytesMut::with_capacity(self.total as usize);
                b.extend_from_slice(&pdu.data);
                self.gathered = Some(b);
            }
            (_, Some(b)) => b.extend_from_slice(&pdu.data),
            // A complete single chunk ends the transfer, so nothing follows it; gather anyway.
            (Some(first), None) => {
                let mut b = BytesMut::from(&first[..]);
                b.extend_from_slice(&pdu.data);
                self.first = None;
                self.gathered = Some(b);
            }
        }
        Ok(complete)
    }

    /// The data, once complete.
    fn into_data(self) -> Bytes {
        match (self.first, self.gathered) {
            (Some(b), _) => b,
            (None, Some(b)) => b.freeze(),
            (None, None) => Bytes::new(),
        }
    }
}

/// The transfers of one queue, by TTAG.
#[derive(Debug, Default)]
pub struct Transfers {
    slots: Vec<Option<Transfer>>,
    free: Vec<u16>,
    active: usize,
}

impl Transfers {
    /// Room for `capacity` concurrent transfers (the queue size).
    pub fn with_capacity(capacity: u16) -> Self {
        Self {
            slots: (0..capacity).map(|_| None).collect(),
            free: (0..capacity).rev().collect(),
            active: 0,
        }
    }

    /// Starts a transfer; `None` when every tag is in use.
    pub fn start(&mut self, sqe: Sqe, total: u32) -> Option<u16> {
        let ttag = self.free.pop()?;
        let slot = self.slots.get_mut(usize::from(ttag))?;
        *slot = Some(Transfer {
            sqe,
            total,
            received: 0,
            first: None,
            gathered: None,
        });
        self.active += 1;
        Some(ttag)
    }

    /// Adds an H2CData; `Ok(Some((sqe, data)))` when its transfer completed.
    pub fn on_data(&mut self, pdu: &H2cData) -> Result<Option<(Sqe, Bytes)>, Violation> {
        //= NVMe/TCP 1.0 §3.3.2.2
        //# Reception of a H2CData PDU with an unknown TTAG is treated as a fatal transport error
        //# with the Fatal Error Status field set to “Invalid PDU Header Field” and the Additional
        //# Error Information field containing the TTAG field byte offset.
        let unknown = || {
            Violation::host(
                Rule::UnknownTransferTag,
                Fes::INVALID_HEADER_FIELD,
                offset(DATA_TTAG_OFFSET),
            )
        };
        let slot = self
            .slots
            .get_mut(usize::from(pdu.ttag))
            .ok_or_else(unknown)?;
        let transfer = slot.as_mut().ok_or_else(unknown)?;
        if !transfer.accept(pdu)? {
            return Ok(None);
        }
        let done = slot.take().ok_or_else(unknown)?;
        self.free.push(pdu.ttag);
        self.active -= 1;
        let sqe = done.sqe;
        Ok(Some((sqe, done.into_data())))
    }

    /// Drops the transfer of command `cid`, if any (its command failed); whether there was one.
    pub fn abort_command(&mut self, cid: u16) -> bool {
        for (tag, slot) in self.slots.iter_mut().enumerate() {
            if slot.as_ref().is_some_and(|t| t.sqe.cid == cid) {
                *slot = None;
                self.active -= 1;
                if let Ok(tag) = u16::try_from(tag) {
                    self.free.push(tag);
                }
                return true;
            }
        }
        false
    }

    /// Transfers in progress.
    #[cfg(test)]
    pub fn active(&self) -> usize {
        self.active
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqe(cid: u16) -> Sqe {
        Sqe {
            cid,
            ..Sqe::default()
        }
    }

    fn h2c(cccid: u16, ttag: u16, datao: u32, data: &'static [u8], last: bool) -> H2cData {
        H2cData {
            cccid,
            ttag,
            datao,
            last_pdu: last,
            data: Bytes::from_static(data),
        }
    }

    #[test]
    fn single_chunk_is_kept_without_copy() {
        let mut t = Transfers::with_capacity(2);
        let tag = t.start(sqe(7), 4).unwrap();
        let pdu = h2c(7, tag, 0, b"abcd", true);
        let (s, data) = t.on_data(&pdu).unwrap().unwrap();
        assert_eq!(s.cid, 7);
        assert_eq!(data.as_ptr(), pdu.data.as_ptr());
        assert_eq!(t.active(), 0);
    }

    // NVMe/TCP 1.0 §3.3.2.2
    #[test]
    fn chunks_gather_in_order() {
        let mut t = Transfers::with_capacity(1);
        let tag = t.start(sqe(1), 6).unwrap();
        assert!(t.start(sqe(2), 1).is_none(), "one tag only");
        assert_eq!(t.on_data(&h2c(1, tag, 0, b"abc", false)).unwrap(), None);
        let (_, data) = t.on_data(&h2c(1, tag, 3, b"def", true)).unwrap().unwrap();
        assert_eq!(&data[..], b"abcdef");
        assert!(t.start(sqe(2), 1).is_some(), "tag reused");
    }

    // NVMe/TCP 1.0 §3.3.2.2
    #[test]
    fn violations_name_the_field() {
        let mut t = Transfers::with_capacity(4);
        let tag = t.start(sqe(1), 8).unwrap();
        let e = t.on_data(&h2c(1, 3, 0, b"abcd", false)).unwrap_err();
        assert_eq!(e.fes, Fes::INVALID_HEADER_FIELD);
        assert_eq!(e.field_offset, 10);
        let e = t.on_data(&h2c(2, tag, 0, b"abcd", false)).unwrap_err();
        assert_eq!(e.field_offset, 8);
        let e = t.on_data(&h2c(1, tag, 4, b"abcd", false)).unwrap_err();
        assert_eq!(e.fes, Fes::DATA_OUT_OF_RANGE);
        let e = t.on_data(&h2c(1, tag, 0, b"abcdabcdab", true)).unwrap_err();
        assert_eq!(e.fes, Fes::DATA_OUT_OF_RANGE);
        let e = t.on_data(&h2c(1, tag, 0, b"abcd", true)).unwrap_err();
        assert_eq!(e.fes, Fes::PDU_SEQUENCE_ERROR);
    }
}
