//! The per-PDU rules of the host side: CapsuleResp completes a command, C2HData lands at DATAO
//! in order (LAST_PDU + SUCCESS completes it), R2T is answered with H2CData PDUs of at most
//! MAXH2CDATA bytes. Each check the target's PDUs must pass is here, with the rule it enforces;
//! the Linux host (`drivers/nvme/host/tcp.c`) and SPDK's initiator apply the same ones.

use lamina_protocol::nvme::{Cqe, Status};
use lamina_protocol::tcp::{C2hData, H2cData, PduType, R2t};

use super::head::DataHead;
use super::slots::Outcome;
use super::{QueueCore, Violation};
use crate::host::HostError;

fn violation(v: Violation) -> HostError {
    HostError::Protocol(v)
}

impl QueueCore {
    /// The slot of an outstanding command, or the violation of naming another one.
    fn lookup(&self, pdu_type: PduType, cid: u16) -> Result<u16, HostError> {
        self.slots
            .outstanding(cid)
            .ok_or(violation(Violation::UnknownCommand { pdu_type, cid }))
    }

    //~ NVMe-oF 1.1 §7.3 / NVMe/TCP 1.0: a response capsule completes the command named by its
    //~ CID. A read that succeeds must have received all its data (Linux: "short data-in").
    pub(super) fn on_capsule_resp(&mut self, cqe: Cqe) -> Result<(), HostError> {
        let index = self.lookup(PduType::CAPSULE_RESP, cqe.cid)?;
        let Some(cmd) = self.slots.get(index) else {
            return Ok(());
        };
        if cmd.digest_error {
            self.finish(
                index,
                Outcome::Failed(HostError::DataDigest { cid: cqe.cid }),
            );
            return Ok(());
        }
        if cqe.status.code.is_success() {
            if cmd.in_received < cmd.in_len {
                return Err(violation(Violation::ShortData {
                    cid: cqe.cid,
                    received: cmd.in_received,
                    expected: cmd.in_len,
                }));
            }
            if cmd.out_requested < cmd.out_len() {
                return Err(violation(Violation::IncompleteWrite {
                    cid: cqe.cid,
                    sent: cmd.out_requested,
                    expected: cmd.out_len(),
                }));
            }
        }
        self.finish(
            index,
            Outcome::Completed {
                cqe,
                by_success_flag: false,
            },
        );
        Ok(())
    }

    //~ NVMe/TCP 1.0, C2HData: DATAO is the offset of the data within the command's transfer;
    //~ the controller sends the data in order (SPDK rejects DATAO that is not where the
    //~ transfer stands), never beyond the transfer (FES Data Transfer Out of Range). SUCCESS
    //~ (with LAST_PDU) completes the command without a CapsuleResp and is allowed only when
    //~ the host disabled SQ flow control.
    pub(super) fn on_c2h_data(&mut self, pdu: &C2hData) -> Result<(), HostError> {
        let t = PduType::C2H_DATA;
        let cid = pdu.cccid;
        let index = self.lookup(t, cid)?;
        let len = u32::try_from(pdu.data.len()).unwrap_or(u32::MAX);
        self.check_c2h(index, cid, pdu.datao, len)?;
        if pdu.success && !self.params.sq_flow_control_disabled {
            return Err(violation(Violation::SuccessWithFlowControl { cid }));
        }
        if let Some(cmd) = self.slots.get_mut(index) {
            if let Some(buf) = cmd.in_buf.as_mut() {
                buf.extend_from_slice(&pdu.data);
            }
            cmd.in_received = pdu.datao + len;
        }
        if pdu.success {
            self.complete_by_success_flag(index, cid)?;
        }
        Ok(())
    }

    fn check_c2h(&self, index: u16, cid: u16, datao: u32, len: u32) -> Result<(), HostError> {
        let t = PduType::C2H_DATA;
        let Some(cmd) = self.slots.get(index) else {
            return Ok(());
        };
        if cmd.in_len == 0 {
            return Err(violation(Violation::WrongTransfer { pdu_type: t, cid }));
        }
        if datao != cmd.in_received {
            return Err(violation(Violation::DataOffset {
                pdu_type: t,
                cid,
                expected: cmd.in_received,
                got: datao,
            }));
        }
        if u64::from(datao) + u64::from(len) > u64::from(cmd.in_len) {
            return Err(violation(Violation::DataOutOfRange {
                pdu_type: t,
                cid,
                offset: datao,
                len,
                transfer: cmd.in_len,
            }));
        }
        Ok(())
    }

