//! Get Log Page. Each controller type serves the pages of its table ([`served`]): Supported
//! Log Pages (00h), Error Information (01h) and Feature Identifiers Supported and Effects (12h)
//! on both; SMART / Health (02h), Firmware Slot (03h), Changed Namespace List (04h), Commands
//! Supported and Effects (05h) and NVMe-MI Commands Supported and Effects (13h) on I/O
//! controllers; Discovery (70h) on discovery controllers. The Supported Log Pages page is made
//! from the same table, so what it advertises is what is served. Each page is built whole,
//! then the slice the host asked for (LPO offset, NUMD length) is returned; reading past the
//! end of a page is Invalid Field.

use bytes::{Bytes, BytesMut};
use lamina_protocol::nvme::identify::{Csi, NsIdList};
use lamina_protocol::nvme::log_page::{
    CommandEffects, CommandsSupportedEffects, ERROR_INFO_ENTRY_LEN, ErrorInfoEntry,
    FirmwareSlotInfo, LidSupport, LogPageId, NvmeMiCommandsEffects, SmartLog, SupportedLogPages,
};
use lamina_protocol::nvme::{AdminOpcode, GetLogPage, IoOpcode, Sqe, StatusCode};

use crate::plane::command::{Completion, QueueCtx};
use crate::plane::controller::errors::ERROR_LOG_ENTRIES;
use crate::plane::controller::stats::data_units;
use crate::plane::subsystem::SubsystemKind;

/// Builds one log page for a command.
type Build = fn(&QueueCtx, &GetLogPage) -> Bytes;

/// The log pages an I/O controller serves, with their builders.
const IO_PAGES: &[(LogPageId, Build)] = &[
    (LogPageId::SUPPORTED_LOG_PAGES, |ctx, _| supported(ctx)),
    (LogPageId::ERROR_INFO, |ctx, _| error_info(ctx)),
    (LogPageId::SMART, |ctx, _| smart(ctx)),
    (LogPageId::FIRMWARE_SLOT, |_, _| firmware_slot()),
    (LogPageId::CHANGED_NS_LIST, |ctx, cmd| {
        changed_ns(ctx, cmd.rae)
    }),
    (LogPageId::COMMANDS_EFFECTS, |_, _| effects()),
    (LogPageId::FEATURE_IDS_EFFECTS, |ctx, _| {
        super::features::effects_log(ctx)
    }),
    (LogPageId::NVME_MI_EFFECTS, |_, _| nvme_mi_effects()),
];

/// The log pages a discovery controller serves, with their builders.
const DISCOVERY_PAGES: &[(LogPageId, Build)] = &[
    (LogPageId::SUPPORTED_LOG_PAGES, |ctx, _| supported(ctx)),
    (LogPageId::ERROR_INFO, |ctx, _| error_info(ctx)),
    (LogPageId::FEATURE_IDS_EFFECTS, |ctx, _| {
        super::features::effects_log(ctx)
    }),
    (LogPageId::DISCOVERY, |ctx, cmd| {
        ctx.ctrl.on_discovery_log_read(cmd.rae);
        crate::plane::discovery::log_page(&ctx.plane, &ctx.ctrl)
    }),
];

/// The log pages a controller of this kind serves.
pub fn served(discovery: bool) -> &'static [(LogPageId, Build)] {
    if discovery { DISCOVERY_PAGES } else { IO_PAGES }
}

