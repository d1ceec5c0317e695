//! [`Controller`]: one NVMe-oF controller seen from the host, brought up the way the Linux
//! host does it (`nvme_tcp_setup_ctrl`, `nvme_enable_ctrl`, `nvme_init_ctrl_finish`):
//!
//! 1. admin connection: ICReq/ICResp, Fabrics Connect (QID 0, CNTLID FFFFh) → CNTLID;
//! 2. Property Get CAP and VS; Property Set CC (EN, CSS, MPS 4 KiB, IOSQES 6, IOCQES 4);
//!    poll CSTS until RDY (CAP.TO bounds the wait), failing on CFS;
//! 3. Identify Controller, checked: CNTLID equal to Connect's, IOCCSZ ≥ 4, IORCSZ ≥ 1, ICDOFF 0,
//!    SGLs supported, MAXCMD non-zero;
//! 4. Set Features Number of Queues, then one connection per I/O queue with its own Connect;
//! 5. a Keep Alive every KATO/2 in the background.

use std::net::SocketAddr;
use std::time::Instant;

use lamina_protocol::fabrics::{Cap, Cc, Csts, Property, ShutdownStatus, Vs};
use lamina_protocol::nvme::Nqn;
use lamina_protocol::nvme::features::{FeatureId, NumberOfQueues};
use lamina_protocol::nvme::identify::IdentifyController;

use crate::host::error::{HostError, Violation};
use crate::host::fabrics::{
    ADMIN_IN_CAPSULE_BYTES, QueueSetup, connect_queue, poll_delay, property_get, property_set,
};
use crate::host::keepalive::KeepAlive;
use crate::host::options::ConnectOptions;
use crate::host::owned::OwnedQueue;
use crate::host::queue::Queue;

/// A connected, enabled controller with its admin queue and I/O queues.
#[derive(Debug)]
pub struct Controller {
    addr: SocketAddr,
    opts: ConnectOptions,
    cntlid: u16,
    cap: Cap,
    vs: Vs,
    identity: IdentifyController,
    admin: Queue,
    io: Vec<Queue>,
    io_queue_size: u16,
    max_transfer: u32,
    keep_alive: Option<KeepAlive>,
}

impl Controller {
    /// Connects to the subsystem `opts.subnqn` at `addr` and brings the controller up.
    pub async fn connect(addr: SocketAddr, opts: ConnectOptions) -> Result<Self, HostError> {
        opts.validate()?;
        let setup = QueueSetup {
            qid: 0,
            queue_size: opts.admin_queue_size,
            cntlid: lamina_protocol::fabrics::ConnectData::DYNAMIC_CNTLID,
            in_capsule_max: ADMIN_IN_CAPSULE_BYTES,
            max_transfer: opts.max_transfer_bytes,
            opts: &opts,
        };
        let (owned, success) = connect_queue(addr, &setup).await?;
        let admin = Queue::spawn(owned, opts.command_timeout);
        let cap = Cap(get_property(&admin, Property::CAP).await?);
        let vs =
            Vs(u32::try_from(get_property(&admin, Property::VS).await? & 0xffff_ffff).unwrap_or(0));
        enable(&admin, cap).await?;
        let identity = identify_controller(&admin).await?;
        check_identity(&identity, success.cntlid)?;
        let mut ctrl = Self {
            addr,
            cntlid: success.cntlid,
            cap,
            vs,
            max_transfer: max_transfer(&opts, &identity),
            io_queue_size: io_queue_size(&opts, cap, &identity),
            identity,
            admin,
            io: Vec::new(),
            keep_alive: None,
            opts,
        };
        let wanted = if ctrl.is_discovery() {
            0
        } else {
            ctrl.opts.io_queues
        };
        if wanted > 0 {
            let granted = ctrl.set_queue_count(wanted).await?;
            for qid in 1..=granted {
                let q = ctrl.connect_io_queue(qid, ctrl.io_queue_size).await?;
                ctrl.io.push(q);
            }
        }
        if ctrl.opts.kato_ms > 0 && ctrl.opts.keep_alive {
            ctrl.keep_alive = Some(KeepAlive::start(ctrl.admin.clone(), ctrl.opts.kato_ms));
        }
        Ok(ctrl)
    }

