//! NVM I/O commands of the mock target, on its RAM namespace (4 KiB blocks).

use std::sync::atomic::Ordering;

use bytes::Bytes;
use lamina_protocol::nvme::{
    DatasetManagement, DsmRange, IoOpcode, ReadWrite, Sqe, StatusCode, WriteZeroes,
};

use super::conn::Reply;
use super::{Fault, Shared};

const BS: u64 = 4096;

pub(crate) fn execute(shared: &Shared, sqe: &Sqe, data: &Bytes, read_len: u32) -> Reply {
    shared.io_commands.fetch_add(1, Ordering::Relaxed);
    if sqe.nsid != 1 && IoOpcode(sqe.opcode) != IoOpcode::FLUSH {
        return Reply::error(StatusCode::INVALID_NAMESPACE_OR_FORMAT);
    }
    match IoOpcode(sqe.opcode) {
        IoOpcode::READ => read(shared, sqe, read_len),
        IoOpcode::WRITE | IoOpcode::COMPARE => write_or_compare(shared, sqe, data),
        IoOpcode::FLUSH => Reply::ok(),
        IoOpcode::WRITE_ZEROES => write_zeroes(shared, sqe),
        IoOpcode::DATASET_MANAGEMENT => dsm(shared, sqe, data),
        _ => Reply::error(StatusCode::INVALID_OPCODE),
    }
}

/// Byte range of `blocks` blocks at `slba`, if inside the namespace.
fn range(shared: &Shared, slba: u64, blocks: u64) -> Option<std::ops::Range<usize>> {
    let end = slba.checked_add(blocks)?;
    if end > shared.config.blocks {
        return None;
    }
    Some(usize::try_from(slba * BS).ok()?..usize::try_from(end * BS).ok()?)
}

fn read(shared: &Shared, sqe: &Sqe, read_len: u32) -> Reply {
    if shared.config.fault == Fault::IgnoreReads {
        return Reply::deferred();
    }
    let Ok(rw) = ReadWrite::try_from(sqe) else {
        return Reply::error(StatusCode::INVALID_FIELD);
    };
    let Some(r) = range(shared, rw.slba, u64::from(rw.block_count())) else {
        return Reply::error(StatusCode::LBA_OUT_OF_RANGE);
    };
    if u64::from(read_len) != u64::from(rw.block_count()) * BS {
        return Reply::error(StatusCode::DATA_SGL_LENGTH_INVALID);
    }
    let data = shared
        .data
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut out = data.get(r).map(<[u8]>::to_vec).unwrap_or_default();
    let n = shared.io_commands.load(Ordering::Relaxed);
    if shared.config.fault == Fault::CorruptReads
        && n.is_multiple_of(100)
        && let Some(b) = out.get_mut(100)
    {
        *b ^= 0x20;
    }
    Reply::data(out)
}

fn write_or_compare(shared: &Shared, sqe: &Sqe, payload: &Bytes) -> Reply {
    let Ok(rw) = ReadWrite::try_from(sqe) else {
        return Reply::error(StatusCode::INVALID_FIELD);
    };
    let Some(r) = range(shared, rw.slba, u64::from(rw.block_count())) else {
        return Reply::error(StatusCode::LBA_OUT_OF_RANGE);
    };
    if payload.len() != r.len() {
        return Reply::error(StatusCode::DATA_SGL_LENGTH_INVALID);
    }
    let mut data = shared
        .data
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(dst) = data.get_mut(r) else {
        return Reply::error(StatusCode::LBA_OUT_OF_RANGE);
    };
    if rw.opcode == IoOpcode::COMPARE {
        if dst != &payload[..] {
            return Reply::error(StatusCode::COMPARE_FAILURE);
        }
    } else {
        dst.copy_from_slice(payload);
    }
    Reply::ok()
}

fn write_zeroes(shared: &Shared, sqe: &Sqe) -> Reply {
    let Ok(wz) = WriteZeroes::try_from(sqe) else {
        return Reply::error(StatusCode::INVALID_FIELD);
    };
    let Some(r) = range(shared, wz.slba, u64::from(wz.block_count())) else {
        return Reply::error(StatusCode::LBA_OUT_OF_RANGE);
    };
    let mut data = shared
        .data
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(dst) = data.get_mut(r) {
        dst.fill(0);
    }
    Reply::ok()
}

fn dsm(shared: &Shared, sqe: &Sqe, payload: &Bytes) -> Reply {
    let Ok(cmd) = DatasetManagement::try_from(sqe) else {
        return Reply::error(StatusCode::INVALID_FIELD);
    };
    let Ok(ranges) = DsmRange::decode_list(payload, cmd.range_count()) else {
        return Reply::error(StatusCode::DATA_SGL_LENGTH_INVALID);
    };
    if !cmd.deallocate {
        return Reply::ok();
    }
    let mut data = shared
        .data
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for d in ranges {
        let Some(r) = range(shared, d.slba, u64::from(d.nlb)) else {
            return Reply::error(StatusCode::LBA_OUT_OF_RANGE);
        };
        if let Some(dst) = data.get_mut(r) {
            dst.fill(0);
        }
    }
    Reply::ok()
}
