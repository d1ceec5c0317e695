//! [`QueueCore`]: the sans-IO host side of one NVMe/TCP queue. It turns submitted commands into
//! CapsuleCmd PDUs, and received PDUs into data placement, H2CData runs and completions; the
//! socket is someone else's (the [`crate::host::Queue`] driver task, or `lamina-perf`'s
//! per-connection loop, which owns its core without a lock).
//!
//! Inputs: [`QueueCore::submit`], [`QueueCore::handle_pdu`], [`QueueCore::handle_data_digest`]
//! and [`QueueCore::fail`]. Outputs: the bytes queued in [`QueueCore::tx`], the slot indexes of
//! commands that just ended ([`QueueCore::drain_ready`]), and their outcomes
//! ([`QueueCore::take`]). Every check of the target's PDUs lives in `data.rs`.

mod command;
mod data;
mod head;
mod slots;
#[cfg(test)]
mod tests;

use bytes::{Bytes, BytesMut};
use lamina_protocol::Pdu;
use lamina_protocol::nvme::SglDescriptor;
use lamina_protocol::tcp::{CapsuleCmd, PduType, TermReq, TxParams};

pub use command::{Command, Completion, Transfer, identify_command};
pub(crate) use head::PduHead;
pub use slots::MAX_SLOTS;
use slots::{InFlight, Outcome, SlotTable};

use crate::host::error::{HostError, Violation};
use crate::host::tx::TxBuf;

/// What a queue negotiated and may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueParams {
    /// Queue identifier (0: admin).
    pub qid: u16,
    /// Commands that may be outstanding at once.
    pub queue_size: u16,
    /// Digests and the controller's PDU data alignment, for what this host sends.
    pub tx: TxParams,
    /// MAXH2CDATA from the ICResp.
    pub maxh2cdata: u32,
    /// Most bytes of write data sent in the capsule (8 KiB on the admin queue, IOCCSZ * 16 -
    /// 64 on I/O queues).
    pub in_capsule_max: u32,
    /// Largest data transfer of one command this host allows.
    pub max_transfer: u32,
    /// The host disabled SQ flow control in Connect (CATTR bit 2), which is what allows the
    /// target to complete reads with C2HData SUCCESS.
    pub sq_flow_control_disabled: bool,
}

/// Where one command's data goes.
struct Placement {
    sgl: SglDescriptor,
    in_capsule: Bytes,
    by_r2t: Bytes,
    in_buf: Option<BytesMut>,
    in_len: u32,
}

/// Host-side state of one queue.
#[derive(Debug)]
pub struct QueueCore {
    params: QueueParams,
    slots: SlotTable,
    tx: TxBuf,
    /// Slots whose outcome was set since the last [`QueueCore::drain_ready`].
    ready: Vec<u16>,
    /// Slots freed (collected, or abandoned and ended) since the last
    /// [`QueueCore::take_released`]: the shared queue returns them to its slot semaphore.
    released: usize,
    dead: Option<HostError>,
}

impl QueueCore {
    /// A core for a queue with `params`, all slots free.
    pub fn new(params: QueueParams) -> Self {
        let slots = SlotTable::new(params.queue_size);
        let capacity = slots.capacity();
        Self {
            params,
            slots,
            tx: TxBuf::with_capacity(capacity * 96 + 4096, capacity * 4 + 16),
            ready: Vec::with_capacity(capacity),
            released: 0,
            dead: None,
        }
    }

    /// The queue's parameters.
    pub fn params(&self) -> &QueueParams {
        &self.params
    }

    /// Number of command slots (the usable queue depth).
    pub fn capacity(&self) -> usize {
        self.slots.capacity()
    }

    /// Commands submitted and not yet collected.
    pub fn in_use(&self) -> usize {
        self.slots.in_use()
    }

    /// The error that ended the queue, if it has ended.
    pub fn dead(&self) -> Option<&HostError> {
        self.dead.as_ref()
    }

    /// Bytes waiting for the socket.
    pub(crate) fn tx(&mut self) -> &mut TxBuf {
        &mut self.tx
    }

