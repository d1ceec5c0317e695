//! Host-to-controller transfers in progress: commands whose data comes by R2T and H2CData.
//!
//! Each transfer has a transfer tag (TTAG, the slot index) and expects its data in order: the
//! target asks with R2Ts of at most `max_r2t` bytes, one outstanding at a time (the Linux host
//! allows one per command), the next sent when the previous one's data has all arrived; the
//! host answers each with H2CData PDUs of at most MAXH2CDATA bytes, DATAO equal to what
//! arrived so far, LAST_PDU on the final one of that R2T. Anything else is a protocol
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
    /// End of the range the R2Ts sent so far asked for.
    pub asked: u32,
    /// The data: one chunk kept as is (zero-copy), several gathered into `gathered`.
    first: Option<Bytes>,
    gathered: Option<BytesMut>,
}

/// Where a transfer stands after one H2CData.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// More data is coming for the R2T outstanding.
    Receiving,
    /// The outstanding R2T is satisfied: send the next one (its offset and length).
    NextR2t {
        /// R2TO.
        offset: u32,
        /// R2TL.
        len: u32,
    },
    /// Every byte arrived: the command and its data.
    Complete(Sqe, Bytes),
}

impl Transfer {
    /// Asks for the next range: its offset and length, at most `max_r2t` bytes.
    fn ask(&mut self, max_r2t: u32) -> (u32, u32) {
        let offset = self.asked;
        let len = (self.total - offset).min(max_r2t.max(1));
        self.asked = offset + len;
        (offset, len)
    }

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
        // DATAO must equal the bytes received so far (R2Ts follow each other). Lamina reports a
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
        let end = self.received.checked_add(len).filter(|e| *e <= self.asked);
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
        // A LAST_PDU flag that disagrees with the end of the R2T's range is a PDU Sequence
        // Error.
        if pdu.last_pdu != (end == self.asked) {
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
    max_r2t: u32,
}

impl Transfers {
    /// Room for `capacity` concurrent transfers (the queue size), each R2T asking for at most
    /// `max_r2t` bytes.
    pub fn with_capacity(capacity: u16, max_r2t: u32) -> Self {
        Self {
            slots: (0..capacity).map(|_| None).collect(),
            free: (0..capacity).rev().collect(),
            active: 0,
            max_r2t,
        }
    }

    /// Starts a transfer: its tag and the first R2T's length (its offset is 0); `None` when
    /// every tag is in use.
    pub fn start(&mut self, sqe: Sqe, total: u32) -> Option<(u16, u32)> {
        let ttag = self.free.pop()?;
        let slot = self.slots.get_mut(usize::from(ttag))?;
        let mut transfer = Transfer {
            sqe,
            total,
            received: 0,
            asked: 0,
            first: None,
            gathered: None,
        };
        let (_, len) = transfer.ask(self.max_r2t);
        *slot = Some(transfer);
        self.active += 1;
        Some((ttag, len))
    }

    /// Adds an H2CData: what the transfer needs next, or its data once complete.
    pub fn on_data(&mut self, pdu: &H2cData) -> Result<Received, Violation> {
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
            if transfer.received < transfer.asked {
                return Ok(Received::Receiving);
            }
            let (offset, len) = transfer.ask(self.max_r2t);
            return Ok(Received::NextR2t { offset, len });
        }
        let done = slot.take().ok_or_else(unknown)?;
        self.free.push(pdu.ttag);
        self.active -= 1;
        let sqe = done.sqe;
        Ok(Received::Complete(sqe, done.into_data()))
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
        let mut t = Transfers::with_capacity(2, u32::MAX);
        let (tag, _) = t.start(sqe(7), 4).unwrap();
        let pdu = h2c(7, tag, 0, b"abcd", true);
        let Received::Complete(s, data) = t.on_data(&pdu).unwrap() else {
            panic!("not complete")
        };
        assert_eq!(s.cid, 7);
        assert_eq!(data.as_ptr(), pdu.data.as_ptr());
        assert_eq!(t.active(), 0);
    }

    // NVMe/TCP 1.0 §3.3.2.2
    #[test]
    fn chunks_gather_in_order() {
        let mut t = Transfers::with_capacity(1, u32::MAX);
        let (tag, _) = t.start(sqe(1), 6).unwrap();
        assert!(t.start(sqe(2), 1).is_none(), "one tag only");
        assert_eq!(
            t.on_data(&h2c(1, tag, 0, b"abc", false)).unwrap(),
            Received::Receiving
        );
        let Received::Complete(_, data) = t.on_data(&h2c(1, tag, 3, b"def", true)).unwrap() else {
            panic!("not complete")
        };
        assert_eq!(&data[..], b"abcdef");
        assert!(t.start(sqe(2), 1).is_some(), "tag reused");
    }

    // NVMe/TCP 1.0 §3.3.2.2
    #[test]
    fn violations_name_the_field() {
        let mut t = Transfers::with_capacity(4, u32::MAX);
        let (tag, _) = t.start(sqe(1), 8).unwrap();
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

    // NVMe/TCP 1.0 §3.3.2.2
    #[test]
    fn r2ts_of_at_most_max_r2t_follow_each_other() {
        let mut t = Transfers::with_capacity(1, 4);
        let (tag, first) = t.start(sqe(1), 10).unwrap();
        assert_eq!(first, 4);
        assert_eq!(
            t.on_data(&h2c(1, tag, 0, b"ab", false)).unwrap(),
            Received::Receiving
        );
        // Data past the outstanding R2T's range is out of range even inside the command.
        let mut over = Transfers::with_capacity(1, 4);
        let (otag, _) = over.start(sqe(1), 10).unwrap();
        let e = over
            .on_data(&h2c(1, otag, 0, b"abcdef", false))
            .unwrap_err();
        assert_eq!(e.fes, Fes::DATA_OUT_OF_RANGE);
        // LAST_PDU ends each R2T's range, not only the command's.
        let e = over.on_data(&h2c(1, otag, 0, b"abcd", false)).unwrap_err();
        assert_eq!(e.fes, Fes::PDU_SEQUENCE_ERROR);
        assert_eq!(
            t.on_data(&h2c(1, tag, 2, b"cd", true)).unwrap(),
            Received::NextR2t { offset: 4, len: 4 }
        );
        assert_eq!(
            t.on_data(&h2c(1, tag, 4, b"efgh", true)).unwrap(),
            Received::NextR2t { offset: 8, len: 2 }
        );
        let Received::Complete(_, data) = t.on_data(&h2c(1, tag, 8, b"ij", true)).unwrap() else {
            panic!("not complete")
        };
        assert_eq!(&data[..], b"abcdefghij");
    }
}
