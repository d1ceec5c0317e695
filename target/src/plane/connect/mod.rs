//! The Fabrics Connect command: an admin Connect creates a controller, an I/O Connect joins
//! one. Every refusal carries the status NVMe-oF gives it, with the offset of the bad field.
//!
//! Checks, in order: record format 0; SQSIZE within 1..=MQES (0's based); for admin queues the
//! dynamic CNTLID FFFFh; the SUBNQN exists and listens on the address the host connected to; the
//! host NQN is allowed; for I/O queues the CNTLID names a live controller of the same subsystem
//! and host, the QID is within the granted queues, not connected yet, and the controller is
//! enabled.

use std::net::SocketAddr;
use std::sync::Arc;

use lamina_lvol::drain::DrainGuard;
use lamina_protocol::fabrics::{
    ConnectCommand, ConnectData, ConnectInvalidParameter, ConnectSuccess, connect_data_offsets,
};
use lamina_protocol::nvme::{Cqe, Status, StatusCode};
use tokio_util::sync::CancellationToken;

mod supervisor;

use crate::options::TransportOptions;
use crate::plane::DataPlane;
use crate::plane::controller::{
    Controller, HostIdentity, IoQueueRefusal, NewController, OobReceiver,
};
use supervisor::supervise;

/// KATO of a discovery controller whose Connect asked for none (nvmet's NVMET_DISC_KATO_MS).
pub const DISCOVERY_DEFAULT_KATO_MS: u32 = 120_000;

/// The queue a successful Connect set up.
#[derive(Debug)]
pub enum Joined {
    /// An admin queue with its new controller.
    Admin {
        /// The controller.
        ctrl: Arc<Controller>,
        /// Its out-of-band completions, for the admin queue to send.
        oob: OobReceiver,
        /// The queue's place among the controller's queues (see [`Controller::enter_queue`]).
        hold: DrainGuard,
    },
    /// An I/O queue of an existing controller.
    Io {
        /// The controller.
        ctrl: Arc<Controller>,
        /// The queue ID.
        qid: u16,
        /// The registration to remove when the queue closes.
        registration: u64,
        /// Cancelled when the queue must close (reset, teardown).
        token: CancellationToken,
        /// The queue's place among the controller's queues (see [`Controller::enter_queue`]).
        hold: DrainGuard,
    },
}

impl Joined {
    /// The controller.
    pub fn controller(&self) -> &Arc<Controller> {
        match self {
            Self::Admin { ctrl, .. } | Self::Io { ctrl, .. } => ctrl,
        }
    }
}

/// Where the Connect arrived.
#[derive(Debug, Clone)]
pub struct ConnectSite {
    /// Our address on the connection.
    pub local: SocketAddr,
    /// The host's address.
    pub peer: SocketAddr,
    /// On a secure channel: who the TLS handshake proved the host to be.
    pub tls: Option<Arc<crate::plane::tls::TlsPeer>>,
}

/// A refused Connect: the completion to send.
fn refuse(cid: u16, code: StatusCode, param: Option<ConnectInvalidParameter>) -> Cqe {
    let mut cqe = Cqe::new(cid, Status::dnr(code));
    if let Some(p) = param {
        cqe.dw0 = p.dw0();
    }
    cqe
}

/// Connect Controller Busy: a condition that passes (no CNTLID free, the target shutting
/// down or restarting, an old controller of this host still going away), so never with DNR:
/// Linux from 6.10 takes a DNR refusal as final and stops reconnecting.
fn busy(cid: u16) -> Cqe {
    Cqe::new(cid, Status::new(StatusCode::CONNECT_CONTROLLER_BUSY))
}

fn invalid(cid: u16, param: ConnectInvalidParameter) -> Cqe {
    refuse(cid, StatusCode::CONNECT_INVALID_PARAMETERS, Some(param))
}

/// Invalid Parameters without DNR, for a parameter that named something which went away:
/// the host starts a new association and gets in (SPDK answers so), where a DNR refusal would
/// end its reconnecting for good (Linux from 6.10).
fn invalid_retryable(cid: u16, param: ConnectInvalidParameter) -> Cqe {
    let mut cqe = Cqe::new(cid, Status::new(StatusCode::CONNECT_INVALID_PARAMETERS));
    cqe.dw0 = param.dw0();
    cqe
}

