//! [`TargetQueue`]: the sans-IO controller side of one NVMe/TCP queue. It owns every rule of
//! the queue: the ICReq/ICResp exchange, Connect first (and once), the CIDs in flight and the
//! submission queue's size, the SQ head pointer, R2T and H2CData windows, data digest errors,
//! C2HData SUCCESS, and the TermReq that ends the queue when the host breaks one of them. It
//! has no socket, no runtime and no clock: bytes and time come in as arguments.
//!
//! Inputs: [`TargetQueue::handle_input`] (bytes received), [`TargetQueue::bind`] (the
//! controller accepted a Connect), [`TargetQueue::complete`] (a command finished),
//! [`TargetQueue::poll_timeout`] (time passed). Outputs: the [`Input`] each PDU turns into
//! (commands for the controller), the bytes [`TargetQueue::poll_transmit`] hands to a
//! vectored write, and a [`QueueError`] when the queue must end.
//!
//! A connection task drives it like this (the target's `transport::queue` is the real one):
//!
//! ```
//! use std::time::{Duration, Instant};
//! use bytes::BytesMut;
//! use lamina_protocol::target::{Input, QueueConfig, TargetQueue};
//! use lamina_protocol::tcp::IcReq;
//!
//! let mut queue = TargetQueue::new(QueueConfig::default(), (), Instant::now());
//! let mut rx = BytesMut::new();
//! IcReq::default().encode(&mut rx);
//! assert!(matches!(queue.handle_input(&mut rx)?, Input::Handled { capsule: false }));
//! let mut sent = Vec::new();
//! queue.poll_transmit(|iov| {
//!     let n = iov.iter().map(|s| s.len()).sum();
//!     iov.iter().for_each(|s| sent.extend_from_slice(s));
//!     Ok(n)
//! })?;
//! assert_eq!(sent.len(), 128, "the ICResp");
//! assert!(matches!(queue.handle_input(&mut rx)?, Input::NeedMore));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cids;
mod completion;
mod error;
mod intake;
mod lent;
mod output;
#[cfg(test)]
mod tests;
mod transfers;

use std::time::{Duration, Instant};

use bytes::BytesMut;

pub use completion::{After, Command, Completion};
pub use error::{Cause, Deadline, QueueError, Rule, Violation};
pub use output::Sent;

use crate::codec::{Framer, FramerConfig};
use crate::nvme::{Cqe, Status};
use crate::tcp::{C2hData, Fes, PduType, TxParams};
use cids::CidSet;
use output::Output;
use transfers::Transfers;

/// What a queue is configured with before its host connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    /// What the framer accepts. Its `max_data_len` is the MAXH2CDATA the ICResp announces.
    pub framer: FramerConfig,
    /// Largest data transfer of one command (MDTS in bytes); a command asking for more is
    /// failed with Invalid Field before anything is allocated for it.
    pub max_transfer: u32,
    /// Host-to-controller transfers (R2T/H2CData) in progress at once.
    pub transfer_tags: u16,
    /// Most bytes one R2T asks for (a longer write gets several, one after the other).
    pub max_r2t: u32,
    /// Most data bytes in one C2HData PDU (a longer read is sent in several, in order).
    pub max_c2h_data: u32,
    /// Whether reads may end with C2HData SUCCESS when the host disabled SQ flow control.
    pub c2h_success: bool,
    /// How long the host has, from the connection, to send its ICReq and a successful Connect.
    pub connect_timeout: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            framer: FramerConfig::target(),
            max_transfer: 128 * 1024,
            transfer_tags: 128,
            max_r2t: u32::MAX,
            max_c2h_data: u32::MAX,
            c2h_success: true,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// What the controller decided at Connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    /// Queue identifier (0: admin).
    pub qid: u16,
    /// Entries of the submission queue (Connect's SQSIZE + 1).
    pub sq_entries: u16,
    /// The controller runs without SQ flow control (the host asked in Connect's CATTR), which
    /// lets reads end with C2HData SUCCESS.
    pub sq_flow_control_disabled: bool,
}