    fn complete_by_success_flag(&mut self, index: u16, cid: u16) -> Result<(), HostError> {
        let Some(cmd) = self.slots.get(index) else {
            return Ok(());
        };
        if cmd.digest_error {
            self.finish(index, Outcome::Failed(HostError::DataDigest { cid }));
            return Ok(());
        }
        if cmd.in_received < cmd.in_len {
            return Err(violation(Violation::ShortData {
                cid,
                received: cmd.in_received,
                expected: cmd.in_len,
            }));
        }
        let mut cqe = Cqe::new(cid, Status::SUCCESS);
        cqe.sqid = self.params.qid;
        self.finish(
            index,
            Outcome::Completed {
                cqe,
                by_success_flag: true,
            },
        );
        Ok(())
    }

    /// A C2HData PDU whose data digest did not match (the framer consumed it). Like the Linux
    /// host, the command completes with a data transfer error and the queue lives on; `head`
    /// is the PDU's header as received, for DATAO, DATAL and the flags.
    pub(crate) fn handle_data_digest(&mut self, head: DataHead) -> Result<(), HostError> {
        let index = self.lookup(PduType::C2H_DATA, head.cccid)?;
        self.check_c2h(index, head.cccid, head.datao, head.datal)?;
        if let Some(cmd) = self.slots.get_mut(index) {
            cmd.digest_error = true;
            cmd.in_received = head.datao + head.datal;
        }
        if head.success {
            self.finish(
                index,
                Outcome::Failed(HostError::DataDigest { cid: head.cccid }),
            );
        }
        Ok(())
    }

    //~ NVMe/TCP 1.0, R2T: the controller asks for R2TL bytes at R2TO of a write-type command;
    //~ the host answers with H2CData PDUs of at most MAXH2CDATA bytes each, LAST_PDU on the
    //~ last one for this R2T, TTAG echoed. With MAXR2T 0 (one R2T at a time, as the Linux host
    //~ asks) the R2Ts of a command ask for consecutive ranges: R2TO must be where the transfer
    //~ stands (SPDK), and the range must stay within the data (Linux "r2t len exceeded").
    pub(super) fn on_r2t(&mut self, r2t: R2t) -> Result<(), HostError> {
        let t = PduType::R2T;
        let cid = r2t.cccid;
        let index = self.lookup(t, cid)?;
        let Some(cmd) = self.slots.get(index) else {
            return Ok(());
        };
        let out_len = cmd.out_len();
        if out_len == 0 {
            return Err(violation(Violation::WrongTransfer { pdu_type: t, cid }));
        }
        if r2t.r2to != cmd.out_requested {
            return Err(violation(Violation::DataOffset {
                pdu_type: t,
                cid,
                expected: cmd.out_requested,
                got: r2t.r2to,
            }));
        }
        let end = u64::from(r2t.r2to) + u64::from(r2t.r2tl);
        if end > u64::from(out_len) {
            return Err(violation(Violation::DataOutOfRange {
                pdu_type: t,
                cid,
                offset: r2t.r2to,
                len: r2t.r2tl,
                transfer: out_len,
            }));
        }
        let data = cmd.out.clone();
        self.send_h2c_run(cid, r2t, &data)?;
        if let Some(cmd) = self.slots.get_mut(index) {
            cmd.out_requested = r2t.r2to + r2t.r2tl;
        }
        Ok(())
    }

    fn send_h2c_run(&mut self, cid: u16, r2t: R2t, data: &bytes::Bytes) -> Result<(), HostError> {
        let tx = self.params.tx;
        let chunk = self.params.maxh2cdata.max(1);
        let start = r2t.r2to;
        let end = r2t.r2to + r2t.r2tl;
        let mut at = start;
        while at < end {
            let len = chunk.min(end - at);
            let from = usize::try_from(at).unwrap_or(usize::MAX);
            let to = usize::try_from(at + len).unwrap_or(usize::MAX);
            let pdu = H2cData {
                cccid: cid,
                ttag: r2t.ttag,
                datao: at,
                last_pdu: at + len == end,
                data: data.slice(from..to),
            };
            tracing::trace!(
                qid = self.params.qid,
                cid,
                ttag = r2t.ttag,
                datao = at,
                datal = len,
                last = pdu.last_pdu,
                "H2CData"
            );
            let trailer = self
                .tx
                .push_head(|b| pdu.encode_head(tx, b))
                .map_err(|e| HostError::InvalidRequest(format!("cannot encode H2CData: {e}")))?;
            self.tx.push_data(trailer.data);
            if let Some(d) = trailer.data_digest {
                self.tx.push_small(&d);
            }
            at += len;
        }
        Ok(())
    }
}