    /// Whether this is a discovery controller (SUBNQN is the well-known discovery NQN).
    pub fn is_discovery(&self) -> bool {
        self.opts.subnqn.is_discovery()
    }

    /// The address connected to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The options it was connected with.
    pub fn options(&self) -> &ConnectOptions {
        &self.opts
    }

    /// The subsystem NQN.
    pub fn subnqn(&self) -> &Nqn {
        &self.opts.subnqn
    }

    /// Controller ID allocated by the admin Connect.
    pub fn cntlid(&self) -> u16 {
        self.cntlid
    }

    /// Controller Capabilities.
    pub fn cap(&self) -> Cap {
        self.cap
    }

    /// Version property.
    pub fn vs(&self) -> Vs {
        self.vs
    }

    /// The Identify Controller data read during bring-up.
    pub fn identity(&self) -> &IdentifyController {
        &self.identity
    }

    /// Largest data transfer of one command on the I/O queues (options and MDTS).
    pub fn max_transfer(&self) -> u32 {
        self.max_transfer
    }

    /// Queue size used for I/O queues.
    pub fn io_queue_size(&self) -> u16 {
        self.io_queue_size
    }

    /// The admin queue.
    pub fn admin(&self) -> &Queue {
        &self.admin
    }

    /// The I/O queues, QID 1 first.
    pub fn io_queues(&self) -> &[Queue] {
        &self.io
    }

    /// I/O queue number `index` (QID `index + 1`).
    pub fn io_queue(&self, index: usize) -> Result<&Queue, HostError> {
        self.io.get(index).ok_or_else(|| {
            HostError::InvalidRequest(format!(
                "no I/O queue {index}: the controller has {}",
                self.io.len()
            ))
        })
    }

    /// Opens one more I/O queue connection (QID `qid`, `queue_size` entries) and runs its
    /// Connect; the caller keeps the queue (it is not added to [`Controller::io_queues`]).
    pub async fn connect_io_queue(&self, qid: u16, queue_size: u16) -> Result<Queue, HostError> {
        let owned = self.connect_owned_io_queue(qid, queue_size).await?;
        Ok(Queue::spawn(owned, self.opts.command_timeout))
    }

    /// Like [`Controller::connect_io_queue`], but the caller drives the connection itself
    /// (`lamina-perf` does, with no lock and no task switch per command).
    pub async fn connect_owned_io_queue(
        &self,
        qid: u16,
        queue_size: u16,
    ) -> Result<OwnedQueue, HostError> {
        self.io_connector().connect(qid, queue_size).await
    }

    /// What it takes to open I/O queues of this controller from anywhere, including another
    /// thread's runtime (a queue's socket belongs to the runtime that opens it).
    pub fn io_connector(&self) -> IoConnector {
        IoConnector {
            addr: self.addr,
            opts: self.opts.clone(),
            cntlid: self.cntlid,
            in_capsule_max: (self.identity.ioccsz.saturating_mul(16)).saturating_sub(64),
            max_transfer: self.max_transfer,
        }
    }

    /// Set Features Number of Queues for `wanted` I/O queues; returns how many the controller
    /// granted (at most `wanted`). [`Controller::connect`] does this for `opts.io_queues`.
    pub async fn request_io_queues(&self, wanted: u16) -> Result<u16, HostError> {
        self.set_queue_count(wanted).await
    }

    async fn set_queue_count(&self, wanted: u16) -> Result<u16, HostError> {
        let n = wanted.saturating_sub(1);
        let dw0 = self
            .set_features(
                FeatureId::NUMBER_OF_QUEUES,
                NumberOfQueues { nsq: n, ncq: n }.to_dword(),
                false,
            )
            .await?;
        let granted = NumberOfQueues::from_dword(dw0);
        Ok(wanted
            .min(granted.nsq.saturating_add(1))
            .min(granted.ncq.saturating_add(1)))
    }

