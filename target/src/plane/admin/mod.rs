//! The admin command set: Identify, Get Log Page, Get/Set Features, Asynchronous Event Request,
//! Keep Alive and Abort. Discovery controllers answer the subset NVMe-oF gives them.

pub mod feature_values;
pub mod features;
pub mod identify;
pub mod log_page;

use lamina_protocol::nvme::{Abort, AdminOpcode, StatusCode};

use crate::plane::command::Started;
use crate::plane::command::{Completion, QueueCtx, Request, ready};
use crate::plane::subsystem::SubsystemKind;

/// Starts an admin command. Data for the host never exceeds what its SGL describes (the
/// transport bounds that by MDTS before the command starts): a shorter buffer gets the first
/// bytes of the answer, as SPDK does, and nothing is built beyond it.
pub fn execute(ctx: &QueueCtx, req: Request) -> Started {
    let sqe = &req.sqe;
    let cid = sqe.cid;
    let discovery = ctx.ctrl.subsystem().kind() == SubsystemKind::Discovery;
    let mut done = match AdminOpcode(sqe.opcode) {
        AdminOpcode::IDENTIFY => identify::identify(ctx, sqe),
        AdminOpcode::GET_LOG_PAGE => log_page::get_log_page(ctx, sqe, req.c2h_len),
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
    bound_to_sgl(&mut done, req.c2h_len);
    // Admin commands are rare: each is logged at debug with the dwords that say what it asked
    // (CNS and CNTID in CDW10, CSI in CDW11 for Identify; LID, FID and SEL in CDW10).
    tracing::debug!(
        cid,
        opcode = format_args!("{:#04x}", sqe.opcode),
        nsid = sqe.nsid,
        cdw10 = format_args!("{:#010x}", sqe.cdw(10)),
        cdw11 = format_args!("{:#010x}", sqe.cdw(11)),
        status = ?done.status.code,
        "admin command"
    );
    Started::Running(ready(done))
}

/// Cuts the data of `done` to the `c2h_len` bytes the host's SGL describes.
pub fn bound_to_sgl(done: &mut Completion, c2h_len: u32) {
    let room = usize::try_from(c2h_len).unwrap_or(usize::MAX);
    if let Some(data) = done.data.as_mut() {
        data.truncate(room);
        if data.is_empty() {
            done.data = None;
        }
    }
}

/// Abort is best effort (NVMe Base 2.0 §5.1): commands run to completion here, so the honest
/// answer is "not aborted" (DW0 bit 0 set), and the host waits for the command itself.
fn abort(sqe: &lamina_protocol::nvme::Sqe) -> Completion {
    match Abort::try_from(sqe) {
        Ok(_) => Completion::dw0(sqe.cid, 1),
        Err(_) => Completion::error(sqe.cid, StatusCode::INVALID_FIELD),
    }
}
