//! Reads and writes that complete where they are dispatched, without a future.
//!
//! A RAM or null bdev, or an lvol on one whose clusters the write touches are allocated,
//! never waits: the copy is the whole command. Building, moving and polling the command's
//! future (several kilobytes: it has room for every backend's slowest path) then costs more
//! than the copy, so [`try_run`] does such a command at once and the transport queues its
//! completion directly. The checks, errors, statistics and error log are the ones the
//! asynchronous path applies (the helpers are shared); a command the backend cannot finish at
//! once (a file, an allocating or FUA write, a snapshot holding the write gate) is handed back
//! untouched and runs as a future.

use crate::plane::command::{Completion, Request};
use crate::plane::stats::OpClass;

use super::{Io, lba_of, lvol_err, read_done, read_range, write_done, write_range};

/// What [`try_run`] did with a command.
pub(super) enum AtOnce {
    /// Finished it.
    Done(Completion),
    /// Could not finish it without waiting: the request, untouched.
    Declined(Request),
}

use AtOnce::{Declined, Done};

/// Runs `req` at once if it is a read, or a write without FUA, that its backend finishes
/// without waiting; otherwise gives it back.
pub(super) fn try_run(io: &Io, req: Request, class: OpClass, max_io: u32) -> AtOnce {
    match class {
        OpClass::Read => read(io, req, max_io),
        OpClass::Write => write(io, req),
        _ => Declined(req),
    }
}

fn read(io: &Io, mut req: Request, max_io: u32) -> AtOnce {
    let Some(_guard) = io.ns.enter() else {
        return Done(io.closed());
    };
    let (offset, len) = match read_range(io, &req.sqe, req.c2h_len, max_io) {
        Ok(r) => r,
        Err(status) => return Done(io.finish(Err(status), lba_of(&req.sqe))),
    };
    req.buf.reserve(len);
    let Some(r) = io.ns.backend().read_now(offset, len, &mut req.buf) else {
        return Declined(req);
    };
    let result = r.map(|()| read_done(io, req.buf)).map_err(|e| lvol_err(&e));
    Done(io.finish(result, lba_of(&req.sqe)))
}

fn write(io: &Io, req: Request) -> AtOnce {
    let Some(_guard) = io.ns.enter() else {
        return Done(io.closed());
    };
    let (offset, len) = match write_range(io, &req.sqe, req.data.len()) {
        Ok((_, _, true)) => return Declined(req),
        Ok((offset, len, false)) => (offset, len),
        Err(status) => return Done(io.finish(Err(status), lba_of(&req.sqe))),
    };
    let Some(r) = io.ns.backend().write_now(offset, &req.data) else {
        return Declined(req);
    };
    let result = r.map(|()| write_done(io, len)).map_err(|e| lvol_err(&e));
    Done(io.finish(result, lba_of(&req.sqe)))
}
