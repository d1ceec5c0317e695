//! What flows between the transport and the command handlers: a [`Request`] in (the SQE, the
//! host's data, how much data the host can take back), a [`Completion`] out (status, result
//! dwords, data for the host, and whether the queue must close afterwards).
//!
//! Reads get their data buffer in the [`Request`] (`buf`, lent by the connection's pool) and
//! hand it back frozen in the [`Completion`]; the connection reclaims it once the socket has
//! taken the data, so the read path allocates nothing per command.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use lamina_protocol::nvme::Sqe;

use crate::plane::DataPlane;
use crate::plane::controller::Controller;

/// One command as the handlers see it.
#[derive(Debug, Clone)]
pub struct Request {
    /// The submission queue entry.
    pub sqe: Sqe,
    /// Host-to-controller data (in-capsule or gathered from H2CData), empty if none.
    pub data: Bytes,
    /// Controller-to-host bytes the host's SGL describes (0 if none).
    pub c2h_len: u32,
    /// For I/O reads: an empty buffer with room for `c2h_len` bytes, from the connection's
    /// pool; empty (no allocation) otherwise.
    pub buf: BytesMut,
}

pub use lamina_protocol::target::{After, Completion};

/// A command running.
pub type CommandFuture = Pin<Box<dyn Future<Output = Completion> + Send + 'static>>;

/// The queue a command arrived on.
#[derive(Debug, Clone)]
pub struct QueueCtx {
    /// The target.
    pub plane: Arc<DataPlane>,
    /// The controller the queue belongs to.
    pub ctrl: Arc<Controller>,
    /// The queue ID (0: admin).
    pub qid: u16,
    /// The largest transfer (`max_io_size`) when the queue connected.
    pub max_io_size: u32,
    /// The queue's in-band authentication.
    pub auth: Arc<crate::plane::auth::QueueAuth>,
}

/// A completed future for handlers that finish at once.
pub fn ready(c: Completion) -> CommandFuture {
    Box::pin(std::future::ready(c))
}

/// How an I/O command started: finished at once (a backend that never waits), or as its
/// future, of one concrete type the transport stores inline.
pub enum IoStarted<F> {
    /// Its completion.
    Done(Completion),
    /// It runs as this future.
    Running(F),
}

impl<F> std::fmt::Debug for IoStarted<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Done(c) => f.debug_tuple("Done").field(c).finish(),
            Self::Running(_) => f.write_str("Running"),
        }
    }
}

/// What became of a command.
pub enum Started {
    /// It runs as this future.
    Running(CommandFuture),
    /// It was parked (an Asynchronous Event Request) and completes later out of band.
    Parked,
}

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Running(_) => "Running",
            Self::Parked => "Parked",
        })
    }
}
