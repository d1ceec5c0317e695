//! The NVM I/O command set: Read, Write (FUA honoured), Flush, Write Zeroes (with DEAC),
//! Dataset Management (deallocate) and Compare.
//!
//! Every command holds its namespace (`Arc`) and enters the namespace's gate for its whole run,
//! so removing the namespace waits for it, and the backend's own per-I/O guard makes an lvol
//! delete wait too. LBA ranges are checked against the namespace size (LBA Out of Range), the
//! data length against the SGL (Data SGL Length Invalid), writes to read-only namespaces are
//! refused (Namespace Is Write Protected), and backend failures become NVMe statuses in
//! [`status`].

pub mod status;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use lamina_lvol::LvolError;
use lamina_protocol::nvme::{
    DatasetManagement, DsmRange, IoOpcode, ReadWrite, Sqe, Status, StatusCode, WriteZeroes,
};

use crate::command::{CommandFuture, Completion, QueueCtx, Request, ready};
use crate::controller::Controller;
use crate::controller::errors::CommandError;
use crate::stats::OpClass;
use crate::subsystem::Namespace;

/// Flush with this NSID flushes every namespace (VWC bits 2:1 advertise it).
const NSID_ALL: u32 = 0xFFFF_FFFF;

/// What a command needs after dispatch.
struct Io {
    ctrl: Arc<Controller>,
    ns: Arc<Namespace>,
    qid: u16,
    cid: u16,
}

/// Starts an I/O command.
pub fn execute(ctx: &QueueCtx, req: Request) -> CommandFuture {
    let cid = req.sqe.cid;
    let op = IoOpcode(req.sqe.opcode);
    if op == IoOpcode::FLUSH && req.sqe.nsid == NSID_ALL {
        return flush_all(ctx.ctrl.clone(), cid);
    }
    let Some(ns) = ctx.ctrl.subsystem().namespace(req.sqe.nsid) else {
        return ready(Completion::error(
            cid,
            StatusCode::INVALID_NAMESPACE_OR_FORMAT,
        ));
    };
    let io = Io {
        ctrl: ctx.ctrl.clone(),
        ns: ns.clone(),
        qid: ctx.qid,
        cid,
    };
    let max_io = ctx.target.options().max_io_size;
    match op {
        IoOpcode::READ => counted(ns, OpClass::Read, read(io, req.sqe, req.c2h_len, max_io)),
        IoOpcode::WRITE => counted(ns, OpClass::Write, write(io, req.sqe, req.data)),
        IoOpcode::COMPARE => counted(ns, OpClass::Other, compare(io, req.sqe, req.data)),
        IoOpcode::FLUSH => counted(ns, OpClass::Flush, flush(io)),
        IoOpcode::WRITE_ZEROES => counted(ns, OpClass::WriteZeroes, write_zeroes(io, req.sqe)),
        IoOpcode::DATASET_MANAGEMENT => {
            counted(ns, OpClass::Dsm, dataset_management(io, req.sqe, req.data))
        }
        _ => ready(Completion::error(cid, StatusCode::INVALID_OPCODE)),
    }
}

/// Runs `fut`, counting it in the namespace's statistics (commands, latency, errors), unless
/// counting is off (checked once, before the clock is read, so no command is half-counted).
fn counted(
    ns: Arc<Namespace>,
    class: OpClass,
    fut: impl Future<Output = Completion> + Send + 'static,
) -> CommandFuture {
    if !crate::stats::is_counting() {
        return Box::pin(fut);
    }
    let started = Instant::now();
    Box::pin(async move {
        let c = fut.await;
        let failed =
            (c.status != Status::SUCCESS).then_some((c.status.code.sct.0, c.status.code.sc));
        ns.stats().end(class, started.elapsed(), failed);
        c
    })
}