/// What one PDU of input came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// No complete PDU is buffered.
    NeedMore,
    /// A PDU was handled and the controller has nothing to do (a command the queue answered
    /// itself, H2CData of a transfer not complete yet, the ICReq). `capsule` says whether it
    /// was a command capsule (which counts as host activity for keep-alive).
    Handled {
        /// A command capsule arrived.
        capsule: bool,
    },
    /// A Fabrics Connect on a queue not bound yet: the controller decides, calls
    /// [`TargetQueue::bind`] if it accepts, and completes the command.
    Connect(Command),
    /// A command whose data is all here: the controller runs it and completes it.
    Command {
        /// The command.
        command: Command,
        /// Its CID was that of a parked command (see [`TargetQueue::park`]), which the host
        /// has thereby given up: the controller forgets the parked one.
        gives_up_parked: bool,
    },
}

/// What the queue reports as it goes (counters, logs); `()` ignores everything.
pub trait Observer {
    /// A PDU was decoded.
    fn pdu_received(&mut self, _pdu_type: PduType) {}
    /// A PDU was queued for sending.
    fn pdu_sent(&mut self, _pdu_type: PduType) {}
    /// A PDU failed its header digest (the queue ends).
    fn header_digest_error(&mut self) {}
    /// A PDU failed its data digest; the command `cid` is failed and the queue goes on.
    fn data_digest_error(&mut self, _pdu_type: PduType, _cid: u16) {}
    /// A C2HTermReq was queued.
    fn term_req_sent(&mut self, _fes: Fes) {}
}

impl Observer for () {}

/// Where the queue is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Waiting for the ICReq.
    AwaitIcReq,
    /// IC exchange done, waiting for Connect.
    Unbound,
    /// Connected.
    Bound { binding: Binding, c2h_success: bool },
    /// Ended by this error (its TermReq, if any, is queued).
    Failed(QueueError),
}

/// The controller side of one NVMe/TCP queue (see the module documentation).
#[derive(Debug)]
pub struct TargetQueue<O = ()> {
    config: QueueConfig,
    framer: Framer,
    tx: TxParams,
    phase: Phase,
    connect_by: Instant,
    cids: CidSet,
    /// Commands the controller holds open indefinitely (Asynchronous Event Requests).
    parked: Vec<u16>,
    transfers: Transfers,
    sqhd: u16,
    closing: bool,
    out: Output,
    observer: O,
}

impl<O: Observer> TargetQueue<O> {
    /// A queue for a connection accepted at `now`, waiting for its ICReq.
    pub fn new(config: QueueConfig, observer: O, now: Instant) -> Self {
        Self {
            config,
            framer: Framer::new(config.framer),
            tx: TxParams::INITIAL,
            phase: Phase::AwaitIcReq,
            connect_by: now + config.connect_timeout,
            cids: CidSet::new(),
            parked: Vec::new(),
            transfers: Transfers::with_capacity(config.transfer_tags.max(1), config.max_r2t),
            sqhd: 0,
            closing: false,
            out: Output::new(),
            observer,
        }
    }

    /// What the queue was configured with.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// The observer.
    pub fn observer_mut(&mut self) -> &mut O {
        &mut self.observer
    }

    /// What the controller decided at Connect, once it accepted one.
    pub fn binding(&self) -> Option<Binding> {
        match self.phase {
            Phase::Bound { binding, .. } => Some(binding),
            _ => None,
        }
    }

