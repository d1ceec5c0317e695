//! The driver task of a shared [`super::Queue`]: it owns the receive side, hands PDUs to the
//! core in batches (one lock per read, not per PDU), sends what the core queued in answer
//! (H2CData runs, an H2CTermReq), flushes output the submitters could not, and wakes the tasks
//! whose commands ended, after releasing the lock. It stops on close, on a fatal error or when
//! the target closes the connection, failing whatever is still in flight.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Waker;

use rustix::net::Shutdown;
use tokio::io::Interest;

use super::Shared;
use crate::host::error::HostError;
use crate::host::reader::{Filled, PduReader};

/// Runs until the queue stops.
pub(super) async fn run(shared: Arc<Shared>, mut reader: PduReader) {
    let capacity = shared.params.queue_size;
    let mut wakers: Vec<Waker> = Vec::with_capacity(usize::from(capacity));
    let end = loop {
        if shared.closing.load(Ordering::Acquire) {
            break HostError::QueueClosed;
        }
        if let Some(e) = shared.lock().dead().cloned() {
            break e;
        }
        // Input TLS decrypted but the socket will not signal: take it now.
        if shared.stream.has_pending_input() {
            let step = receive(&shared, &mut reader, &mut wakers);
            for w in wakers.drain(..) {
                w.wake();
            }
            if let Err(e) = step {
                break e;
            }
            continue;
        }
        let want_write = shared.lock().has_output() || shared.stream.has_staged();
        let interest = if want_write {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        let ready = tokio::select! {
            biased;
            () = shared.close_notify.notified() => continue,
            ready = shared.stream.ready(interest) => ready,
            () = shared.wake_driver.notified(), if !want_write => continue,
        };
        let step = match ready {
            Ok(r) if r.is_readable() || r.is_read_closed() => {
                receive(&shared, &mut reader, &mut wakers)
            }
            Ok(_) => {
                flush(&shared);
                Ok(())
            }
            Err(e) => Err(HostError::io("wait for socket", e)),
        };
        for w in wakers.drain(..) {
            w.wake();
        }
        if let Err(e) = step {
            break e;
        }
    };
    stop(&shared, end, &mut wakers);
}

/// Reads, dispatches and flushes; collects the wakers of ended commands into `wakers`.
fn receive(
    shared: &Shared,
    reader: &mut PduReader,
    wakers: &mut Vec<Waker>,
) -> Result<(), HostError> {
    let filled = reader.fill(&shared.stream);
    let mut core = shared.lock();
    let result = match filled {
        Ok(Filled::Eof) => Err(HostError::ConnectionClosed),
        Ok(_) => reader.dispatch(&mut core).map(|_| ()),
        Err(e) => Err(HostError::io("receive", e)),
    };
    if let Err(e) = &result {
        // dispatch() already failed the core; fail() ignores a second error.
        core.fail(e.clone(), &[]);
    }
    shared.flush_locked(&mut core);
    core.drain_ready(|_, waker| wakers.extend(waker));
    shared.release_slots(&mut core);
    result
}

fn flush(shared: &Shared) {
    let mut core = shared.lock();
    shared.flush_locked(&mut core);
}

/// Fails what is left, publishes why the queue ended and shuts the socket down.
fn stop(shared: &Shared, end: HostError, wakers: &mut Vec<Waker>) {
    let why = {
        let mut core = shared.lock();
        core.fail(end.clone(), &[]);
        // Last chance for an H2CTermReq queued by a violation.
        shared.flush_locked(&mut core);
        core.drain_ready(|_, waker| wakers.extend(waker));
        shared.release_slots(&mut core);
        core.dead().cloned().unwrap_or(end)
    };
    shared.slots.close();
    tracing::debug!(qid = shared.params.qid, peer = %shared.peer, error = %why, "queue stopped");
    // Marked ended before any failed command is woken: a caller that sees its command fail
    // with the queue's end also sees `is_closed`.
    shared.ended.send_replace(Some(why));
    for w in wakers.drain(..) {
        w.wake();
    }
    // Both directions: the target sees the connection go even while handles remain.
    let _ = rustix::net::shutdown(shared.stream.tcp(), Shutdown::Both);
}
