//! The NVM I/O command set: Read, Write (FUA honoured), Flush, Write Zeroes (with DEAC),
//! Dataset Management (deallocate) and Compare.
//!
//! Every command holds its namespace (`Arc`, loaded from the subsystem's lock-free map) and
//! enters the namespace's gate for its whole run, so removing the namespace waits for it, and
//! the backend's own per-I/O guard makes an lvol delete wait too. The data length is checked
//! against the SGL here (Data SGL Length Invalid); the LBA range and read-only are checked
//! once, by the backend (the lvol's export descriptor reads its size and flags from atomics,
//! a raw bdev's device checks its own size), and its errors become NVMe statuses in
//! [`status`] (LBA Out of Range, Namespace Is Write Protected, media errors). Dataset
//! Management alone checks its ranges up front, so a bad range changes nothing. No command
//! takes a mutex on this path.
//!
//! [`execute`] returns one concrete future type for every I/O command (a `match` inside one
//! `async` block), so the transport stores it inline in a per-queue slot instead of boxing
//! it; reads fill the pooled buffer that comes with the request. Together with the RAM and
//! null backends (which allocate nothing), a read or write costs no heap allocation.

mod now;
pub mod status;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use lamina_lvol::LvolError;
use lamina_protocol::nvme::{
    DatasetManagement, DsmRange, IoOpcode, ReadWrite, Sqe, Status, StatusCode, WriteZeroes,
};

use crate::plane::command::{Completion, IoStarted, QueueCtx, Request};
use crate::plane::controller::Controller;
use crate::plane::controller::errors::CommandError;
use crate::plane::stats::OpClass;
use crate::plane::subsystem::Namespace;

/// Flush with this NSID flushes every namespace (VWC bits 2:1 advertise it).
const NSID_ALL: u32 = 0xFFFF_FFFF;

/// What a command needs after dispatch.
struct Io {
    ctrl: Arc<Controller>,
    ns: Arc<Namespace>,
    qid: u16,
    cid: u16,
}

/// What [`execute`] found before the command runs.
enum Start {
    /// Finished before it started (bad namespace or opcode).
    Done(Completion),
    /// Flush of every namespace (the controller, the CID).
    FlushAll(Arc<Controller>, u16),
    /// Runs on one namespace; counted when `started` is set.
    Run {
        io: Io,
        req: Request,
        class: OpClass,
        started: Option<Instant>,
    },
}

/// Starts an I/O command. A read, or a write without FUA, that its backend can do at once
/// (RAM, null, an lvol on them with the clusters allocated) completes here without a
/// future; everything else becomes one future type for every opcode, stored inline by the
/// transport.
pub fn execute(
    ctx: &QueueCtx,
    req: Request,
) -> IoStarted<impl Future<Output = Completion> + Send + 'static + use<>> {
    let max_io = ctx.max_io_size;
    let start = match start(ctx, req) {
        Start::Done(c) => return IoStarted::Done(c),
        Start::Run {
            io,
            req,
            class,
            started,
        } => match now::try_run(&io, req, class, max_io) {
            now::AtOnce::Done(c) => return IoStarted::Done(account(&io, class, started, c)),
            now::AtOnce::Declined(req) => Start::Run {
                io,
                req,
                class,
                started,
            },
        },
        all @ Start::FlushAll(..) => all,
    };
    IoStarted::Running(async move {
        match start {
            Start::Done(c) => c,
            Start::FlushAll(ctrl, cid) => flush_all(&ctrl, cid).await,
            Start::Run {
                io,
                req,
                class,
                started,
            } => {
                let c = run(&io, req, class, max_io).await;
                account(&io, class, started, c)
            }
        }
    })
}

/// Counts a finished command in the namespace's statistics if it was counted at its start
/// (decided before the clock was read, so no command is half-counted when the switch flips).
fn account(io: &Io, class: OpClass, started: Option<Instant>, c: Completion) -> Completion {
    if let Some(t) = started {
        let failed =
            (c.status != Status::SUCCESS).then_some((c.status.code.sct.0, c.status.code.sc));
        io.ns.stats().end(class, t.elapsed(), failed);
    }
    c
}