impl Io {
    /// Byte offset and length of `blocks` blocks at `slba`, checked against the namespace.
    fn range(&self, slba: u64, blocks: u64) -> Result<(u64, u64), Status> {
        let backend = self.ns.backend();
        let bs = u64::from(backend.block_size());
        let nsze = backend.size_bytes() / bs.max(1);
        match slba.checked_add(blocks) {
            Some(end) if end <= nsze => Ok((slba * bs, blocks * bs)),
            _ => Err(Status::dnr(StatusCode::LBA_OUT_OF_RANGE)),
        }
    }

    /// Completes the command, counting errors for the log and SMART.
    fn finish(&self, result: Result<Completion, Status>, lba: u64) -> Completion {
        match result {
            Ok(c) => c,
            Err(status) => {
                if status::is_media_error(status) {
                    self.ctrl.stats().on_media_error();
                }
                self.ctrl.record_error(CommandError {
                    sqid: self.qid,
                    cid: self.cid,
                    status,
                    nsid: self.ns.nsid(),
                    lba,
                });
                Completion::with_status(self.cid, status)
            }
        }
    }

    fn closed(&self) -> Completion {
        Completion::error(self.cid, StatusCode::INVALID_NAMESPACE_OR_FORMAT)
    }
}

fn lvol_err(e: &LvolError) -> Status {
    status::from_lvol(e)
}

fn parse_rw(sqe: &Sqe) -> Result<ReadWrite, Status> {
    ReadWrite::try_from(sqe).map_err(|_| Status::dnr(StatusCode::INVALID_FIELD))
}

async fn read(io: Io, sqe: Sqe, c2h_len: u32, max_io: u32) -> Completion {
    let Some(_guard) = io.ns.enter() else {
        return io.closed();
    };
    let result = async {
        let cmd = parse_rw(&sqe)?;
        let (offset, len) = io.range(cmd.slba, u64::from(cmd.block_count()))?;
        if len != u64::from(c2h_len) {
            return Err(Status::dnr(StatusCode::DATA_SGL_LENGTH_INVALID));
        }
        if len > u64::from(max_io) {
            return Err(Status::dnr(StatusCode::INVALID_FIELD));
        }
        let len = usize::try_from(len).map_err(|_| Status::dnr(StatusCode::INVALID_FIELD))?;
        let mut buf = BytesMut::with_capacity(len);
        io.ns
            .backend()
            .read(offset, len, &mut buf)
            .await
            .map_err(|e| lvol_err(&e))?;
        io.ctrl.stats().on_read(len as u64);
        io.ns.stats().add_read(len as u64);
        Ok(Completion::data(io.cid, buf.freeze()))
    }
    .await;
    io.finish(result, lba_of(&sqe))
}

async fn write(io: Io, sqe: Sqe, data: Bytes) -> Completion {
    let Some(_guard) = io.ns.enter() else {
        return io.closed();
    };
    let result = async {
        let cmd = parse_rw(&sqe)?;
        let (offset, len) = io.range(cmd.slba, u64::from(cmd.block_count()))?;
        if len != data.len() as u64 {
            return Err(Status::dnr(StatusCode::DATA_SGL_LENGTH_INVALID));
        }
        if io.ns.backend().is_read_only() {
            return Err(Status::dnr(StatusCode::NAMESPACE_WRITE_PROTECTED));
        }
        // With the volatile write cache disabled every write is written through.
        let fua = cmd.fua || !io.ctrl.features().volatile_write_cache;
        io.ns
            .backend()
            .write(offset, data, fua)
            .await
            .map_err(|e| lvol_err(&e))?;
        io.ctrl.stats().on_write(len);
        io.ns.stats().add_written(len);
        Ok(Completion::ok(io.cid))
    }
    .await;
    io.finish(result, lba_of(&sqe))
}

