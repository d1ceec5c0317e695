//! [`OwnedQueue`]: one connection whose socket, receive side and [`QueueCore`] belong to a
//! single task, with no lock and no waker per command. The controller uses it to run Fabrics
//! Connect before a queue is handed to its driver task; `lamina-perf` runs its whole load loop
//! on it.

use std::net::SocketAddr;
use std::time::Duration;

use crate::host::link::Link;
use tokio::io::Interest;

use crate::host::core::{Command, Completion, QueueCore, QueueParams};
use crate::host::error::HostError;
use crate::host::reader::{Filled, PduReader};
use crate::host::transport::{Connection, Negotiated};

/// A queue driven by its owner.
#[derive(Debug)]
pub struct OwnedQueue {
    pub(crate) stream: Link,
    pub(crate) reader: PduReader,
    pub(crate) core: QueueCore,
    negotiated: Negotiated,
    peer: SocketAddr,
}

impl OwnedQueue {
    pub(crate) fn new(conn: Connection, params: QueueParams, peer: SocketAddr) -> Self {
        Self {
            stream: conn.link,
            reader: conn.reader,
            core: QueueCore::new(params),
            negotiated: conn.negotiated,
            peer,
        }
    }

    /// The queue's state machine.
    pub fn core(&mut self) -> &mut QueueCore {
        &mut self.core
    }

    /// The queue's state machine, read-only.
    pub fn core_ref(&self) -> &QueueCore {
        &self.core
    }

    /// What the IC exchange settled.
    pub fn negotiated(&self) -> Negotiated {
        self.negotiated
    }

    /// The target's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Sends what is queued without blocking; `Ok(false)` when the socket is full.
    pub fn flush(&mut self) -> Result<bool, HostError> {
        let stream = &self.stream;
        let staged = stream.flush_staged();
        match staged.and_then(|_| self.core.tx().flush_with(|s| stream.try_write_vectored(s))) {
            Ok(done) => Ok(done && !stream.has_staged()),
            Err(e) => {
                let err = HostError::io("send", e);
                self.core.fail(err.clone(), &[]);
                Err(err)
            }
        }
    }

    /// Reads what the socket holds and hands the PDUs to the core; returns how many.
    pub fn receive(&mut self) -> Result<usize, HostError> {
        match self.reader.fill(&self.stream) {
            Ok(Filled::Eof) => {
                let err = HostError::ConnectionClosed;
                self.core.fail(err.clone(), &[]);
                return Err(err);
            }
            Ok(_) => {}
            Err(e) => {
                let err = HostError::io("receive", e);
                self.core.fail(err.clone(), &[]);
                return Err(err);
            }
        }
        let count = self.reader.dispatch(&mut self.core)?;
        // A violation queues an H2CTermReq: try to get it out before the caller gives up.
        if self.core.dead().is_some() {
            let _ = self.flush();
        }
        Ok(count)
    }

    /// One round of I/O: send what is queued, wait until the socket is readable (or writable
    /// while output waits), and take in what arrived.
    pub async fn turn(&mut self) -> Result<(), HostError> {
        if let Some(e) = self.core.dead() {
            return Err(e.clone());
        }
        let flushed = self.flush()?;
        if self.stream.has_pending_input() {
            self.receive()?;
            return Ok(());
        }
        let interest = if flushed {
            Interest::READABLE
        } else {
            Interest::READABLE | Interest::WRITABLE
        };
        let ready = match self.stream.ready(interest).await {
            Ok(r) => r,
            Err(e) => {
                let err = HostError::io("wait for socket", e);
                self.core.fail(err.clone(), &[]);
                return Err(err);
            }
        };
        if ready.is_readable() || ready.is_read_closed() {
            self.receive()?;
        }
        Ok(())
    }

    /// Submits `cmd` and drives the connection until it completes or `timeout` passes. Other
    /// commands in flight keep running and can be collected later.
    pub async fn execute(
        &mut self,
        cmd: Command,
        timeout: Duration,
    ) -> Result<Completion, HostError> {
        let index = self.core.submit(cmd)?;
        let cid = self.core.cid_of(index).unwrap_or(0);
        let wait = async {
            loop {
                if let Some(outcome) = self.core.take(index, cid) {
                    return outcome;
                }
                self.turn().await?;
            }
        };
        if let Ok(outcome) = tokio::time::timeout(timeout, wait).await {
            return outcome;
        }
        self.core.abandon(index, cid);
        Err(HostError::Timeout {
            op: "command",
            after: timeout,
        })
    }
}
