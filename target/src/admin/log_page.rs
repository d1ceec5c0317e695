//! Get Log Page: Error Information (01h), SMART / Health (02h), Firmware Slot (03h), Changed
//! Namespace List (04h), Commands Supported and Effects (05h) and, on discovery controllers,
//! Discovery (70h). Each page is built whole, then the slice the host asked for (LPO offset,
//! NUMD length) is returned; reading past the end of a page is Invalid Field.

use bytes::{Bytes, BytesMut};
use lamina_protocol::nvme::identify::NsIdList;
use lamina_protocol::nvme::log_page::{
    CommandEffects, CommandsSupportedEffects, ERROR_INFO_ENTRY_LEN, ErrorInfoEntry,
    FirmwareSlotInfo, LogPageId, SmartLog,
};
use lamina_protocol::nvme::{AdminOpcode, GetLogPage, IoOpcode, Sqe, Status, StatusCode};

use crate::command::{Completion, QueueCtx};
use crate::controller::errors::ERROR_LOG_ENTRIES;
use crate::controller::stats::data_units;
use crate::subsystem::SubsystemKind;

/// Handles Get Log Page; `c2h_len` is the host buffer's size (at most MDTS).
pub fn get_log_page(ctx: &QueueCtx, sqe: &Sqe, c2h_len: u32) -> Completion {
    let cid = sqe.cid;
    let Ok(cmd) = GetLogPage::try_from(sqe) else {
        return Completion::error(cid, StatusCode::INVALID_FIELD);
    };
    let discovery = ctx.ctrl.subsystem().kind() == SubsystemKind::Discovery;
    let page = match (cmd.lid, discovery) {
        (LogPageId::DISCOVERY, true) => {
            ctx.ctrl.on_discovery_log_read(cmd.rae);
            crate::discovery::log_page(&ctx.target, &ctx.ctrl)
        }
        (LogPageId::ERROR_INFO, _) => error_info(ctx),
        (LogPageId::SMART, false) => smart(ctx),
        (LogPageId::FIRMWARE_SLOT, false) => firmware_slot(),
        (LogPageId::CHANGED_NS_LIST, false) => changed_ns(ctx, cmd.rae),
        (LogPageId::COMMANDS_EFFECTS, false) => effects(),
        _ => return Completion::with_status(cid, Status::dnr(StatusCode::INVALID_LOG_PAGE)),
    };
    // NUMD can ask for 16 GiB; nothing beyond the host's buffer is ever built.
    let len = cmd.len_bytes().min(u64::from(c2h_len));
    match slice(&page, cmd.lpo, len) {
        Some(data) => Completion::data(cid, data),
        None => Completion::error(cid, StatusCode::INVALID_FIELD),
    }
}

/// The `[offset, offset + len)` part of `page`, zero-filled past its end; `None` when the
/// offset is past the end.
fn slice(page: &Bytes, offset: u64, len: u64) -> Option<Bytes> {
    let start = usize::try_from(offset).ok()?;
    if start > page.len() || (start == page.len() && len > 0 && !page.is_empty()) {
        return None;
    }
    let len = usize::try_from(len).ok()?;
    let end = start.saturating_add(len);
    if end <= page.len() {
        return Some(page.slice(start..end));
    }
    let mut b = BytesMut::with_capacity(len);
    b.extend_from_slice(&page[start..]);
    b.resize(len, 0);
    Some(b.freeze())
}

fn error_info(ctx: &QueueCtx) -> Bytes {
    let mut entries = ctx.ctrl.error_log();
    entries.resize(ERROR_LOG_ENTRIES, ErrorInfoEntry::default());
    let mut b = BytesMut::with_capacity(ERROR_LOG_ENTRIES * ERROR_INFO_ENTRY_LEN);
    for e in &entries {
        e.encode(&mut b);
    }
    b.freeze()
}

fn smart(ctx: &QueueCtx) -> Bytes {
    let s = ctx.ctrl.stats().snapshot();
    let log = SmartLog {
        available_spare: 100,
        available_spare_threshold: 10,
        data_units_read: data_units(s.bytes_read),
        data_units_written: data_units(s.bytes_written),
        host_read_commands: u128::from(s.read_commands),
        host_write_commands: u128::from(s.write_commands),
        media_errors: u128::from(s.media_errors),
        error_log_entries: u128::from(ctx.ctrl.error_count()),
        ..SmartLog::default()
    };
    let mut b = BytesMut::with_capacity(512);
    log.encode(&mut b);
    b.freeze()
}

fn firmware_slot() -> Bytes {
    let mut info = FirmwareSlotInfo {
        afi: 1,
        ..FirmwareSlotInfo::default()
    };
    info.frs[0] = crate::VERSION.chars().take(8).collect();
    let mut b = BytesMut::with_capacity(FirmwareSlotInfo::SIZE);
    info.encode(&mut b);
    b.freeze()
}

fn changed_ns(ctx: &QueueCtx, retain: bool) -> Bytes {
    let (list, overflow) = ctx.ctrl.take_changed_namespaces(retain);
    let nsids = if overflow { vec![u32::MAX] } else { list };
    let mut b = BytesMut::with_capacity(NsIdList::SIZE);
    NsIdList { nsids }.encode(&mut b);
    b.freeze()
}

fn effects() -> Bytes {
    let mut log = CommandsSupportedEffects {
        admin: [CommandEffects(0); 256],
        io: [CommandEffects(0); 256],
    };
    let supported = CommandEffects(CommandEffects::CSUPP);
    for op in [
        AdminOpcode::GET_LOG_PAGE,
        AdminOpcode::IDENTIFY,
        AdminOpcode::ABORT,
        AdminOpcode::SET_FEATURES,
        AdminOpcode::GET_FEATURES,
        AdminOpcode::ASYNC_EVENT_REQUEST,
        AdminOpcode::KEEP_ALIVE,
        AdminOpcode::FABRICS,
    ] {
        log.admin[usize::from(op.0)] = supported;
    }
    let changes_content = CommandEffects(CommandEffects::CSUPP | CommandEffects::LBCC);
    for op in [
        IoOpcode::WRITE,
        IoOpcode::WRITE_ZEROES,
        IoOpcode::DATASET_MANAGEMENT,
    ] {
        log.io[usize::from(op.0)] = changes_content;
    }
    for op in [IoOpcode::READ, IoOpcode::FLUSH, IoOpcode::COMPARE] {
        log.io[usize::from(op.0)] = supported;
    }
    let mut b = BytesMut::with_capacity(4096);
    log.encode(&mut b);
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_pad_and_refuse_past_end() {
        let page = Bytes::from_static(b"abcdef");
        assert_eq!(&slice(&page, 2, 2).unwrap()[..], b"cd");
        assert_eq!(&slice(&page, 4, 4).unwrap()[..], b"ef\0\0");
        assert!(slice(&page, 7, 1).is_none());
        assert!(slice(&page, 6, 1).is_none());
    }
}