/// Looks the namespace up and classifies the command.
fn start(ctx: &QueueCtx, req: Request) -> Start {
    let cid = req.sqe.cid;
    let op = IoOpcode(req.sqe.opcode);
    if op == IoOpcode::FLUSH && req.sqe.nsid == NSID_ALL {
        return Start::FlushAll(ctx.ctrl.clone(), cid);
    }
    let Some(ns) = ctx.ctrl.namespace(req.sqe.nsid) else {
        return Start::Done(Completion::error(
            cid,
            StatusCode::INVALID_NAMESPACE_OR_FORMAT,
        ));
    };
    let class = match op {
        IoOpcode::READ => OpClass::Read,
        IoOpcode::WRITE => OpClass::Write,
        IoOpcode::COMPARE => OpClass::Other,
        IoOpcode::FLUSH => OpClass::Flush,
        IoOpcode::WRITE_ZEROES => OpClass::WriteZeroes,
        IoOpcode::DATASET_MANAGEMENT => OpClass::Dsm,
        _ => return Start::Done(Completion::error(cid, StatusCode::INVALID_OPCODE)),
    };
    let started = crate::plane::stats::is_counting().then(Instant::now);
    let io = Io {
        ctrl: ctx.ctrl.clone(),
        ns,
        qid: ctx.qid,
        cid,
    };
    Start::Run {
        io,
        req,
        class,
        started,
    }
}

/// Runs a classified command.
async fn run(io: &Io, req: Request, class: OpClass, max_io: u32) -> Completion {
    match class {
        OpClass::Read => read(io, req.sqe, req.c2h_len, req.buf, max_io).await,
        OpClass::Write => write(io, req.sqe, req.data).await,
        OpClass::Other => compare(io, req.sqe, req.data).await,
        OpClass::Flush => flush(io).await,
        OpClass::WriteZeroes => write_zeroes(io, req.sqe).await,
        OpClass::Dsm => dataset_management(io, req.sqe, req.data).await,
    }
}

impl Io {
    /// Byte offset and length of `blocks` blocks at `slba`; the backend checks them against
    /// its size (an offset past what 64 bits hold is out of range here already).
    fn bytes(&self, slba: u64, blocks: u64) -> Result<(u64, u64), Status> {
        let bs = u64::from(self.ns.backend().block_size());
        match (slba.checked_mul(bs), blocks.checked_mul(bs)) {
            (Some(offset), Some(len)) if offset.checked_add(len).is_some() => Ok((offset, len)),
            _ => Err(Status::dnr(StatusCode::LBA_OUT_OF_RANGE)),
        }
    }

