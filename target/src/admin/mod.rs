//! The admin command set: Identify, Get Log Page, Get/Set Features, Asynchronous Event Request,
//! Keep Alive and Abort. Discovery controllers answer the subset NVMe-oF gives them.

pub mod features;
pub mod identify;
pub mod log_page;

use lamina_protocol::nvme::{Abort, AdminOpcode, StatusCode};

use crate::command::{Completion, QueueCtx, Request, ready};
use crate::dispatch::Started;
use crate::subsystem::SubsystemKind;

/// Starts an admin command.
pub fn execute(ctx: &QueueCtx, req: Request) -> Started {
    let sqe = &req.sqe;
    let cid = sqe.cid;
    let discovery = ctx.ctrl.subsystem().kind() == SubsystemKind::Discovery;
    let done = match AdminOpcode(sqe.opcode) {
        AdminOpcode::IDENTIFY => identify::identify(ctx, sqe),
        AdminOpcode::GET_LOG_PAGE => log_page::get_log_page(ctx, sqe),
        AdminOpcode::SET_FEATURES => features::set_features(ctx, sqe, &req.data),
        AdminOpcode::GET_FEATURES => features::get_features(ctx, sqe),
        AdminOpcode::KEEP_ALIVE => Completion::ok(cid),
        AdminOpcode::ASYNC_EVENT_REQUEST => match ctx.ctrl.submit_aer(cid) {
            Ok(()) => return Started::Parked,
            Err(status) => Completion::with_status(cid, status),
        },
        AdminOpcode::ABORT if !discovery => abort(sqe),
        _ => Completion::error(cid, StatusCode::INVALID_OPCODE),
    };
    Started::Running(ready(done))
}

/// Abort is best effort (NVMe Base 2.0 §5.1): commands run to completion here, so the honest
/// answer is "not aborted" (DW0 bit 0 set), and the host waits for the command itself.
fn abort(sqe: &lamina_protocol::nvme::Sqe) -> Completion {
    match Abort::try_from(sqe) {
        Ok(_) => Completion::dw0(sqe.cid, 1),
        Err(_) => Completion::error(sqe.cid, StatusCode::INVALID_FIELD),
    }
}