    /// Stops the background Keep Alive (to let KATO expire) or restarts it.
    pub fn set_keep_alive(&self, enabled: bool) {
        if let Some(k) = &self.keep_alive {
            k.set_enabled(enabled);
        }
    }

    /// Keep Alive commands sent by the background task so far.
    pub fn keep_alives_sent(&self) -> u64 {
        self.keep_alive.as_ref().map_or(0, KeepAlive::sent)
    }

    /// Normal shutdown, as `nvme disconnect` does it: CC.SHN = 01b, then CSTS.SHST polled until
    /// complete (bounded by RTD3E, at least 5 s), then every connection closed.
    pub async fn shutdown(self) -> Result<(), HostError> {
        if let Some(k) = &self.keep_alive {
            k.set_enabled(false);
        }
        let result = shutdown_controller(&self.admin, &self.identity).await;
        self.close();
        result
    }

    /// Closes every connection at once, without telling the controller.
    pub fn close(&self) {
        for q in &self.io {
            q.close();
        }
        self.admin.close();
    }
}

/// Opens I/O queue connections of one controller (see [`Controller::io_connector`]).
#[derive(Debug, Clone)]
pub struct IoConnector {
    addr: SocketAddr,
    opts: ConnectOptions,
    cntlid: u16,
    in_capsule_max: u32,
    max_transfer: u32,
}

impl IoConnector {
    /// Connects I/O queue `qid` with `queue_size` entries (clamp it to
    /// [`Controller::io_queue_size`] first) and runs its Connect.
    pub async fn connect(&self, qid: u16, queue_size: u16) -> Result<OwnedQueue, HostError> {
        let setup = QueueSetup {
            qid,
            queue_size,
            cntlid: self.cntlid,
            in_capsule_max: self.in_capsule_max,
            max_transfer: self.max_transfer,
            opts: &self.opts,
        };
        Ok(connect_queue(self.addr, &setup).await?.0)
    }

    /// Largest data transfer of one command.
    pub fn max_transfer(&self) -> u32 {
        self.max_transfer
    }
}

async fn get_property(admin: &Queue, property: Property) -> Result<u64, HostError> {
    let done = admin.execute(property_get(property)).await?.into_result()?;
    Ok(done.cqe.result_u64())
}

//~ NVMe Base 2.0 §3.5.1 (controller initialization) and Linux nvme_enable_ctrl(): CC.CSS
//~ selects "I/O command sets" when CAP.CSS bit 6 is set, NVM otherwise; MPS 0 (4 KiB pages)
//~ must be within CAP.MPSMIN; CSTS.RDY within CAP.TO (500 ms units).
async fn enable(admin: &Queue, cap: Cap) -> Result<(), HostError> {
    if cap.mpsmin() > 0 {
        return Err(HostError::InvalidRequest(format!(
            "CAP.MPSMIN {} needs pages larger than 4 KiB",
            cap.mpsmin()
        )));
    }
    let css = if cap.css() & Cap::CSS_IO_COMMAND_SETS != 0 {
        6
    } else {
        0
    };
    let cc = Cc::enable(css, 0);
    admin
        .execute(property_set(Property::CC, u64::from(cc.0)))
        .await?
        .into_result()?;
    let limit = std::time::Duration::from_millis(500 * (u64::from(cap.timeout()) + 1));
    wait_csts(admin, limit, "CSTS.RDY", Csts::ready).await
}