    /// The error that ended the queue, if it has ended.
    pub fn error(&self) -> Option<&QueueError> {
        match &self.phase {
            Phase::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Whether a command asked the queue to close (Disconnect): stop reading, finish what
    /// runs, send what is queued, close.
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// Commands in flight (admitted and not completed).
    pub fn in_flight(&self) -> usize {
        self.cids.len()
    }

    /// Bytes waiting for the socket.
    pub fn pending_output(&self) -> usize {
        self.out.queued_bytes()
    }

    /// Segments waiting for the socket (a PDU's header, its payload and its digest are one
    /// each), that is about how many `iovec`s writing them takes.
    pub fn pending_segments(&self) -> usize {
        self.out.segments()
    }

    /// Whether output is waiting for the socket.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Hands the output to `write` (a non-blocking vectored write of the slices given, in
    /// order, returning how many bytes it took) until everything is sent (`Ok(true)`) or
    /// `write` would block (`Ok(false)`).
    pub fn poll_transmit(
        &mut self,
        mut write: impl FnMut(&[std::io::IoSlice<'_>]) -> std::io::Result<usize>,
    ) -> std::io::Result<bool> {
        self.out.write_with(|iov| write(iov).map(Sent::copied))
    }

    /// As [`TargetQueue::poll_transmit`], for a writer that may take bytes without copying
    /// them ([`Sent::zero_copy`], Linux `MSG_ZEROCOPY`): what such a write took is kept, and
    /// its buffers are not recycled, until [`TargetQueue::zero_copy_complete`] reports it.
    /// Zero-copy writes are numbered from 0 in the order made, as Linux numbers them.
    pub fn poll_transmit_zero_copy(
        &mut self,
        write: impl FnMut(&[std::io::IoSlice<'_>]) -> std::io::Result<Sent>,
    ) -> std::io::Result<bool> {
        self.out.write_with(write)
    }

    /// Zero-copy writes `first..=last` (numbers wrap) completed: the socket no longer reads
    /// what they took.
    pub fn zero_copy_complete(&mut self, first: u32, last: u32) {
        self.out.lent.complete(first, last);
    }

    /// Bytes zero-copy writes took that have not completed yet.
    pub fn zero_copy_pending(&self) -> usize {
        self.out.lent.bytes()
    }

    /// Zero-copy writes that have not completed yet.
    pub fn zero_copy_outstanding(&self) -> usize {
        self.out.lent.outstanding()
    }

    /// Expires the deadlines that passed by `now` (an error then ends the queue: the host did
    /// not send its ICReq and a successful Connect in time), or returns the next one.
    pub fn poll_timeout(&mut self, now: Instant) -> Result<Option<Instant>, QueueError> {
        match self.phase {
            Phase::AwaitIcReq | Phase::Unbound if now >= self.connect_by => {
                Err(self.fail(QueueError::Timeout(Deadline::Connect)))
            }
            Phase::AwaitIcReq | Phase::Unbound => Ok(Some(self.connect_by)),
            Phase::Bound { .. } => Ok(None),
            Phase::Failed(ref e) => Err(e.clone()),
        }
    }

    /// The controller accepted the Connect [`Input::Connect`] carried: the queue is bound.
    /// Complete the Connect after this.
    pub fn bind(&mut self, binding: Binding) {
        if matches!(self.phase, Phase::Unbound) {
            let c2h_success = binding.sq_flow_control_disabled && self.config.c2h_success;
            self.phase = Phase::Bound {
                binding,
                c2h_success,
            };
        }
    }

    /// Marks command `cid` as parked: the controller completes it out of band, whenever
    /// (an Asynchronous Event Request), through [`TargetQueue::complete_parked`].
    pub fn park(&mut self, cid: u16) {
        if !self.parked.contains(&cid) {
            self.parked.push(cid);
        }
    }

    /// Completes parked command `c.cid`; `false` (and nothing sent) when no such command is
    /// parked any more (the host gave it up by reusing its CID).
    pub fn complete_parked(&mut self, c: Completion) -> bool {
        if !self.unpark(c.cid) {
            return false;
        }
        self.complete(c);
        true
    }

    fn unpark(&mut self, cid: u16) -> bool {
        let before = self.parked.len();
        self.parked.retain(|p| *p != cid);
        self.parked.len() != before
    }

    /// A command finished: queues its data (C2HData) and its response capsule, which carries
    /// the SQ head pointer. A read that succeeded with no result dwords ends with C2HData
    /// SUCCESS and no capsule when the host disabled SQ flow control and the option is on.
    pub fn complete(&mut self, c: Completion) {
        if c.after == After::CloseQueue {
            self.closing = true;
        }
        self.cids.remove(c.cid);
        self.unpark(c.cid);
        self.send_completion(c);
    }

    fn send_completion(&mut self, mut done: Completion) {
        if matches!(self.phase, Phase::Failed(_)) {
            return;
        }
        if let (true, Some(data)) = (done.status == Status::SUCCESS, done.data.take()) {
            //= NVMe/TCP 1.0 §3.3.2.1
            //# C2HData PDUs also contain a SUCCESS flag that may be set to ‘1’ in the last C2HData
            //# PDU of a command data transfer to indicate that the command has completed
            //# successfully. In this case, no Response Capsule is sent by the controller for the
            //# command ... If the SUCCESS flag is cleared to ‘0’ in the last C2HData PDU of a
            //# command, then the controller shall send a Response Capsule for the command to the
            //# host. ... The SUCCESS flag may be set to ‘1’ in the last C2HData PDU only if the
            //# controller supports disabling Submission Queue Head Pointer (SQHD) updates.
            // SUCCESS only when the host disabled SQ flow control.
            // SUCCESS completes the command at the host, so only when no result dwords
            // need a response capsule.
            let success = done.dw0 == 0
                && done.dw1 == 0
                && matches!(
                    self.phase,
                    Phase::Bound {
                        c2h_success: true,
                        ..
                    }
                );
            // In order, at most `max_c2h_data` bytes each; LAST_PDU (and SUCCESS) on the last.
            let chunk = usize::try_from(self.config.max_c2h_data.max(1)).unwrap_or(usize::MAX);
            let mut at = 0usize;
            loop {
                let end = data.len().min(at.saturating_add(chunk));
                let last = end == data.len();
                let pdu = C2hData {
                    cccid: done.cid,
                    datao: u32::try_from(at).unwrap_or(u32::MAX),
                    last_pdu: last,
                    success: success && last,
                    data: if at == 0 && last {
                        data.clone()
                    } else {
                        data.slice(at..end)
                    },
                };
                self.observer.pdu_sent(PduType::C2H_DATA);
                self.out.push_c2h_data(&pdu, self.tx);
                if last {
                    break;
                }
                at = end;
            }
            if success {
                return;
            }
        }
        let mut cqe = Cqe::new(done.cid, done.status);
        cqe.dw0 = done.dw0;
        cqe.dw1 = done.dw1;
        cqe.sqhd = self.sqhd;
        cqe.sqid = self.binding().map_or(0, |b| b.qid);
        self.observer.pdu_sent(PduType::CAPSULE_RESP);
        self.out.push_cqe(cqe, self.tx);
    }

    /// Ends the queue with `e`: its C2HTermReq (if it has one) is queued, nothing else is
    /// sent after it, and every later input returns `e` again.
    fn fail(&mut self, e: QueueError) -> QueueError {
        //= NVMe/TCP 1.0 §3.5
        //# When a controller detects a fatal error, that controller shall:
        //# 1. stop processing any PDUs that arrive on the connection; and
        //# 2. send a C2HTermReq PDU (refer to section 3.6.2.4) with:
        //# a. an appropriate Fatal Error Status field (FES);
        //# b. additional error information in the Fatal Error Information (FEI) field if
        //# applicable; and
        //# c. the PDU data contents filled with the PDU Header that was being processed when the
        //# fatal error was detected.
        if let Phase::Failed(first) = &self.phase {
            return first.clone();
        }
        if let Some(term) = e.term_req() {
            self.observer.term_req_sent(term.fes);
            self.observer.pdu_sent(PduType::C2H_TERM_REQ);
            self.out.push_term_req(&term, self.tx);
        }
        self.phase = Phase::Failed(e.clone());
        e
    }

    /// Decodes and handles the next PDU buffered in `input` (bytes of a received PDU are
    /// split off it). Call it until it returns [`Input::NeedMore`], acting on each result
    /// before the next call: a command's completion may be queued at once.
    pub fn handle_input(&mut self, input: &mut BytesMut) -> Result<Input, QueueError> {
        if let Phase::Failed(e) = &self.phase {
            return Err(e.clone());
        }
        match self.framer.decode(input) {
            Ok(Some(pdu)) => {
                self.observer.pdu_received(pdu.pdu_type());
                self.on_pdu(pdu)
            }
            Ok(None) => Ok(Input::NeedMore),
            Err(crate::DecodeError::DataDigest {
                pdu_type,
                command_id,
                ..
            }) => {
                self.observer.data_digest_error(pdu_type, command_id);
                self.on_data_digest_error(pdu_type, command_id)
            }
            Err(e) => {
                if matches!(e, crate::DecodeError::HeaderDigest { .. }) {
                    self.observer.header_digest_error();
                }
                Err(self.fail(QueueError::Decode(e)))
            }
        }
    }
}