    /// Sends queued output with `write` (a non-blocking vectored write) until all is sent
    /// (`Ok(true)`) or it would block (`Ok(false)`).
    pub fn write_output(
        &mut self,
        write: impl FnMut(&[std::io::IoSlice<'_>]) -> std::io::Result<usize>,
    ) -> std::io::Result<bool> {
        self.tx.flush_with(write)
    }

    /// Bytes waiting for the socket.
    pub fn pending_output(&self) -> usize {
        self.tx.pending_bytes()
    }

    /// Whether output is waiting for the socket.
    pub fn has_output(&self) -> bool {
        !self.tx.is_empty()
    }

    /// Queues `cmd` for sending and returns its slot. Fills in the CID and DPTR: in-capsule
    /// data for writes up to the in-capsule size, a Transport SGL Data Block otherwise (and a
    /// zero-length one for commands without data, as the Linux host sends).
    pub fn submit(&mut self, cmd: Command) -> Result<u16, HostError> {
        if let Some(err) = &self.dead {
            return Err(err.clone());
        }
        let Command { mut sqe, transfer } = cmd;
        let placed = self.place(transfer)?;
        let opcode = sqe.opcode;
        let index = self
            .slots
            .allocate(|cid| InFlight {
                cid,
                opcode,
                out: placed.by_r2t,
                out_requested: 0,
                in_buf: placed.in_buf,
                in_len: placed.in_len,
                in_received: 0,
                digest_error: false,
                outcome: None,
                abandoned: false,
                waker: None,
            })
            .ok_or(HostError::QueueFull)?;
        sqe.cid = self.slots.get(index).map_or(0, |c| c.cid);
        sqe.dptr = placed.sgl;
        let capsule = CapsuleCmd {
            sqe,
            data: placed.in_capsule,
        };
        if let Err(e) = self.queue_capsule(&capsule) {
            self.slots.release(index);
            return Err(e);
        }
        Ok(index)
    }

    /// Decides where a command's data goes.
    fn place(&self, transfer: Transfer) -> Result<Placement, HostError> {
        let len = transfer.len();
        if len > u64::from(self.params.max_transfer) {
            return Err(HostError::InvalidRequest(format!(
                "{len}-byte transfer exceeds this queue's {}-byte limit",
                self.params.max_transfer
            )));
        }
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        let mut p = Placement {
            sgl: SglDescriptor::transport(len),
            in_capsule: Bytes::new(),
            by_r2t: Bytes::new(),
            in_buf: None,
            in_len: 0,
        };
        match transfer {
            Transfer::None => {}
            Transfer::ToController(d) if len <= self.params.in_capsule_max => {
                p.sgl = SglDescriptor::in_capsule(0, len);
                p.in_capsule = d;
            }
            Transfer::ToController(d) | Transfer::ToControllerByR2t(d) => p.by_r2t = d,
            Transfer::FromController { mut buf, .. } => {
                buf.clear();
                p.in_buf = Some(buf);
                p.in_len = len;
            }
            Transfer::Discard(_) => p.in_len = len,
        }
        Ok(p)
    }

    /// Encodes `capsule` into the output: head, then its in-capsule data and data digest.
    fn queue_capsule(&mut self, capsule: &CapsuleCmd) -> Result<(), HostError> {
        tracing::trace!(
            qid = self.params.qid,
            cid = capsule.sqe.cid,
            opcode = capsule.sqe.opcode,
            sgl = ?capsule.sqe.dptr,
            in_capsule = capsule.data.len(),
            "submit"
        );
        let tx = self.params.tx;
        let trailer = self
            .tx
            .push_head(|b| capsule.encode_head(tx, b))
            .map_err(|e| HostError::InvalidRequest(format!("cannot encode: {e}")))?;
        self.tx.push_data(trailer.data);
        if let Some(d) = trailer.data_digest {
            self.tx.push_small(&d);
        }
        Ok(())
    }

    /// Handles one PDU from the target. An error is fatal: pass it to [`QueueCore::fail`].
    pub fn handle_pdu(&mut self, pdu: Pdu) -> Result<(), HostError> {
        tracing::trace!(qid = self.params.qid, pdu = ?PduSummary(&pdu), "received");
        match pdu {
            Pdu::CapsuleResp(resp) => self.on_capsule_resp(resp.cqe),
            Pdu::C2hData(data) => self.on_c2h_data(&data),
            Pdu::R2t(r2t) => self.on_r2t(r2t),
            Pdu::C2hTermReq(term) => Err(HostError::Terminated {
                fes: term.fes,
                fei: term.fei,
            }),
            other => Err(HostError::Protocol(Violation::UnexpectedPdu(
                other.pdu_type(),
            ))),
        }
    }

    /// Ends the queue with `err`: queues an H2CTermReq when the error is a violation with a
    /// Fatal Error Status (`header` is the offending PDU's header, as received), and fails every
    /// command in flight. Later submissions fail with the same error.
    pub fn fail(&mut self, err: HostError, header: &[u8]) {
        if self.dead.is_some() {
            return;
        }
        if let HostError::Protocol(v) = &err {
            self.queue_term_req(v, header);
        }
        let indexes: Vec<u16> = self.slots.occupied().collect();
        for index in indexes {
            let pending = self.slots.get(index).is_some_and(|c| c.outcome.is_none());
            if pending {
                self.finish(index, Outcome::Failed(err.clone()));
            }
        }
        self.dead = Some(err);
    }

    fn queue_term_req(&mut self, violation: &Violation, header: &[u8]) {
        let Some((fes, fei)) = violation.fes() else {
            return;
        };
        let header = match violation {
            // The framer keeps the offending header itself.
            Violation::Decode(e) => Bytes::copy_from_slice(e.header()),
            _ => Bytes::copy_from_slice(header),
        };
        let term = TermReq { fes, fei, header };
        self.tx.push_head(|b: &mut BytesMut| {
            // The header is at most 128 bytes (the framer's and ours), so this cannot fail.
            let _ = term.encode(PduType::H2C_TERM_REQ, b);
        });
    }

    /// Records `outcome` for slot `index` and wakes or frees it.
    fn finish(&mut self, index: u16, outcome: Outcome) {
        let Some(cmd) = self.slots.get_mut(index) else {
            return;
        };
        cmd.outcome = Some(outcome);
        if cmd.abandoned {
            self.slots.release(index);
            self.released += 1;
        } else {
            self.ready.push(index);
        }
    }

    /// Calls `f` with every slot index whose command ended since the last call, and its waker.
    pub(crate) fn drain_ready(&mut self, mut f: impl FnMut(u16, Option<std::task::Waker>)) {
        let mut ready = std::mem::take(&mut self.ready);
        for index in ready.drain(..) {
            let waker = self.slots.get_mut(index).and_then(|c| c.waker.take());
            f(index, waker);
        }
        // Keep the vector's capacity (no allocation per completion).
        self.ready = ready;
    }

    /// Slot indexes whose command ended since the last call, for owners that poll instead of
    /// using wakers (`lamina-perf`).
    pub fn drain_ready_into(&mut self, out: &mut Vec<u16>) {
        out.append(&mut self.ready);
    }

    /// The outcome of slot `index` if its command (CID `cid`) has ended; frees the slot.
    pub fn take(&mut self, index: u16, cid: u16) -> Option<Result<Completion, HostError>> {
        let cmd = self.slots.get(index)?;
        if cmd.cid != cid || cmd.outcome.is_none() {
            return None;
        }
        let mut cmd = self.slots.release(index)?;
        self.released += 1;
        let outcome = cmd.outcome.take()?;
        Some(match outcome {
            Outcome::Failed(e) => Err(e),
            Outcome::Completed {
                cqe,
                by_success_flag,
            } => Ok(Completion {
                cqe,
                data: cmd.in_buf.take(),
                received: cmd.in_received,
                by_success_flag,
                opcode: cmd.opcode,
            }),
        })
    }

    /// The CID of the command in slot `index`.
    pub fn cid_of(&self, index: u16) -> Option<u16> {
        self.slots.get(index).map(|c| c.cid)
    }

    /// Stores the waker of the task waiting for slot `index` (CID `cid`).
    pub(crate) fn set_waker(&mut self, index: u16, cid: u16, waker: &std::task::Waker) {
        if let Some(cmd) = self.slots.get_mut(index).filter(|c| c.cid == cid) {
            match &cmd.waker {
                Some(w) if w.will_wake(waker) => {}
                _ => cmd.waker = Some(waker.clone()),
            }
        }
    }

    /// The owner of slot `index` stops waiting: the slot is freed now if the command has ended,
    /// or when it ends (its CID must not be reused while the target may still answer it).
    pub fn abandon(&mut self, index: u16, cid: u16) {
        let Some(cmd) = self.slots.get_mut(index).filter(|c| c.cid == cid) else {
            return;
        };
        if cmd.outcome.is_some() {
            self.slots.release(index);
            self.released += 1;
        } else {
            cmd.abandoned = true;
            cmd.waker = None;
        }
    }

    /// Slots freed since the last call.
    pub(crate) fn take_released(&mut self) -> usize {
        std::mem::take(&mut self.released)
    }
}

/// A PDU for logs: its header fields without the payload bytes.
struct PduSummary<'a>(&'a Pdu);

impl core::fmt::Debug for PduSummary<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Pdu::CapsuleResp(r) => write!(
                f,
                "CapsuleResp cid {:#x} status {:?}",
                r.cqe.cid, r.cqe.status
            ),
            Pdu::C2hData(d) => write!(
                f,
                "C2HData cccid {:#x} datao {} datal {} last {} success {}",
                d.cccid,
                d.datao,
                d.data.len(),
                d.last_pdu,
                d.success
            ),
            Pdu::R2t(r) => write!(
                f,
                "R2T cccid {:#x} ttag {} r2to {} r2tl {}",
                r.cccid, r.ttag, r.r2to, r.r2tl
            ),
            other => write!(f, "{:?}", other.pdu_type()),
        }
    }
}