fn offset(o: usize) -> u16 {
    u16::try_from(o).unwrap_or(u16::MAX)
}

/// Handles a Connect; `Ok` with the queue it set up and the success completion.
pub fn connect(
    target: &Arc<DataPlane>,
    cmd: &ConnectCommand,
    data: &ConnectData,
    site: &ConnectSite,
) -> Result<(Joined, Cqe), Cqe> {
    let cid = cmd.cid;
    let opts = target.options();
    if cmd.recfmt != 0 {
        return Err(refuse(cid, StatusCode::CONNECT_INCOMPATIBLE_FORMAT, None));
    }
    check_sqsize(cmd, &opts)?;
    let subsystem = target
        .subsystems
        .get(data.subnqn.as_str())
        .filter(|s| {
            s.kind() == crate::plane::subsystem::SubsystemKind::Discovery
                || s.listens_on(site.local)
        })
        .ok_or_else(|| {
            invalid(
                cid,
                ConnectInvalidParameter::data(offset(connect_data_offsets::SUBNQN)),
            )
        })?;
    // On a secure channel the Connect must be the host and subsystem the PSK identity named:
    // one host's PSK does not open another host's (or subsystem's) controllers.
    if let Some(tls) = &site.tls
        && (tls.hostnqn != data.hostnqn.as_str() || tls.subnqn != data.subnqn.as_str())
    {
        tracing::warn!(identity_hostnqn = %tls.hostnqn, identity_subnqn = %tls.subnqn,
            hostnqn = %data.hostnqn, subnqn = %data.subnqn,
            "Connect refused: not the host and subsystem of the TLS PSK identity");
        return Err(refuse(cid, StatusCode::CONNECT_INVALID_HOST, None));
    }
    // An empty HOSTNQN (SPDK's spdk_nvme_perf by default) passes only where any host may.
    if !subsystem.host_allowed(data.hostnqn.as_str()) {
        return Err(refuse(cid, StatusCode::CONNECT_INVALID_HOST, None));
    }
    if data.hostnqn.is_empty() {
        tracing::info!(qid = cmd.qid, subnqn = %data.subnqn,
            "Connect with an empty host NQN: accepted, the subsystem allows any host");
    }
    // A host with a DH-HMAC-CHAP key authenticates on every queue (SPDK asks on each; the
    // Linux host authenticates each queue whose Connect response asks).
    let authreq = if subsystem
        .host_keys(data.hostnqn.as_str())
        .is_some_and(|k| k.dhchap.is_some())
    {
        ConnectSuccess::AUTHREQ_ATR
    } else {
        0
    };
    if cmd.is_admin() {
        if data.cntlid != ConnectData::DYNAMIC_CNTLID {
            return Err(invalid(
                cid,
                ConnectInvalidParameter::data(offset(connect_data_offsets::CNTLID)),
            ));
        }
        let host = HostIdentity {
            hostnqn: data.hostnqn.as_str().to_owned(),
            hostid: data.hostid,
            peer: site.peer,
            local: site.local,
        };
        let is_discovery = subsystem.kind() == crate::plane::subsystem::SubsystemKind::Discovery;
        if !is_discovery {
            fence(target, &subsystem, &host, cid)?;
        }
        let registered = target.controllers.register(subsystem.cntlids(), |cntlid| {
            Controller::new(NewController {
                cntlid,
                subsystem: subsystem.clone(),
                host,
                // A discovery controller connected with KATO 0 still expires, after two
                // minutes, as nvmet and SPDK do: otherwise an idle one is held for ever.
                kato_ms: if is_discovery && cmd.kato_ms == 0 {
                    DISCOVERY_DEFAULT_KATO_MS
                } else {
                    opts.effective_kato(cmd.kato_ms)
                },
                sq_flow_control_disabled: cmd.cattr & ConnectCommand::CATTR_DISABLE_SQ_FLOW_CONTROL
                    != 0,
                max_io_queues: if is_discovery {
                    0
                } else {
                    opts.max_io_qpairs_per_ctrlr
                },
                parent: target.cancel.clone(),
            })
        });
        let Some((ctrl, oob)) = registered else {
            return Err(busy(cid));
        };
        let Some(hold) = ctrl.enter_queue() else {
            // Torn down already (the target is shutting down): no queue joins it.
            return Err(busy(cid));
        };
        ctrl.set_admin_queue_size(cmd.sqsize.saturating_add(1));
        ctrl.touch();
        target
            .tracker
            .spawn(supervise(ctrl.clone(), target.clone()));
        let mut cqe = Cqe::new(cid, Status::SUCCESS);
        cqe.dw0 = ConnectSuccess {
            cntlid: ctrl.cntlid(),
            authreq,
        }
        .dw0();
        return Ok((Joined::Admin { ctrl, oob, hold }, cqe));
    }
    let ctrl = target
        .controllers
        .get(data.cntlid)
        .filter(|c| {
            !c.is_torn_down()
                && Arc::ptr_eq(c.subsystem(), &subsystem)
                && c.host().hostnqn == data.hostnqn.as_str()
        })
        .ok_or_else(|| {
            // No live controller of this host behind the CNTLID: it went away (a restart, a
            // teardown, a reset) between the host's admin Connect and this one.
            invalid_retryable(
                cid,
                ConnectInvalidParameter::data(offset(connect_data_offsets::CNTLID)),
            )
        })?;
    let (registration, token) = ctrl.add_io_queue(cmd.qid).map_err(|r| match r {
        IoQueueRefusal::OutOfRange { .. } => invalid(
            cid,
            ConnectInvalidParameter::sqe(ConnectCommand::QID_OFFSET),
        ),
        IoQueueRefusal::Exists | IoQueueRefusal::NotReady => {
            refuse(cid, StatusCode::COMMAND_SEQUENCE_ERROR, None)
        }
    })?;
    let Some(hold) = ctrl.enter_queue() else {
        ctrl.remove_io_queue(cmd.qid, registration);
        return Err(refuse(cid, StatusCode::COMMAND_SEQUENCE_ERROR, None));
    };
    ctrl.touch();
    let mut cqe = Cqe::new(cid, Status::SUCCESS);
    cqe.dw0 = ConnectSuccess {
        cntlid: ctrl.cntlid(),
        authreq,
    }
    .dw0();
    Ok((
        Joined::Io {
            ctrl,
            qid: cmd.qid,
            registration,
            token,
            hold,
        },
        cqe,
    ))
}

