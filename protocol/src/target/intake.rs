//! What each received PDU does to a [`TargetQueue`]: the ICReq answered, commands admitted
//! (CID in flight, SQ overrun, SQ head), their data located (in the capsule, or fetched by
//! R2T and H2CData), Connect required first, data digest errors answered per command.

use bytes::Bytes;

use super::error::{QueueError, Rule, Violation, field_offset};
use super::transfers::Received;
use super::{Command, Completion, Input, Observer, Phase, TargetQueue};
use crate::fabrics::{FabricsCommandType, fabrics_command_type};
use crate::nvme::{AdminOpcode, DataDirection, Sqe, Status, StatusCode};
use crate::tcp::{
    CAPSULE_CMD_SQE_OFFSET, CapsuleCmd, DataLocation, Fes, H2cData, IcReq, IcResp, Pda, Pdu,
    PduType, R2t, TxParams,
};

/// Offset of the CID in a command capsule PDU (the SQE's CDW0 bytes 2..4).
const CAPSULE_CID_OFFSET: usize = CAPSULE_CMD_SQE_OFFSET + 2;

impl<O: Observer> TargetQueue<O> {
    /// Handles one decoded PDU (what [`TargetQueue::handle_input`] does after decoding).
    pub fn handle_pdu(&mut self, pdu: Pdu) -> Result<Input, QueueError> {
        if let Phase::Failed(e) = &self.phase {
            return Err(e.clone());
        }
        self.on_pdu(pdu)
    }

    /// [`TargetQueue::handle_pdu`] on a queue known not to have ended.
    pub(super) fn on_pdu(&mut self, pdu: Pdu) -> Result<Input, QueueError> {
        match pdu {
            Pdu::IcReq(req) if self.phase == Phase::AwaitIcReq => {
                self.on_ic_req(&req);
                Ok(Input::Handled { capsule: false })
            }
            Pdu::CapsuleCmd(cmd) if self.phase != Phase::AwaitIcReq => self.on_command(cmd),
            Pdu::H2cData(data) if self.phase != Phase::AwaitIcReq => self.on_h2c_data(&data),
            //= NVMe/TCP 1.0 §3.5
            //# In response to a H2CTermReq PDU, the controller shall terminate the connection.
            // The queue ends without a C2HTermReq in answer.
            Pdu::H2cTermReq(t) => {
                let e = QueueError::HostTerminated(t.fes);
                self.phase = Phase::Failed(e.clone());
                Err(e)
            }
            _ if self.phase == Phase::AwaitIcReq => Err(self.violation(Violation::host(
                Rule::IcReqFirst,
                Fes::PDU_SEQUENCE_ERROR,
                0,
            ))),
            //= NVMe/TCP 1.0 §3.3.2.2
            //# Reception of an unexpected H2CData PDU is treated as a fatal transport error with
            //# the Fatal Error Status field in the C2HTermReq PDU set to “PDU Sequence Error”.
            // Lamina answers any PDU the established queue does not expect with PDU Sequence Error.
            _ => Err(self.violation(Violation::host(
                Rule::UnexpectedPdu,
                Fes::PDU_SEQUENCE_ERROR,
                0,
            ))),
        }
    }

    fn violation(&mut self, v: Violation) -> QueueError {
        self.fail(QueueError::Violation(v))
    }

    /// Answers the ICReq: no PDU data alignment asked of the host (CPDA 0), the digests it
    /// asked for, our MAXH2CDATA; then both directions switch to the negotiated digests.
    fn on_ic_req(&mut self, req: &IcReq) {
        //= NVMe/TCP 1.0 §3.3.1.1
        //# The controller may accept (or reject) the use of a header digest by setting to ‘1’ (or
        //# clearing to ‘0’) the HDGST_ENABLE flag in the ICResp PDU. The PDU Header Digest is
        //# enabled if HDGST_ENABLE flag is set in both the ICReq and ICResp PDUs.
        // The controller accepts every digest the host asks for, so the ICResp echoes the ICReq
        // DGST (data digests likewise, with DDGST_ENABLE).
        let resp = IcResp {
            pfv: 0,
            cpda: Pda(0),
            digests: req.digests,
            maxh2cdata: self.config.framer.max_data_len,
        };
        self.observer.pdu_sent(PduType::IC_RESP);
        self.out.push_pdu(&Pdu::IcResp(resp), TxParams::INITIAL);
        self.framer.set_digests(req.digests);
        self.tx = TxParams {
            digests: req.digests,
            peer_pda: req.hpda,
        };
        self.phase = Phase::Unbound;
    }

