//! The command slot table of one queue: CID allocation, and the state of every command in
//! flight (its data buffers, how far its transfers have gone, its outcome and its waker).
//!
//! A CID is the slot index (low 12 bits) plus a 4-bit generation that changes every time the
//! slot is reused, as the Linux host does (`nvme_cid_install_genctr`): a late or duplicated
//! completion for a previous use of the slot then names an unknown command instead of
//! completing the wrong one. Indexes stop at 4094 so that no CID is FFFFh, the value the
//! Error Information log page reserves.

use std::task::Waker;

use bytes::{Bytes, BytesMut};
use lamina_protocol::nvme::Cqe;

use crate::host::HostError;

/// Most commands one queue tracks (and therefore the largest usable queue size).
pub const MAX_SLOTS: u16 = 4095;

const INDEX_BITS: u16 = 12;
const INDEX_MASK: u16 = (1 << INDEX_BITS) - 1;

/// How a command ended, before its owner collects it.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// A completion arrived (CapsuleResp, or C2HData with SUCCESS, synthesized).
    Completed {
        cqe: Cqe,
        /// The completion was implied by C2HData with the SUCCESS flag.
        by_success_flag: bool,
    },
    /// The command failed without a usable completion.
    Failed(HostError),
}

/// A command between submission and collection.
#[derive(Debug)]
pub(crate) struct InFlight {
    pub(crate) cid: u16,
    pub(crate) opcode: u8,
    /// Data the target fetches by R2T (empty when in-capsule or none).
    pub(crate) out: Bytes,
    /// Bytes of `out` the target has asked for so far.
    pub(crate) out_requested: u32,
    /// Where C2HData lands; `None` discards it (load generation).
    pub(crate) in_buf: Option<BytesMut>,
    /// Bytes the command reads (0 when it reads nothing).
    pub(crate) in_len: u32,
    /// Bytes of C2HData received so far (data arrives in order).
    pub(crate) in_received: u32,
    /// A C2HData PDU of this command failed its data digest.
    pub(crate) digest_error: bool,
    pub(crate) outcome: Option<Outcome>,
    /// Its owner gave up waiting (timeout or dropped future): free the slot on completion.
    pub(crate) abandoned: bool,
    pub(crate) waker: Option<Waker>,
}

impl InFlight {
    /// Transfer length of R2T data.
    pub(crate) fn out_len(&self) -> u32 {
        u32::try_from(self.out.len()).unwrap_or(u32::MAX)
    }
}

#[derive(Debug, Default)]
struct Slot {
    generation: u16,
    cmd: Option<InFlight>,
}

/// Fixed-size table of command slots.
#[derive(Debug)]
pub(crate) struct SlotTable {
    slots: Vec<Slot>,
    /// Free slot indexes, most recently freed last (reused first: warm caches).
    free: Vec<u16>,
}

impl SlotTable {
    /// A table of `size` slots (at most [`MAX_SLOTS`]).
    pub(crate) fn new(size: u16) -> Self {
        let size = size.clamp(1, MAX_SLOTS);
        Self {
            slots: (0..size).map(|_| Slot::default()).collect(),
            free: (0..size).rev().collect(),
        }
    }

    /// Number of slots.
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Slots in use.
    pub(crate) fn in_use(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Takes a free slot for a command built by `make` from its CID; `None` when all are busy.
    pub(crate) fn allocate(&mut self, make: impl FnOnce(u16) -> InFlight) -> Option<u16> {
        let index = self.free.pop()?;
        let slot = self.slots.get_mut(usize::from(index))?;
        slot.generation = (slot.generation + 1) & 0xf;
        let cid = (slot.generation << INDEX_BITS) | index;
        slot.cmd = Some(make(cid));
        Some(index)
    }

    /// Releases slot `index`, returning what it held.
    pub(crate) fn release(&mut self, index: u16) -> Option<InFlight> {
        let cmd = self.slots.get_mut(usize::from(index))?.cmd.take()?;
        self.free.push(index);
        Some(cmd)
    }

    /// The slot index a CID names, if that command is outstanding (submitted, not yet ended).
    pub(crate) fn outstanding(&self, cid: u16) -> Option<u16> {
        let index = cid & INDEX_MASK;
        let cmd = self.slots.get(usize::from(index))?.cmd.as_ref()?;
        (cmd.cid == cid && cmd.outcome.is_none()).then_some(index)
    }

    /// The command in slot `index`.
    pub(crate) fn get(&self, index: u16) -> Option<&InFlight> {
        self.slots.get(usize::from(index))?.cmd.as_ref()
    }

    /// The command in slot `index`, mutably.
    pub(crate) fn get_mut(&mut self, index: u16) -> Option<&mut InFlight> {
        self.slots.get_mut(usize::from(index))?.cmd.as_mut()
    }

    /// Indexes of every occupied slot.
    pub(crate) fn occupied(&self) -> impl Iterator<Item = u16> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.cmd.is_some())
            .filter_map(|(i, _)| u16::try_from(i).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(cid: u16) -> InFlight {
        InFlight {
            cid,
            opcode: 0,
            out: Bytes::new(),
            out_requested: 0,
            in_buf: None,
            in_len: 0,
            in_received: 0,
            digest_error: false,
            outcome: None,
            abandoned: false,
            waker: None,
        }
    }

    #[test]
    fn cids_change_generation_on_reuse() {
        let mut t = SlotTable::new(2);
        let a = t.allocate(cmd).unwrap();
        let cid_a = t.get(a).unwrap().cid;
        assert_eq!(t.outstanding(cid_a), Some(a));
        t.release(a);
        assert_eq!(t.outstanding(cid_a), None, "stale CID must not match");
        let b = t.allocate(cmd).unwrap();
        assert_eq!(a, b, "most recently freed slot is reused first");
        assert_ne!(t.get(b).unwrap().cid, cid_a);
    }

    #[test]
    fn table_runs_out_and_never_yields_ffff() {
        let mut t = SlotTable::new(MAX_SLOTS);
        let mut seen = 0;
        for _ in 0..40 {
            while let Some(i) = t.allocate(cmd) {
                assert_ne!(t.get(i).unwrap().cid, 0xffff);
                seen += 1;
            }
            for i in t.occupied().collect::<Vec<_>>() {
                t.release(i);
            }
        }
        assert_eq!(seen, 40 * usize::from(MAX_SLOTS));
        assert_eq!(t.in_use(), 0);
    }

    #[test]
    fn completed_commands_are_no_longer_outstanding() {
        let mut t = SlotTable::new(4);
        let i = t.allocate(cmd).unwrap();
        let cid = t.get(i).unwrap().cid;
        t.get_mut(i).unwrap().outcome = Some(Outcome::Failed(HostError::QueueClosed));
        assert_eq!(t.outstanding(cid), None);
        assert_eq!(t.in_use(), 1);
    }
}