async fn compare(io: Io, sqe: Sqe, data: Bytes) -> Completion {
    let Some(_guard) = io.ns.enter() else {
        return io.closed();
    };
    let result = async {
        let cmd = parse_rw(&sqe)?;
        let (offset, len) = io.range(cmd.slba, u64::from(cmd.block_count()))?;
        if len != data.len() as u64 {
            return Err(Status::dnr(StatusCode::DATA_SGL_LENGTH_INVALID));
        }
        let mut buf = BytesMut::with_capacity(data.len());
        io.ns
            .backend()
            .read(offset, data.len(), &mut buf)
            .await
            .map_err(|e| lvol_err(&e))?;
        if buf[..] != data[..] {
            return Err(Status::dnr(StatusCode::COMPARE_FAILURE));
        }
        Ok(Completion::ok(io.cid))
    }
    .await;
    io.finish(result, lba_of(&sqe))
}

async fn flush(io: Io) -> Completion {
    let Some(_guard) = io.ns.enter() else {
        return io.closed();
    };
    let result = io
        .ns
        .backend()
        .flush()
        .await
        .map(|()| Completion::ok(io.cid));
    io.finish(result.map_err(|e| lvol_err(&e)), 0)
}

/// Flush with NSID FFFFFFFFh: every namespace of the subsystem.
fn flush_all(ctrl: Arc<Controller>, cid: u16) -> CommandFuture {
    Box::pin(async move {
        for ns in ctrl.subsystem().namespaces() {
            let Some(_guard) = ns.enter() else { continue };
            if let Err(e) = ns.backend().flush().await {
                return Completion::with_status(cid, lvol_err(&e));
            }
        }
        Completion::ok(cid)
    })
}

async fn write_zeroes(io: Io, sqe: Sqe) -> Completion {
    let Some(_guard) = io.ns.enter() else {
        return io.closed();
    };
    let result = async {
        let cmd =
            WriteZeroes::try_from(&sqe).map_err(|_| Status::dnr(StatusCode::INVALID_FIELD))?;
        let (offset, len) = io.range(cmd.slba, u64::from(cmd.block_count()))?;
        if io.ns.backend().is_read_only() {
            return Err(Status::dnr(StatusCode::NAMESPACE_WRITE_PROTECTED));
        }
        let backend = io.ns.backend();
        let r = if cmd.deac {
            backend.deallocate(offset, len).await
        } else {
            backend.write_zeroes(offset, len, cmd.fua).await
        };
        r.map_err(|e| lvol_err(&e))?;
        Ok(Completion::ok(io.cid))
    }
    .await;
    io.finish(result, lba_of(&sqe))
}

async fn dataset_management(io: Io, sqe: Sqe, data: Bytes) -> Completion {
    let Some(_guard) = io.ns.enter() else {
        return io.closed();
    };
    let result = async {
        let cmd = DatasetManagement::try_from(&sqe)
            .map_err(|_| Status::dnr(StatusCode::INVALID_FIELD))?;
        if data.len() != cmd.data_len() {
            return Err(Status::dnr(StatusCode::DATA_SGL_LENGTH_INVALID));
        }
        let ranges = DsmRange::decode_list(&data, cmd.range_count())
            .map_err(|_| Status::dnr(StatusCode::INVALID_FIELD))?;
        // Check every range before touching any, so a bad range changes nothing.
        let mut checked = Vec::with_capacity(ranges.len());
        for r in &ranges {
            checked.push(io.range(r.slba, u64::from(r.nlb))?);
        }
        if !cmd.deallocate {
            // Only hints (integral read/write): nothing to do.
            return Ok(Completion::ok(io.cid));
        }
        if io.ns.backend().is_read_only() {
            return Err(Status::dnr(StatusCode::NAMESPACE_WRITE_PROTECTED));
        }
        for (offset, len) in checked {
            if len > 0 {
                io.ns
                    .backend()
                    .deallocate(offset, len)
                    .await
                    .map_err(|e| lvol_err(&e))?;
            }
        }
        Ok(Completion::ok(io.cid))
    }
    .await;
    io.finish(result, 0)
}

/// SLBA from CDW10/11.
fn lba_of(sqe: &Sqe) -> u64 {
    u64::from(sqe.cdw(10)) | (u64::from(sqe.cdw(11)) << 32)
}