async fn wait_csts(
    admin: &Queue,
    limit: std::time::Duration,
    op: &'static str,
    done: impl Fn(Csts) -> bool,
) -> Result<(), HostError> {
    let start = Instant::now();
    for attempt in 0.. {
        let csts = Csts(
            u32::try_from(get_property(admin, Property::CSTS).await? & 0xffff_ffff).unwrap_or(0),
        );
        if csts.fatal() {
            return Err(HostError::Protocol(Violation::ControllerState(format!(
                "CSTS.CFS set while waiting for {op}"
            ))));
        }
        if done(csts) {
            return Ok(());
        }
        if start.elapsed() >= limit {
            break;
        }
        tokio::time::sleep(poll_delay(attempt)).await;
    }
    Err(HostError::Timeout { op, after: limit })
}

async fn identify_controller(admin: &Queue) -> Result<IdentifyController, HostError> {
    let cmd =
        crate::host::core::identify_command(lamina_protocol::nvme::identify::Cns::CONTROLLER, 0, 0);
    let mut done = admin.execute(cmd).await?.into_result()?;
    IdentifyController::decode(&done.take_data())
        .map_err(|e| HostError::Protocol(Violation::Identify(format!("cannot decode: {e}"))))
}

//~ Linux nvme_init_identify()/nvme_tcp_setup_ctrl() for fabrics controllers: CNTLID must equal
//~ the one Connect returned, MAXCMD must not be 0, ICDOFF must be 0 and SGLs supported; the
//~ NVMe-oF minimums are IOCCSZ 4 (the 64-byte SQE) and IORCSZ 1 (the 16-byte CQE).
fn check_identity(id: &IdentifyController, cntlid: u16) -> Result<(), HostError> {
    let fail = |why: String| Err(HostError::Protocol(Violation::Identify(why)));
    if id.cntlid != cntlid {
        return fail(format!(
            "CNTLID {:#x}, Connect returned {cntlid:#x}",
            id.cntlid
        ));
    }
    if id.maxcmd == 0 {
        return fail("MAXCMD is 0".into());
    }
    if id.icdoff != 0 {
        return fail(format!("ICDOFF {} (only 0 is supported)", id.icdoff));
    }
    // SGLS bits 1:0: SGL support (Linux nvme_ctrl_sgl_supported()).
    const SGL_SUPPORT: u32 = 0b11;
    if id.sgls & SGL_SUPPORT == 0 {
        return fail(format!("SGLS {:#x}: SGLs not supported", id.sgls));
    }
    if id.ioccsz < 4 {
        return fail(format!("IOCCSZ {} below 4", id.ioccsz));
    }
    if id.iorcsz < 1 {
        return fail("IORCSZ is 0".into());
    }
    Ok(())
}

/// MDTS is a power of two of the minimum page size (4 KiB here); 0 means no limit.
fn max_transfer(opts: &ConnectOptions, id: &IdentifyController) -> u32 {
    let mdts_limit = match id.mdts {
        0 => u64::MAX,
        m => 4096u64 << m.min(40),
    };
    u32::try_from(u64::from(opts.max_transfer_bytes).min(mdts_limit)).unwrap_or(u32::MAX)
}

/// The asked I/O queue size, within CAP.MQES + 1 and MAXCMD (Linux clamps the same way).
fn io_queue_size(opts: &ConnectOptions, cap: Cap, id: &IdentifyController) -> u16 {
    opts.io_queue_size
        .min(cap.mqes().saturating_add(1))
        .min(id.maxcmd.max(2))
        .max(2)
}

async fn shutdown_controller(admin: &Queue, id: &IdentifyController) -> Result<(), HostError> {
    let cc = get_property(admin, Property::CC).await?;
    // SHN = 01b (normal), EN kept.
    let value = (cc & !(0b11 << 14)) | (0b01 << 14);
    admin
        .execute(property_set(Property::CC, value))
        .await?
        .into_result()?;
    let rtd3e = std::time::Duration::from_micros(u64::from(id.rtd3e));
    let limit = rtd3e.max(std::time::Duration::from_secs(5));
    wait_csts(admin, limit, "CSTS.SHST", |c| {
        c.shst() == ShutdownStatus::Complete
    })
    .await
}
