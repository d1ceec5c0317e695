//! Metadata: the in-memory state every metadata operation is applied to ([`state`]), the
//! cluster allocator with its reservations and quarantine ([`alloc`]), checkpoints
//! ([`checkpoint`]) and the journal with group commit and replay ([`journal`]).

pub(crate) mod alloc;
pub(crate) mod checkpoint;
pub(crate) mod journal;
pub(crate) mod open;
pub(crate) mod state;
pub(crate) mod verify;