/// The reconnect fence (`dup_host_policy` restrict_per_listener, see
/// [`crate::plane::subsystem::settings::DupHostPolicy`]): refuses a new controller while one of the
/// same host, subsystem and listener is live, or torn down with queues still finishing their
/// commands. Controller Busy without Do Not Retry: the host tries
/// again, and gets in once the old controller is gone.
fn fence(
    target: &DataPlane,
    subsystem: &Arc<crate::plane::subsystem::Subsystem>,
    host: &HostIdentity,
    cid: u16,
) -> Result<(), Cqe> {
    use crate::plane::subsystem::settings::DupHostPolicy;
    if host.hostid == [0; 16]
        || target.subsystems.settings.dup_host_policy() == DupHostPolicy::Allow
    {
        return Ok(());
    }
    let Some(old) = target
        .controllers
        .of_subsystem(subsystem.nqn())
        .into_iter()
        .find(|c| {
            c.host().hostid == host.hostid
                && c.host().local == host.local
                // Torn down with every queue finished: nothing of it can still write, and it
                // is being removed (a disconnect followed at once by a connect gets in).
                && !(c.is_torn_down() && c.queues_running() == 0)
        })
    else {
        return Ok(());
    };
    tracing::warn!(
        cntlid = old.cntlid(),
        hostnqn = %host.hostnqn,
        torn_down = old.is_torn_down(),
        queues_running = old.queues_running(),
        "connect refused (retry later): this host ID still has a controller on this listener \
         (dup_host_policy restrict_per_listener)"
    );
    Err(busy(cid))
}

/// SQSIZE is 0's based: at least 1 (two entries), at most what the queue type allows.
fn check_sqsize(cmd: &ConnectCommand, opts: &TransportOptions) -> Result<(), Cqe> {
    let max = if cmd.is_admin() {
        opts.max_aq_depth
    } else {
        opts.max_queue_depth
    };
    if cmd.sqsize == 0 || u32::from(cmd.sqsize) + 1 > u32::from(max) {
        return Err(invalid(
            cmd.cid,
            ConnectInvalidParameter::sqe(ConnectCommand::SQSIZE_OFFSET),
        ));
    }
    Ok(())
}