    /// The SQ head after one more entry was consumed.
    fn next_sqhd(&self) -> u16 {
        match self.binding() {
            Some(b) if b.sq_entries > 1 => (self.sqhd + 1) % b.sq_entries,
            Some(_) => 0,
            None => self.sqhd.wrapping_add(1),
        }
    }

    /// Takes `cid` into the in-flight set. A CID still in flight, or more commands than the
    /// SQ holds, end the queue (NVMe/TCP 1.0 §3.3: a host must not reuse a CID in flight nor
    /// overrun the submission queue), except a parked command's CID, which the host may take
    /// back (`Ok(true)`).
    fn admit(&mut self, cid: u16) -> Result<bool, QueueError> {
        let mut gives_up_parked = false;
        if !self.cids.insert(cid) {
            if !self.unpark(cid) {
                return Err(self.violation(Violation::host(
                    Rule::CidInFlight,
                    Fes::INVALID_HEADER_FIELD,
                    field_offset(CAPSULE_CID_OFFSET),
                )));
            }
            gives_up_parked = true;
        }
        let depth = self
            .binding()
            .map_or(usize::from(u16::MAX), |b| usize::from(b.sq_entries.max(1)));
        if self.cids.len() > depth {
            return Err(self.violation(Violation::host(
                Rule::SqOverrun,
                Fes::PDU_SEQUENCE_ERROR,
                0,
            )));
        }
        Ok(gives_up_parked)
    }

    /// Fails a command the queue answers itself (it never reaches the controller).
    fn refuse(&mut self, cid: u16, code: StatusCode) -> Input {
        self.complete(Completion::error(cid, code));
        Input::Handled { capsule: true }
    }

    fn on_command(&mut self, cmd: CapsuleCmd) -> Result<Input, QueueError> {
        let sqe = cmd.sqe;
        self.sqhd = self.next_sqhd();
        let gives_up_parked = self.admit(sqe.cid)?;
        let direction = direction_of(&sqe);
        // A command that moves no data ignores its SGL (several initiators send an all-zero
        // descriptor on Keep Alive, Flush, Property Set...), as SPDK and nvmet do.
        let location = if direction == DataDirection::None && cmd.data.is_empty() {
            Ok(DataLocation::None)
        } else {
            cmd.data_location()
        };
        let location = match location {
            Ok(l) => l,
            Err(code) => return Ok(self.refuse(sqe.cid, code)),
        };
        let command = |data: Bytes, c2h_len: u32| Command { sqe, data, c2h_len };
        match (location, direction) {
            (
                DataLocation::InCapsule(_),
                DataDirection::HostToController | DataDirection::Bidirectional,
            ) => Ok(self.ready(command(cmd.data, 0), gives_up_parked)),
            (DataLocation::Transport(len), _) if len > self.config.max_transfer => {
                // Beyond MDTS: refused before anything is built for it.
                Ok(self.refuse(sqe.cid, StatusCode::INVALID_FIELD))
            }
            (DataLocation::Transport(len), DataDirection::HostToController) => {
                Ok(self.start_transfer(sqe, len))
            }
            (DataLocation::Transport(len), DataDirection::ControllerToHost) => {
                Ok(self.ready(command(Bytes::new(), len), gives_up_parked))
            }
            (DataLocation::None, _) => Ok(self.ready(command(Bytes::new(), 0), gives_up_parked)),
            _ => Ok(self.refuse(sqe.cid, StatusCode::INVALID_FIELD)),
        }
    }

    /// A command whose data is all here: Connect binds the queue (once); nothing else runs
    /// before it.
    fn ready(&mut self, command: Command, gives_up_parked: bool) -> Input {
        let cid = command.sqe.cid;
        let is_connect = fabrics_command_type(&command.sqe) == Some(FabricsCommandType::CONNECT);
        match (&self.phase, is_connect) {
            (Phase::Unbound, true) => Input::Connect(command),
            (Phase::Bound { .. }, false) => Input::Command {
                command,
                gives_up_parked,
            },
            _ => self.refuse(cid, StatusCode::COMMAND_SEQUENCE_ERROR),
        }
    }