/// Handles Get Log Page; `c2h_len` is the host buffer's size (at most MDTS).
pub fn get_log_page(ctx: &QueueCtx, sqe: &Sqe, c2h_len: u32) -> Completion {
    let cid = sqe.cid;
    let Ok(cmd) = GetLogPage::try_from(sqe) else {
        return Completion::error(cid, StatusCode::INVALID_FIELD);
    };
    let discovery = ctx.ctrl.subsystem().kind() == SubsystemKind::Discovery;
    //~ NVMe Base 2.0, Get Log Page: an unsupported Log Identifier is aborted with Invalid
    //~ Field in Command; so is Offset Type 1 (index) for a page whose IOS bit is clear, which
    //~ is every page here.
    let Some((_, build)) = served(discovery).iter().find(|(lid, _)| *lid == cmd.lid) else {
        return Completion::error(cid, StatusCode::INVALID_FIELD);
    };
    if cmd.ot {
        return Completion::error(cid, StatusCode::INVALID_FIELD);
    }
    // Commands Supported and Effects describes the command set in CSI: only NVM exists here.
    if cmd.lid == LogPageId::COMMANDS_EFFECTS && cmd.csi != Csi::NVM.0 {
        return Completion::error(cid, StatusCode::INVALID_FIELD);
    }
    let page = build(ctx, &cmd);
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

/// Supported Log Pages (00h): LSUPP for every page of this controller's table.
fn supported(ctx: &QueueCtx) -> Bytes {
    let discovery = ctx.ctrl.subsystem().kind() == SubsystemKind::Discovery;
    let mut log = SupportedLogPages::default();
    for (lid, _) in served(discovery) {
        log.lids[usize::from(lid.0)] = LidSupport(LidSupport::LSUPP);
    }
    let mut b = BytesMut::with_capacity(SupportedLogPages::SIZE);
    log.encode(&mut b);
    b.freeze()
}

/// NVMe-MI Commands Supported and Effects (13h): Lamina has no NVMe-MI Send/Receive, so no
/// NVMe-MI command is supported and every entry is zero.
fn nvme_mi_effects() -> Bytes {
    let mut b = BytesMut::with_capacity(NvmeMiCommandsEffects::SIZE);
    NvmeMiCommandsEffects::default().encode(&mut b);
    b.freeze()
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
    // Scopes (NVMe 2.0 CSP): what a command with a namespace or a controller in view acts
    // on. Commands that name a namespace have namespace scope too.
    const CSUPP: u32 = CommandEffects::CSUPP;
    const CTRL: u32 = CommandEffects::CSCPE;
    const NS_CTRL: u32 = CommandEffects::NSCPE | CommandEffects::CSCPE;
    for (op, scope) in [
        (AdminOpcode::GET_LOG_PAGE, NS_CTRL),
        (AdminOpcode::IDENTIFY, NS_CTRL),
        (AdminOpcode::ABORT, CTRL),
        (AdminOpcode::SET_FEATURES, NS_CTRL),
        (AdminOpcode::GET_FEATURES, NS_CTRL),
        (AdminOpcode::ASYNC_EVENT_REQUEST, CTRL),
        (AdminOpcode::KEEP_ALIVE, CTRL),
        (AdminOpcode::FABRICS, CTRL),
    ] {
        log.admin[usize::from(op.0)] = CommandEffects(CSUPP | scope);
    }
    let ns = CommandEffects::NSCPE;
    for (op, effect) in [
        (IoOpcode::WRITE, CommandEffects::LBCC),
        (IoOpcode::WRITE_ZEROES, CommandEffects::LBCC),
        (IoOpcode::DATASET_MANAGEMENT, CommandEffects::LBCC),
        (IoOpcode::READ, 0),
        (IoOpcode::FLUSH, 0),
        (IoOpcode::COMPARE, 0),
    ] {
        log.io[usize::from(op.0)] = CommandEffects(CSUPP | effect | ns);
    }
    let mut b = BytesMut::with_capacity(4096);
    log.encode(&mut b);
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_the_supported_log_pages_page_once() {
        for discovery in [false, true] {
            let lids: Vec<u8> = served(discovery).iter().map(|(l, _)| l.0).collect();
            assert!(lids.contains(&0x00) && lids.contains(&0x12) && lids.contains(&0x01));
            let mut sorted = lids.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), lids.len(), "a LID twice in one table");
            assert_eq!(lids.contains(&0x70), discovery);
            assert_eq!(lids.contains(&0x05), !discovery);
        }
    }

    #[test]
    fn slices_pad_and_refuse_past_end() {
        let page = Bytes::from_static(b"abcdef");
        assert_eq!(&slice(&page, 2, 2).unwrap()[..], b"cd");
        assert_eq!(&slice(&page, 4, 4).unwrap()[..], b"ef\0\0");
        assert!(slice(&page, 7, 1).is_none());
        assert!(slice(&page, 6, 1).is_none());
    }
}
