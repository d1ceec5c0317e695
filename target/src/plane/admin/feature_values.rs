//! The value of each feature Lamina serves: how Get Features reads it (current or default)
//! and how Set Features checks and stores it. The tables in [`super::features`] say which
//! controller serves which.
//!
//! Arbitration, Power Management, Temperature Threshold, Error Recovery and Write Atomicity
//! Normal are what NVMe makes mandatory; each is stored as the host set it and read back, and
//! each means what it says here: arbitration is round robin (CAP.AMS 0), so the weights are
//! unused, and every queue is its own connection served on its own, so no burst limit ever
//! holds a queue back; there is one power state (NPSS 0) and no workload hint; there is no
//! temperature sensor beyond the Composite Temperature, whose thresholds are kept; no command
//! is retried, so every Time Limited Error Recovery value is met, and DULBE (unsupported,
//! NSFEAT bit 2 is clear) is refused; AWUN is 0, so Disable Normal changes nothing.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use lamina_protocol::nvme::features::{
    AsyncEventConfig, HostIdentifier, NumberOfQueues, Timestamp,
};
use lamina_protocol::nvme::{GetFeatures, SetFeatures, StatusCode};

use super::identify::IOCS_COMBINATIONS;
use crate::plane::command::QueueCtx;
use crate::plane::controller::Features;
use crate::plane::subsystem::SubsystemKind;

/// Which value Get Features reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The value in use (SEL 000b).
    Current,
    /// The value after a controller reset (SEL 001b; also 010b, since nothing is saveable).
    Default,
}

/// What Get Features returns: DW0, and data for the features that have some.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Completion DW0 only.
    Dw0(u32),
    /// Completion DW0 and a data buffer (Timestamp, Host Identifier).
    Data(u32, Bytes),
}

type GetResult = Result<Reply, StatusCode>;
type SetResult = Result<u32, StatusCode>;

/// The current or the default values.
fn values(ctx: &QueueCtx, which: Which) -> Features {
    match which {
        Which::Current => ctx.ctrl.features(),
        Which::Default => Features::defaults(ctx.ctrl.max_io_queues()),
    }
}

//~ NVMe Base 2.0, Arbitration (FID 01h): AB (2:0), LPW (15:8), MPW (23:16), HPW (31:24).
pub fn get_arbitration(ctx: &QueueCtx, _: &GetFeatures, which: Which) -> GetResult {
    Ok(Reply::Dw0(values(ctx, which).arbitration))
}

pub fn set_arbitration(ctx: &QueueCtx, cmd: &SetFeatures, _: &Bytes) -> SetResult {
    let value = cmd.cdw11 & 0xffff_ff07;
    ctx.ctrl.update_features(|f| f.arbitration = value);
    Ok(0)
}

//~ NVMe Base 2.0, Power Management (FID 02h): PS (4:0), WH (7:5). A power state above NPSS
//~ is Invalid Field.
pub fn get_power(ctx: &QueueCtx, _: &GetFeatures, which: Which) -> GetResult {
    Ok(Reply::Dw0(values(ctx, which).power_management))
}

pub fn set_power(ctx: &QueueCtx, cmd: &SetFeatures, _: &Bytes) -> SetResult {
    // One power state (NPSS 0) and no workload hints.
    if cmd.cdw11 & 0xff != 0 {
        return Err(StatusCode::INVALID_FIELD);
    }
    ctx.ctrl.update_features(|f| f.power_management = 0);
    Ok(0)
}

//~ NVMe Base 2.0, Temperature Threshold (FID 04h): TMPTH (15:0, Kelvin), TMPSEL (19:16: 0h
//~ Composite Temperature, 1h..8h sensors, Fh every implemented sensor), THSEL (21:20: 00b
//~ over, 01b under). A sensor that is not implemented, or a reserved THSEL, is Invalid Field.
fn threshold_selection(cdw11: u32, set: bool) -> Result<bool, StatusCode> {
    let tmpsel = (cdw11 >> 16) & 0xf;
    let thsel = (cdw11 >> 20) & 0x3;
    let sensor_ok = tmpsel == 0 || (set && tmpsel == 0xf);
    if !sensor_ok || thsel > 1 {
        return Err(StatusCode::INVALID_FIELD);
    }
    Ok(thsel == 1)
}

pub fn get_temperature(ctx: &QueueCtx, cmd: &GetFeatures, which: Which) -> GetResult {
    let under = threshold_selection(cmd.cdw11, false)?;
    let f = values(ctx, which);
    let kelvin = if under {
        f.temperature_under_k
    } else {
        f.temperature_over_k
    };
    Ok(Reply::Dw0(u32::from(kelvin) | (u32::from(under) << 20)))
}

