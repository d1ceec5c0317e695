//! Command intake of a queue: reading and decoding PDUs (pausing when the output backs up),
//! admitting commands (CID in use, SQ overrun), data digest errors, data location and
//! direction, and the R2T/H2CData transfers of host-to-controller data.

use super::{
    ANSWER_EVERY, Bytes, BytesMut, CAPSULE_CID_OFFSET, CapsuleCmd, Completion, ConnError,
    DataDirection, DataLocation, Fes, Future, H2cData, Pdu, PduType, Queue, R2t, Request, Sqe,
    Status, StatusCode, TermReq, Violation, Wire, decode_failure, direction_of, pdu_len, violation,
};

impl<F: Future<Output = Completion> + Send + 'static> Queue<F> {
    /// Reads and handles every PDU available; `Ok(true)` when the host closed.
    pub(super) fn read_and_dispatch(&mut self, wire: &mut Wire) -> Result<bool, ConnError> {
        match wire.read_available() {
            Ok(0) => return Ok(true),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        self.decode_buffered(wire)?;
        Ok(false)
    }

    /// Handles every complete PDU in the read buffer (including any that arrived in the same
    /// segment as the ICReq, before the queue loop started), until the output backs up: a
    /// host that does not read its completions gets no more commands started, so what it
    /// costs is bounded by the output high-water mark, not by how much it sent.
    pub(super) fn decode_buffered(&mut self, wire: &mut Wire) -> Result<(), ConnError> {
        let mut since_flush = 0usize;
        self.input_paused = false;
        loop {
            if wire.is_backlogged() {
                wire.out.flush(&wire.stream)?;
                if wire.is_backlogged() {
                    self.input_paused = true;
                    return Ok(());
                }
            }
            match wire.next_pdu() {
                Ok(Some(pdu)) => {
                    since_flush += pdu_len(&pdu);
                    self.on_pdu(wire, pdu)?;
                    // Send what has completed so far every ANSWER_EVERY bytes of input, so a
                    // host that sent a burst gets its first completions (and refills) while
                    // the rest of the burst runs, instead of the two sides taking turns.
                    if since_flush >= ANSWER_EVERY {
                        since_flush = 0;
                        wire.out.flush(&wire.stream)?;
                    }
                }
                Ok(None) => return Ok(()),
                Err(lamina_protocol::DecodeError::DataDigest {
                    command_id,
                    pdu_type,
                    ..
                }) => {
                    self.on_data_digest_error(wire, pdu_type, command_id)?;
                }
                Err(e) => return Err(decode_failure(wire, &e)),
            }
        }
    }

    pub(super) fn on_pdu(&mut self, wire: &mut Wire, pdu: Pdu) -> Result<(), ConnError> {
        match pdu {
            Pdu::CapsuleCmd(cmd) => self.on_command(wire, cmd),
            Pdu::H2cData(data) => self.on_h2c_data(wire, &data),
            Pdu::H2cTermReq(t) => Err(ConnError::HostTerminated(t.fes)),
            _ => Err(violation(
                wire,
                Fes::PDU_SEQUENCE_ERROR,
                0,
                "unexpected PDU after the IC exchange",
            )),
        }
    }

    /// Data digest mismatch: the command fails with Transient Transport Error (NVMe/TCP 1.0);
    /// the stream stays in sync, so the connection lives on. A capsule whose CID is still in
    /// flight is a duplicate all the same (a transport error), and H2CData for no transfer of
    /// that CID is a sequence error: neither may release another command's CID.
    pub(super) fn on_data_digest_error(
        &mut self,
        wire: &mut Wire,
        pdu_type: PduType,
        cid: u16,
    ) -> Result<(), ConnError> {
        crate::violation!(
            self.violations,
            cid,
            ?pdu_type,
            "data digest error: completing the command with Transient Transport Error"
        );
        let c = Completion::with_status(cid, Status::new(StatusCode::TRANSIENT_TRANSPORT_ERROR));
        if pdu_type == PduType::CAPSULE_CMD {
            self.admit(wire, cid)?;
            // The capsule took an SQ slot even though its command never starts.
            self.sqhd = self.next_sqhd();
            self.send_completion(wire, c);
        } else if self.transfers.abort_command(cid) {
            self.send_completion(wire, c);
        } else {
            return Err(violation(
                wire,
                Fes::PDU_SEQUENCE_ERROR,
                0,
                "H2CData with a bad digest for no transfer in progress",
            ));
        }
        Ok(())
    }

    /// Takes `cid` into the in-flight set: a CID still in flight, or more commands than the
    /// SQ holds, end the connection with a transport error (NVMe/TCP 1.0 §3.3: a host must not
    /// reuse a CID in flight nor overrun the submission queue).
    pub(super) fn admit(&mut self, wire: &mut Wire, cid: u16) -> Result<(), ConnError> {
        if !self.inflight_cids.insert(cid) && !self.abandoned_aer(cid) {
            return Err(violation(
                wire,
                Fes::INVALID_HEADER_FIELD,
                CAPSULE_CID_OFFSET,
                "a command reused the CID of one still in flight",
            ));
        }
        let depth = self
            .bound
            .as_ref()
            .map_or(usize::from(u16::MAX), |b| usize::from(b.sqsize.max(1)));
        if self.inflight_cids.len() > depth {
            return Err(violation(
                wire,
                Fes::PDU_SEQUENCE_ERROR,
                0,
                "more commands in flight than the submission queue holds",
            ));
        }
        Ok(())
    }

    /// Whether `cid` was an outstanding AER of this (admin) queue's controller, now given up by
    /// the host; its CID then passes to the new command.
    fn abandoned_aer(&self, cid: u16) -> bool {
        let Some(b) = self.bound.as_ref().filter(|b| b.ctx.qid == 0) else {
            return false;
        };
        let gone = b.ctx.ctrl.abandon_aer(cid);
        if gone {
            tracing::debug!(
                cid,
                "the host reused the CID of an outstanding AER: AER dropped"
            );
        }
        gone
    }

    pub(super) fn on_command(&mut self, wire: &mut Wire, cmd: CapsuleCmd) -> Result<(), ConnError> {
        let sqe = cmd.sqe;
        self.sqhd = self.next_sqhd();
        if let Some(b) = &self.bound {
            b.ctx.ctrl.touch();
        }
        self.admit(wire, sqe.cid)?;
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
            Err(code) => {
                self.send_completion(wire, Completion::error(sqe.cid, code));
                return Ok(());
            }
        };
        match (location, direction) {
            (
                DataLocation::InCapsule(_),
                DataDirection::HostToController | DataDirection::Bidirectional,
            ) => {
                self.dispatch(
                    wire,
                    Request {
                        sqe,
                        data: cmd.data,
                        c2h_len: 0,
                        buf: bytes::BytesMut::new(),
                    },
                );
            }
            (DataLocation::Transport(len), DataDirection::HostToController) => {
                self.start_transfer(wire, sqe, len);
            }
            (DataLocation::Transport(len), DataDirection::ControllerToHost)
                if len > self.max_io_size.max(crate::options::ADMIN_IN_CAPSULE_DATA) =>
            {
                // Beyond MDTS: refused before anything is built for it.
                self.send_completion(wire, Completion::error(sqe.cid, StatusCode::INVALID_FIELD));
            }
            (DataLocation::Transport(len), DataDirection::ControllerToHost) => {
                // I/O reads fill a pooled buffer; admin commands build their own data.
                let is_io = self.bound.as_ref().is_some_and(|b| b.ctx.qid != 0);
                let buf = if is_io && len <= self.max_io_size {
                    self.data_pool.take(usize::try_from(len).unwrap_or(0))
                } else {
                    BytesMut::new()
                };
                self.dispatch(
                    wire,
                    Request {
                        sqe,
                        data: Bytes::new(),
                        c2h_len: len,
                        buf,
                    },
                );
            }
            (DataLocation::None, _) => {
                self.dispatch(
                    wire,
                    Request {
                        sqe,
                        data: Bytes::new(),
                        c2h_len: 0,
                        buf: BytesMut::new(),
                    },
                );
            }
            _ => self.send_completion(wire, Completion::error(sqe.cid, StatusCode::INVALID_FIELD)),
        }
        Ok(())
    }

    pub(super) fn next_sqhd(&self) -> u16 {
        let size = self.bound.as_ref().map_or(u16::MAX, |b| b.sqsize.max(1));
        if size == u16::MAX {
            self.sqhd.wrapping_add(1)
        } else {
            (self.sqhd + 1) % size
        }
    }

    pub(super) fn start_transfer(&mut self, wire: &mut Wire, sqe: Sqe, len: u32) {
        let max = self
            .target
            .options()
            .max_io_size
            .max(crate::options::ADMIN_IN_CAPSULE_DATA);
        if len > max {
            return self
                .send_completion(wire, Completion::error(sqe.cid, StatusCode::INVALID_FIELD));
        }
        let Some(ttag) = self.transfers.start(sqe, len) else {
            return self
                .send_completion(wire, Completion::error(sqe.cid, StatusCode::INTERNAL_ERROR));
        };
        let r2t = R2t {
            cccid: sqe.cid,
            ttag,
            r2to: 0,
            r2tl: len,
        };
        wire.out.push_r2t(&r2t, wire.tx);
    }

    pub(super) fn on_h2c_data(&mut self, wire: &mut Wire, pdu: &H2cData) -> Result<(), ConnError> {
        match self.transfers.on_data(pdu) {
            Ok(None) => Ok(()),
            Ok(Some((sqe, data))) => {
                self.dispatch(
                    wire,
                    Request {
                        sqe,
                        data,
                        c2h_len: 0,
                        buf: BytesMut::new(),
                    },
                );
                Ok(())
            }
            Err(v) => Err(Self::h2c_violation(wire, pdu, v)),
        }
    }

    pub(super) fn h2c_violation(wire: &mut Wire, pdu: &H2cData, v: Violation) -> ConnError {
        let mut head = BytesMut::new();
        let _ = pdu.encode_head(wire.tx, &mut head);
        head.truncate(lamina_protocol::ErrorHeader::MAX_LEN.min(head.len()));
        let term = TermReq {
            fes: v.fes,
            fei: if v.fes.has_fei() { v.field_offset } else { 0 },
            header: head.freeze(),
        };
        wire.terminate(&term);
        ConnError::Violation(v.what.to_owned())
    }
}