    /// Asks the host for a write's data: one R2T at offset 0 for the whole length, or for
    /// `max_r2t` bytes when that is less (the next follows its data; the Linux host allows one
    /// outstanding R2T per command).
    fn start_transfer(&mut self, sqe: Sqe, len: u32) -> Input {
        //= NVMe/TCP 1.0 §3.3.2.2
        //# The first R2T PDU of a command shall start with an offset of zero and subsequent R2T
        //# PDUs for the command shall solicit data transfers sequentially to the end of the Command
        //# Data Buffer ... A controller may send an R2T PDU without waiting for a previous R2T data
        //# transfer to complete, but shall not exceed the maximum number of outstanding R2T PDUs
        //# per command supported by the host (MAXR2T).
        // Never more than one R2T outstanding, whatever MAXR2T.
        let Some((ttag, first)) = self.transfers.start(sqe, len) else {
            return self.refuse(sqe.cid, StatusCode::INTERNAL_ERROR);
        };
        self.send_r2t(sqe.cid, ttag, 0, first);
        Input::Handled { capsule: true }
    }

    fn send_r2t(&mut self, cccid: u16, ttag: u16, r2to: u32, r2tl: u32) {
        let r2t = R2t {
            cccid,
            ttag,
            r2to,
            r2tl,
        };
        self.observer.pdu_sent(PduType::R2T);
        self.out.push_r2t(&r2t, self.tx);
    }

    fn on_h2c_data(&mut self, pdu: &H2cData) -> Result<Input, QueueError> {
        match self.transfers.on_data(pdu) {
            Ok(Received::Receiving) => Ok(Input::Handled { capsule: false }),
            Ok(Received::NextR2t { offset, len }) => {
                self.send_r2t(pdu.cccid, pdu.ttag, offset, len);
                Ok(Input::Handled { capsule: false })
            }
            Ok(Received::Complete(sqe, data)) => Ok(self.ready(
                Command {
                    sqe,
                    data,
                    c2h_len: 0,
                },
                false,
            )),
            Err(mut v) => {
                let mut head = bytes::BytesMut::new();
                let _ = pdu.encode_head(self.tx, &mut head);
                head.truncate(crate::ErrorHeader::MAX_LEN.min(head.len()));
                v.header = head.freeze();
                Err(self.violation(v))
            }
        }
    }

    /// Data digest mismatch: the command fails with Transient Transport Error (NVMe/TCP 1.0);
    /// the stream stays in sync, so the queue lives on. A capsule whose CID is still in flight
    /// is a duplicate all the same, and H2CData for no transfer of that CID is a sequence
    /// error: neither may release another command's CID.
    pub(super) fn on_data_digest_error(
        &mut self,
        pdu_type: PduType,
        cid: u16,
    ) -> Result<Input, QueueError> {
        //= NVMe/TCP 1.0 §3.5
        //# When the controller detects a data digest error in a CapsuleCmd PDU with in-capsule
        //# data, the controller shall fail the command with a non-fatal transport error. When a
        //# controller detects a data digest error in a H2CData PDU, that controller may continue
        //# processing H2CData PDUs associated with the command or terminate the command processing
        //# early. When the command processing has completed or terminated, the controller shall
        //# fail the command with a non-fatal transport error.
        //= NVMe/TCP 1.0 §3.5
        //# When a non-fatal transport error is detected, affected commands are completed with a
        //# Transient Transport Error status code (refer to Figure 126 in the NVMe Base
        //# Specification).
        // An H2CData digest error terminates the command processing early (its transfer is
        // dropped).
        let failed =
            Completion::with_status(cid, Status::new(StatusCode::TRANSIENT_TRANSPORT_ERROR));
        if pdu_type == PduType::CAPSULE_CMD {
            self.sqhd = self.next_sqhd();
            self.admit(cid)?;
            self.complete(failed);
            Ok(Input::Handled { capsule: true })
        } else if self.transfers.abort_command(cid) {
            self.complete(failed);
            Ok(Input::Handled { capsule: false })
        } else {
            Err(self.violation(Violation::host(
                Rule::DigestWithoutTransfer,
                Fes::PDU_SEQUENCE_ERROR,
                0,
            )))
        }
    }
}

/// The data direction of a command: its opcode's, or for Fabrics commands its FCTYPE's.
fn direction_of(sqe: &Sqe) -> DataDirection {
    match fabrics_command_type(sqe) {
        Some(t) if sqe.opcode == AdminOpcode::FABRICS.0 => DataDirection::of(t.0),
        _ => DataDirection::of(sqe.opcode),
    }
}