pub fn set_temperature(ctx: &QueueCtx, cmd: &SetFeatures, _: &Bytes) -> SetResult {
    let under = threshold_selection(cmd.cdw11, true)?;
    let kelvin = u16::try_from(cmd.cdw11 & 0xffff).unwrap_or(u16::MAX);
    ctx.ctrl.update_features(|f| {
        if under {
            f.temperature_under_k = kelvin;
        } else {
            f.temperature_over_k = kelvin;
        }
    });
    Ok(0)
}

/// The namespace a namespace-specific feature command names (`None`: every namespace).
fn namespace_of(nsid: u32) -> Option<u32> {
    (nsid != 0 && nsid != 0xffff_ffff).then_some(nsid)
}

//~ NVM Command Set 1.0, Error Recovery (FID 05h): TLER (15:0, 100 ms units), DULBE (16),
//~ namespace specific.
pub fn get_error_recovery(ctx: &QueueCtx, cmd: &GetFeatures, which: Which) -> GetResult {
    Ok(Reply::Dw0(match which {
        Which::Current => ctx.ctrl.error_recovery(namespace_of(cmd.nsid)),
        Which::Default => 0,
    }))
}

pub fn set_error_recovery(ctx: &QueueCtx, cmd: &SetFeatures, _: &Bytes) -> SetResult {
    if cmd.cdw11 & (1 << 16) != 0 {
        return Err(StatusCode::INVALID_FIELD);
    }
    ctx.ctrl
        .set_error_recovery(namespace_of(cmd.nsid), cmd.cdw11 & 0xffff);
    Ok(0)
}

//~ NVMe Base 2.0, Volatile Write Cache (FID 06h): WCE (bit 0).
pub fn get_vwc(ctx: &QueueCtx, _: &GetFeatures, which: Which) -> GetResult {
    Ok(Reply::Dw0(u32::from(
        values(ctx, which).volatile_write_cache,
    )))
}

pub fn set_vwc(ctx: &QueueCtx, cmd: &SetFeatures, _: &Bytes) -> SetResult {
    ctx.ctrl
        .update_features(|f| f.volatile_write_cache = cmd.cdw11 & 1 != 0);
    Ok(0)
}

pub fn get_queues(ctx: &QueueCtx, _: &GetFeatures, which: Which) -> GetResult {
    let n = values(ctx, which).io_queues_granted.saturating_sub(1);
    Ok(Reply::Dw0(NumberOfQueues { nsq: n, ncq: n }.to_dword()))
}

/// Number of Queues: grants min(requested, allowed) I/O queues, once per controller reset and
/// only before any I/O queue exists.
pub fn set_queues(ctx: &QueueCtx, cmd: &SetFeatures, _: &Bytes) -> SetResult {
    let req = NumberOfQueues::from_dword(cmd.cdw11);
    if req.nsq == u16::MAX || req.ncq == u16::MAX {
        return Err(StatusCode::INVALID_FIELD);
    }
    if ctx.ctrl.io_queue_count() > 0 {
        return Err(StatusCode::COMMAND_SEQUENCE_ERROR);
    }
    let max = ctx.ctrl.max_io_queues();
    let granted = (req.nsq.max(req.ncq) + 1).min(max);
    ctx.ctrl.update_features(|f| {
        f.io_queues_granted = granted;
        f.io_queues_set = true;
    });
    let n = granted.saturating_sub(1);
    Ok(NumberOfQueues { nsq: n, ncq: n }.to_dword())
}

//~ NVM Command Set 1.0, Write Atomicity Normal (FID 0Ah): DN (bit 0).
pub fn get_atomicity(ctx: &QueueCtx, _: &GetFeatures, which: Which) -> GetResult {
    Ok(Reply::Dw0(values(ctx, which).write_atomicity))
}

pub fn set_atomicity(ctx: &QueueCtx, cmd: &SetFeatures, _: &Bytes) -> SetResult {
    ctx.ctrl
        .update_features(|f| f.write_atomicity = cmd.cdw11 & 1);
    Ok(0)
}

pub fn get_aec(ctx: &QueueCtx, _: &GetFeatures, which: Which) -> GetResult {
    Ok(Reply::Dw0(values(ctx, which).async_event_config))
}

/// Asynchronous Event Configuration: the notices this controller type sends are kept.
pub fn set_aec(ctx: &QueueCtx, cmd: &SetFeatures, _: &Bytes) -> SetResult {
    let supported = if ctx.ctrl.subsystem().kind() == SubsystemKind::Discovery {
        AsyncEventConfig::DISCOVERY_LOG_CHANGE
    } else {
        AsyncEventConfig::NS_ATTRIBUTE
    };
    ctx.ctrl
        .update_features(|f| f.async_event_config = cmd.cdw11 & supported);
    Ok(0)
}