    /// [`Io::bytes`], also checked against the namespace's size now (Dataset Management
    /// checks every range before it changes anything).
    fn range(&self, slba: u64, blocks: u64) -> Result<(u64, u64), Status> {
        let (offset, len) = self.bytes(slba, blocks)?;
        if offset + len > self.ns.backend().size_now() {
            return Err(Status::dnr(StatusCode::LBA_OUT_OF_RANGE));
        }
        Ok((offset, len))
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

/// The checks of a Read before its data is read: the byte range, the length against the
/// host's SGL and the queue's largest transfer.
fn read_range(io: &Io, sqe: &Sqe, c2h_len: u32, max_io: u32) -> Result<(u64, usize), Status> {
    let cmd = parse_rw(sqe)?;
    let (offset, len) = io.bytes(cmd.slba, u64::from(cmd.block_count()))?;
    if len != u64::from(c2h_len) {
        return Err(Status::dnr(StatusCode::DATA_SGL_LENGTH_INVALID));
    }
    if len > u64::from(max_io) {
        return Err(Status::dnr(StatusCode::INVALID_FIELD));
    }
    let len = usize::try_from(len).map_err(|_| Status::dnr(StatusCode::INVALID_FIELD))?;
    Ok((offset, len))
}

/// Counts a read that succeeded and hands its data to the completion.
fn read_done(io: &Io, mut buf: BytesMut) -> Completion {
    let len = buf.len() as u64;
    io.ctrl.stats().on_read(len);
    io.ns.stats().add_read(len);
    Completion::data(io.cid, buf.split().freeze())
}

async fn read(io: &Io, sqe: Sqe, c2h_len: u32, mut buf: BytesMut, max_io: u32) -> Completion {
    let Some(_guard) = io.ns.enter() else {
        return io.closed();
    };
    let result = async {
        let (offset, len) = read_range(io, &sqe, c2h_len, max_io)?;
        // The transport lent a buffer of at least `len` bytes; this is a no-op then.
        buf.reserve(len);
        io.ns
            .backend()
            .read(offset, len, &mut buf)
            .await
            .map_err(|e| lvol_err(&e))?;
        Ok(read_done(io, buf))
    }
    .await;
    io.finish(result, lba_of(&sqe))
}

/// The checks of a Write before its data is written: the byte range and the length against
/// the data the host sent; also whether it must be durable on completion (FUA, or no
/// volatile write cache).
fn write_range(io: &Io, sqe: &Sqe, data_len: usize) -> Result<(u64, u64, bool), Status> {
    let cmd = parse_rw(sqe)?;
    let (offset, len) = io.bytes(cmd.slba, u64::from(cmd.block_count()))?;
    if len != data_len as u64 {
        return Err(Status::dnr(StatusCode::DATA_SGL_LENGTH_INVALID));
    }
    // With the volatile write cache disabled every write is written through.
    let fua = cmd.fua || !io.ctrl.volatile_write_cache();
    Ok((offset, len, fua))
}

/// Counts a write that succeeded.
fn write_done(io: &Io, len: u64) -> Completion {
    io.ctrl.stats().on_write(len);
    io.ns.stats().add_written(len);
    Completion::ok(io.cid)
}

async fn write(io: &Io, sqe: Sqe, data: Bytes) -> Completion {
    let Some(_guard) = io.ns.enter() else {
        return io.closed();
    };
    let result = async {
        let (offset, len, fua) = write_range(io, &sqe, data.len())?;
        io.ns
            .backend()
            .write(offset, data, fua)
            .await
            .map_err(|e| lvol_err(&e))?;
        Ok(write_done(io, len))
    }
    .await;
    io.finish(result, lba_of(&sqe))
}

async fn compare(io: &Io, sqe: Sqe, data: Bytes) -> Completion {
    let Some(_guard) = io.ns.enter() else {
        return io.closed();
    };
    let result = async {
        let cmd = parse_rw(&sqe)?;
        let (offset, len) = io.bytes(cmd.slba, u64::from(cmd.block_count()))?;
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

async fn flush(io: &Io) -> Completion {
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

/// Flush with NSID FFFFFFFFh: every namespace of the subsystem this host sees.
async fn flush_all(ctrl: &Controller, cid: u16) -> Completion {
    for ns in ctrl.namespaces() {
        let Some(_guard) = ns.enter() else { continue };
        if let Err(e) = ns.backend().flush().await {
            return Completion::with_status(cid, lvol_err(&e));
        }
    }
    Completion::ok(cid)
}

async fn write_zeroes(io: &Io, sqe: Sqe) -> Completion {
    let Some(_guard) = io.ns.enter() else {
        return io.closed();
    };
    let result = async {
        let cmd =
            WriteZeroes::try_from(&sqe).map_err(|_| Status::dnr(StatusCode::INVALID_FIELD))?;
        let (offset, len) = io.bytes(cmd.slba, u64::from(cmd.block_count()))?;
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

async fn dataset_management(io: &Io, sqe: Sqe, data: Bytes) -> Completion {
    let Some(_guard) = io.ns.enter() else {
        return io.closed();
    };
    let result = async {
        let cmd = DatasetManagement::try_from(&sqe)
            .map_err(|_| Status::dnr(StatusCode::INVALID_FIELD))?;
        // At least NR+1 ranges: Linux always sends a whole 4 KiB page of them, and the
        // specification (like SPDK) only refuses a buffer too short for NR.
        if data.len() < cmd.data_len() {
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
        if io.ns.backend().read_only_now() {
            return Err(Status::dnr(StatusCode::NAMESPACE_WRITE_PROTECTED));
        }
        for (offset, len) in checked {
            if len > 0 {
                io.ns
                    .backend()
                    .deallocate(offset, len)
                    .await
                    .map_err(|e| lvol_err(&e))?;
                io.ns.stats().add_unmapped(len);
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
