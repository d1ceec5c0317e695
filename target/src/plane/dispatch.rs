//! Routing a command to its handler: Fabrics commands on any queue (Disconnect only on an I/O
//! queue), admin commands on the admin queue, NVM I/O commands on I/O queues. A queue that
//! must authenticate takes only Authentication Send/Receive and Disconnect until it has. Everything but
//! Fabrics commands waits for the host to enable the controller (CC.EN = 1, CSTS.RDY = 1):
//! before, Command Sequence Error. Fused commands are Invalid Field: Identify Controller FUSES
//! is 0 (no Compare and Write).
//!
//! I/O commands come back finished ([`Dispatched::Done`], when the backend did them at once)
//! or as their concrete future ([`Dispatched::Io`]), which the transport stores inline in a
//! per-queue slot; commands refused before they run are finished too; everything else is
//! boxed (admin and Fabrics commands are rare).

use std::future::Future;

use lamina_protocol::fabrics::{
    Disconnect, FabricsCommandType, PropertyGet, PropertySet, fabrics_command_type,
};
use lamina_protocol::nvme::{AdminOpcode, Fuse, Status, StatusCode};

use crate::plane::command::{
    After, CommandFuture, Completion, IoStarted, QueueCtx, Request, ready,
};

pub use crate::plane::command::Started;

/// A command started on a bound queue.
pub enum Dispatched<F> {
    /// Finished at once: refused before it ran, or an I/O its backend did without waiting.
    Done(Completion),
    /// An NVM I/O command, as its (unboxed) future.
    Io(F),
    /// Any other command.
    Other(Started),
}

impl<F> std::fmt::Debug for Dispatched<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Done(_) => f.write_str("Done"),
            Self::Io(_) => f.write_str("Io"),
            Self::Other(s) => s.fmt(f),
        }
    }
}

/// Starts a command on a bound queue.
pub fn execute(
    ctx: &QueueCtx,
    req: Request,
) -> Dispatched<impl Future<Output = Completion> + Send + 'static + use<>> {
    if req.sqe.opcode == AdminOpcode::FABRICS.0 {
        return Dispatched::Other(Started::Running(fabrics(ctx, &req)));
    }
    // Until the queue has authenticated, only the authentication commands run (as SPDK
    // gates a queue); with Do Not Retry, as nvmet answers, so a host does not loop.
    if !ctx.auth.admits() {
        return Dispatched::Done(Completion::with_status(
            req.sqe.cid,
            Status::dnr(StatusCode::AUTHENTICATION_REQUIRED),
        ));
    }
    if !ctx.ctrl.is_ready() {
        return Dispatched::Done(Completion::error(
            req.sqe.cid,
            StatusCode::COMMAND_SEQUENCE_ERROR,
        ));
    }
    //~ NVMe Base 2.0, Identify Controller FUSES: 0h, no fused operation is supported; like
    //~ SPDK, a command that is part of a fused pair is Invalid Field in Command.
    if req.sqe.fuse() != Fuse::NORMAL {
        return Dispatched::Done(Completion::error(req.sqe.cid, StatusCode::INVALID_FIELD));
    }
    if ctx.qid == 0 {
        ctx.ctrl.subsystem().stats().on_admin_command();
        Dispatched::Other(crate::plane::admin::execute(ctx, req))
    } else {
        match crate::plane::io::execute(ctx, req) {
            IoStarted::Done(c) => Dispatched::Done(c),
            IoStarted::Running(f) => Dispatched::Io(f),
        }
    }
}

/// Fabrics commands other than Connect (which the transport handles as it binds the queue).
fn fabrics(ctx: &QueueCtx, req: &Request) -> CommandFuture {
    let cid = req.sqe.cid;
    let invalid = Completion::error(cid, StatusCode::INVALID_FIELD);
    let fctype = fabrics_command_type(&req.sqe);
    match fctype {
        Some(FabricsCommandType::AUTHENTICATION_SEND) => return crate::plane::auth::send(ctx, req),
        Some(FabricsCommandType::AUTHENTICATION_RECEIVE) => {
            return crate::plane::auth::receive(ctx, req);
        }
        Some(FabricsCommandType::DISCONNECT) => return ready(disconnect(ctx, req)),
        _ if !ctx.auth.admits() => {
            return ready(Completion::with_status(
                cid,
                Status::dnr(StatusCode::AUTHENTICATION_REQUIRED),
            ));
        }
        _ => {}
    }
    match fctype {
        Some(FabricsCommandType::PROPERTY_GET) if ctx.qid == 0 => {
            let Ok(cmd) = PropertyGet::try_from(&req.sqe) else {
                return ready(invalid);
            };
            let depth = ctx.plane.options().max_queue_depth;
            ready(match ctx.ctrl.property_get(cmd.offset, cmd.size, depth) {
                Ok(v) => Completion {
                    dw0: u32::try_from(v & 0xffff_ffff).unwrap_or(0),
                    dw1: u32::try_from(v >> 32).unwrap_or(0),
                    ..Completion::ok(cid)
                },
                Err(status) => Completion::with_status(cid, status),
            })
        }
        Some(FabricsCommandType::PROPERTY_SET) if ctx.qid == 0 => {
            let Ok(cmd) = PropertySet::try_from(&req.sqe) else {
                return ready(invalid);
            };
            let ctrl = ctx.ctrl.clone();
            Box::pin(async move {
                match ctrl.property_set(cmd.offset, cmd.size, cmd.value).await {
                    Ok(()) => Completion::ok(cid),
                    Err(status) => Completion::with_status(cid, status),
                }
            })
        }
        Some(FabricsCommandType::CONNECT) => {
            ready(Completion::error(cid, StatusCode::COMMAND_SEQUENCE_ERROR))
        }
        // Property commands on an I/O queue and unknown types.
        _ => ready(Completion::error(cid, StatusCode::INVALID_OPCODE)),
    }
}

//~ NVMe-oF 1.1, Disconnect Command: it deletes the I/O queue it is submitted on; Record Format
//~ 0 is the only one defined (else Incompatible Format), and on the Admin Queue it is an
//~ Invalid Queue Type (Linux: NVME_SC_DISCONNECT_INVALID_QTYPE). Identify Controller OFCS bit 0
//~ advertises it.
/// Fabrics Disconnect: closes the I/O queue once the completion is sent.
fn disconnect(ctx: &QueueCtx, req: &Request) -> Completion {
    let cid = req.sqe.cid;
    match Disconnect::try_from(&req.sqe) {
        Err(_) => Completion::error(cid, StatusCode::INVALID_FIELD),
        Ok(cmd) if cmd.recfmt != 0 => {
            Completion::error(cid, StatusCode::CONNECT_INCOMPATIBLE_FORMAT)
        }
        Ok(_) if ctx.qid == 0 => Completion::error(cid, StatusCode::INVALID_QUEUE_TYPE),
        Ok(_) => Completion {
            after: After::CloseQueue,
            ..Completion::ok(cid)
        },
    }
}