/// The timestamp now: the host's value plus the time since it was set, or the time since the
/// epoch from this machine's clock (origin 0: not set by a host).
pub fn get_timestamp(ctx: &QueueCtx, _: &GetFeatures, which: Which) -> GetResult {
    let ts = match values(ctx, which).timestamp {
        Some((ms, at)) => Timestamp {
            millis: ms.saturating_add(u64::try_from(at.elapsed().as_millis()).unwrap_or(0)),
            synch: false,
            origin: 1,
        },
        None => Timestamp {
            millis: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0)),
            synch: false,
            origin: 0,
        },
    };
    let mut b = BytesMut::with_capacity(8);
    ts.encode(&mut b);
    Ok(Reply::Data(0, b.freeze()))
}

pub fn set_timestamp(ctx: &QueueCtx, _: &SetFeatures, data: &Bytes) -> SetResult {
    let ts = Timestamp::decode(data).map_err(|_| StatusCode::INVALID_FIELD)?;
    ctx.ctrl
        .update_features(|f| f.timestamp = Some((ts.millis, Instant::now())));
    Ok(0)
}

//~ NVMe Base 2.0, Keep Alive Timer (FID 0Fh): KATO (31:0, ms); its default is the KATO of
//~ the Connect command (NVMe over Fabrics).
pub fn get_kato(ctx: &QueueCtx, _: &GetFeatures, which: Which) -> GetResult {
    Ok(Reply::Dw0(match which {
        Which::Current => ctx.ctrl.kato_ms(),
        Which::Default => ctx.ctrl.kato_default_ms(),
    }))
}

/// Keep Alive Timer: raised to the target's minimum and rounded up to KAS, as SPDK does.
pub fn set_kato(ctx: &QueueCtx, cmd: &SetFeatures, _: &Bytes) -> SetResult {
    ctx.ctrl
        .set_kato_ms(ctx.plane.options().effective_kato(cmd.cdw11));
    Ok(0)
}

//~ NVMe Base 2.0, I/O Command Set Profile (FID 19h): IOCSCI (8:0), the index of an I/O
//~ Command Set combination in the I/O Command Set data structure (Identify CNS 1Ch); an
//~ index the controller does not support is I/O Command Set Combination Rejected.
pub fn get_iocs(ctx: &QueueCtx, _: &GetFeatures, which: Which) -> GetResult {
    Ok(Reply::Dw0(u32::from(values(ctx, which).iocs_profile)))
}

pub fn set_iocs(ctx: &QueueCtx, cmd: &SetFeatures, _: &Bytes) -> SetResult {
    let index = cmd.cdw11 & 0x1ff;
    let chosen = usize::try_from(index)
        .ok()
        .filter(|i| *i < IOCS_COMBINATIONS.len())
        .and_then(|i| u16::try_from(i).ok())
        .ok_or(StatusCode::IO_COMMAND_SET_COMBINATION_REJECTED)?;
    ctx.ctrl.update_features(|f| f.iocs_profile = chosen);
    Ok(0)
}

//~ NVMe Base 2.0, Host Identifier (FID 81h): over NVMe over Fabrics the 128-bit form only
//~ (EXHID set), fixed by Connect; Set Features is a Command Sequence Error (as nvmet answers).
pub fn get_host_id(ctx: &QueueCtx, cmd: &GetFeatures, _: Which) -> GetResult {
    if cmd.cdw11 & 1 == 0 {
        return Err(StatusCode::HOST_ID_INCONSISTENT_FORMAT);
    }
    let mut b = BytesMut::with_capacity(16);
    HostIdentifier::Extended(ctx.ctrl.host().hostid).encode(&mut b);
    Ok(Reply::Data(0, b.freeze()))
}

pub fn set_host_id(_: &QueueCtx, _: &SetFeatures, _: &Bytes) -> SetResult {
    Err(StatusCode::COMMAND_SEQUENCE_ERROR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperature_selections() {
        assert_eq!(threshold_selection(0x0000_0150, false), Ok(false));
        assert_eq!(threshold_selection(0x0010_0150, false), Ok(true));
        assert_eq!(threshold_selection(0x000f_0150, true), Ok(false));
        for bad in [0x000f_0000, 0x0001_0000, 0x0020_0000] {
            assert_eq!(
                threshold_selection(bad, false),
                Err(StatusCode::INVALID_FIELD)
            );
        }
    }
}
