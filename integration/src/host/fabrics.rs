//! Fabrics commands (Connect, Property Get/Set, Disconnect) and [`connect_queue`], which opens
//! one connection and runs its Connect.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use lamina_protocol::fabrics::{
    ConnectCommand, ConnectData, ConnectSuccess, Disconnect, Property, PropertyGet, PropertySet,
    PropertySize,
};

use crate::host::core::{Command, QueueParams, Transfer};
use crate::host::error::HostError;
use crate::host::options::ConnectOptions;
use crate::host::owned::OwnedQueue;
use crate::host::transport::{self, IcParams};

/// In-capsule data size of the admin queue (NVMe-oF 1.1 §7.4.3; Linux NVME_TCP_ADMIN_CCSZ).
pub const ADMIN_IN_CAPSULE_BYTES: u32 = 8192;

/// What one queue's Connect says.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueSetup<'a> {
    pub(crate) qid: u16,
    pub(crate) queue_size: u16,
    /// FFFFh on the admin queue (dynamic controller model), the CNTLID on I/O queues.
    pub(crate) cntlid: u16,
    pub(crate) in_capsule_max: u32,
    pub(crate) max_transfer: u32,
    pub(crate) opts: &'a ConnectOptions,
}

/// The Connect command of a queue: SQSIZE is 0's based, KATO only on the admin queue, the
/// 1024 bytes of Connect data sent in the capsule when they fit (always on the admin queue).
pub(crate) fn connect_command(setup: &QueueSetup<'_>) -> Command {
    let opts = setup.opts;
    let cattr = if opts.disable_sq_flow_control {
        ConnectCommand::CATTR_DISABLE_SQ_FLOW_CONTROL
    } else {
        0
    };
    let sqe = ConnectCommand {
        cid: 0,
        recfmt: 0,
        qid: setup.qid,
        sqsize: setup.queue_size.saturating_sub(1),
        cattr,
        kato_ms: if setup.qid == 0 { opts.kato_ms } else { 0 },
        dptr: lamina_protocol::nvme::SglDescriptor::default(),
    }
    .to_sqe();
    let data = ConnectData {
        hostid: opts.hostid,
        cntlid: setup.cntlid,
        subnqn: opts.subnqn.clone(),
        hostnqn: opts.hostnqn.clone(),
    };
    let mut buf = BytesMut::with_capacity(data.encoded_len());
    data.encode(&mut buf);
    Command::with_transfer(sqe, Transfer::ToController(buf.freeze()))
}

/// Opens a connection to `addr`, runs the IC exchange and the Connect of `setup`'s queue.
pub(crate) async fn connect_queue(
    addr: SocketAddr,
    setup: &QueueSetup<'_>,
) -> Result<(OwnedQueue, ConnectSuccess), HostError> {
    let opts = setup.opts;
    let conn = transport::establish(
        addr,
        IcParams {
            digests: opts.digests(),
            hpda: opts.hpda,
            max_c2h_data: setup.max_transfer,
            timeout: opts.connect_timeout,
            tls: opts.tls.clone(),
        },
    )
    .await?;
    let params = QueueParams {
        qid: setup.qid,
        queue_size: setup.queue_size,
        tx: conn.negotiated.tx_params(),
        maxh2cdata: conn.negotiated.maxh2cdata,
        in_capsule_max: setup.in_capsule_max,
        max_transfer: setup.max_transfer,
        sq_flow_control_disabled: opts.disable_sq_flow_control,
    };
    let mut queue = OwnedQueue::new(conn, params, addr);
    let done = queue
        .execute(connect_command(setup), opts.command_timeout)
        .await?
        .into_result()?;
    let success = ConnectSuccess::from_cqe(&done.cqe);
    //~ NVMe Base 2.x, Connect response AUTHREQ: ATR asks for in-band authentication
    //~ (DH-HMAC-CHAP) before any other command; ASCR (secure channel concatenation) is not
    //~ implemented here.
    if success.authreq != 0 {
        match &opts.dhchap {
            Some(cfg) if success.authreq == ConnectSuccess::AUTHREQ_ATR => {
                crate::host::auth::authenticate(
                    &mut queue,
                    cfg,
                    opts.hostnqn.as_str(),
                    opts.subnqn.as_str(),
                    opts.command_timeout,
                )
                .await?;
            }
            _ => {
                return Err(HostError::InvalidRequest(format!(
                    "controller requires authentication (AUTHREQ {:#x}) this host was not \
                     given keys for",
                    success.authreq
                )));
            }
        }
    }
    Ok((queue, success))
}

/// Property Get of `property` (8 bytes for CAP, 4 for the others).
pub fn property_get(property: Property) -> Command {
    let size = property.size().unwrap_or(PropertySize::Four);
    Command::new(
        PropertyGet {
            cid: 0,
            size,
            offset: property,
        }
        .to_sqe(),
    )
}

/// Property Set of `property` to `value`.
pub fn property_set(property: Property, value: u64) -> Command {
    let size = property.size().unwrap_or(PropertySize::Four);
    Command::new(
        PropertySet {
            cid: 0,
            size,
            offset: property,
            value,
        }
        .to_sqe(),
    )
}

/// Fabrics Disconnect (of the queue it is sent on).
pub fn disconnect() -> Command {
    Command::new(Disconnect { cid: 0, recfmt: 0 }.to_sqe())
}

/// Sleeps between polls of a register: starts short (controllers usually answer within
/// milliseconds) and backs off to 50 ms.
pub(crate) fn poll_delay(attempt: u32) -> Duration {
    Duration::from_millis((1u64 << attempt.min(6)).min(50))
}
