//! NVMe-oF methods, as SPDK names and shapes them (`nvmf_*`): the transport, subsystems, their
//! listeners, hosts and namespaces, and the controllers and queue pairs connected to them.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use lamina_lvol::OpenMode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::dispatch::{Methods, Params, RpcResult};
use super::error::RpcError;
use crate::bdev::Claim;
use crate::context::Target;
use crate::options::TransportOptions;
use crate::subsystem::{
    Backend, DISCOVERY_NQN, Namespace, Subsystem, SubsystemConfig, SubsystemKind,
};

/// Registers the methods.
pub fn register(m: &mut Methods, t: &Arc<Target>) {
    super::reg(m, t, "nvmf_create_transport", create_transport);
    super::reg(m, t, "nvmf_get_transports", get_transports);
    super::reg(m, t, "nvmf_create_subsystem", create_subsystem);
    super::reg(m, t, "nvmf_delete_subsystem", delete_subsystem);
    super::reg(m, t, "nvmf_get_subsystems", get_subsystems);
    super::reg(m, t, "nvmf_subsystem_add_listener", add_listener);
    super::reg(m, t, "nvmf_subsystem_remove_listener", remove_listener);
    super::reg(m, t, "nvmf_subsystem_get_listeners", get_listeners);
    super::reg(m, t, "nvmf_subsystem_add_ns", add_ns);
    super::reg(m, t, "nvmf_subsystem_remove_ns", remove_ns);
    super::reg(m, t, "nvmf_subsystem_add_host", add_host);
    super::reg(m, t, "nvmf_subsystem_remove_host", remove_host);
    super::reg(m, t, "nvmf_subsystem_allow_any_host", allow_any_host);
    super::reg(m, t, "nvmf_subsystem_get_controllers", get_controllers);
    super::reg(m, t, "nvmf_subsystem_get_qpairs", get_qpairs);
    super::reg(m, t, "nvmf_get_stats", get_stats);
}

/// SPDK's transport options; the ones Lamina has no use for are accepted and ignored, so a
/// configuration saved by SPDK loads.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTransport {
    trtype: String,
    #[serde(default)]
    tgt_name: Option<String>,
    #[serde(default)]
    max_queue_depth: Option<u16>,
    #[serde(default)]
    max_io_qpairs_per_ctrlr: Option<u16>,
    #[serde(default)]
    max_qpairs_per_ctrlr: Option<u16>,
    #[serde(default)]
    in_capsule_data_size: Option<u32>,
    #[serde(default)]
    max_io_size: Option<u32>,
    #[serde(default)]
    io_unit_size: Option<u32>,
    #[serde(default)]
    max_aq_depth: Option<u16>,
    #[serde(default)]
    c2h_success: Option<bool>,
    #[serde(flatten)]
    ignored: IgnoredTransportOptions,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // accepted for SPDK compatibility, not used
struct IgnoredTransportOptions {
    num_shared_buffers: Option<u32>,
    buf_cache_size: Option<u32>,
    dif_insert_or_strip: Option<bool>,
    sock_priority: Option<u32>,
    abort_timeout_sec: Option<u32>,
    acceptor_poll_rate: Option<u32>,
    zcopy: Option<bool>,
    control_msg_num: Option<u32>,
    ack_timeout: Option<u32>,
    data_wr_pool_size: Option<u32>,
    disable_command_passthru: Option<bool>,
}

async fn create_transport(t: Arc<Target>, p: Params) -> RpcResult {
    let p: CreateTransport = p.parse()?;
    let _ = (p.tgt_name, p.ignored.num_shared_buffers);
    if !p.trtype.eq_ignore_ascii_case("tcp") {
        return Err(RpcError::invalid(format!(
            "transport type '{}' is not supported: Lamina serves TCP",
            p.trtype
        )));
    }
    if t.transport_created.load(Ordering::Acquire) {
        return Err(RpcError::exists("Transport type 'TCP' already exists"));
    }
    let mut o = TransportOptions::default();
    o.max_queue_depth = p.max_queue_depth.unwrap_or(o.max_queue_depth);
    o.max_io_qpairs_per_ctrlr = p
        .max_io_qpairs_per_ctrlr
        .or(p.max_qpairs_per_ctrlr.map(|q| q.saturating_sub(1)))
        .unwrap_or(o.max_io_qpairs_per_ctrlr);
    o.in_capsule_data_size = p.in_capsule_data_size.unwrap_or(o.in_capsule_data_size);
    o.max_io_size = p.max_io_size.unwrap_or(o.max_io_size);
    o.io_unit_size = p.io_unit_size.unwrap_or(o.io_unit_size);
    o.max_aq_depth = p.max_aq_depth.unwrap_or(o.max_aq_depth);
    o.c2h_success = p.c2h_success.unwrap_or(o.c2h_success);
    o.validate().map_err(RpcError::invalid_params)?;
    t.set_options(o);
    t.transport_created.store(true, Ordering::Release);
    Ok(json!(true))
}

async fn get_transports(t: Arc<Target>, p: Params) -> RpcResult {
    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Get {
        trtype: Option<String>,
        tgt_name: Option<String>,
    }
    let p: Get = p.parse()?;
    let _ = p.tgt_name;
    if p.trtype
        .as_deref()
        .is_some_and(|tr| !tr.eq_ignore_ascii_case("tcp"))
    {
        return Err(RpcError::not_found("no such transport"));
    }
    if !t.transport_created.load(Ordering::Acquire) {
        return Ok(json!([]));
    }
    let o = t.options();
    Ok(json!([{
        "trtype": "TCP",
        "max_queue_depth": o.max_queue_depth,
        "max_io_qpairs_per_ctrlr": o.max_io_qpairs_per_ctrlr,
        "in_capsule_data_size": o.in_capsule_data_size,
        "max_io_size": o.max_io_size,
        "io_unit_size": o.io_unit_size,
        "max_aq_depth": o.max_aq_depth,
        "c2h_success": o.c2h_success,
    }]))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateSubsystem {
    nqn: String,
    #[serde(default)]
    serial_number: Option<String>,
    #[serde(default)]
    model_number: Option<String>,
    #[serde(default)]
    allow_any_host: bool,
    #[serde(default)]
    max_namespaces: Option<u32>,
    #[serde(default)]
    tgt_name: Option<String>,
    #[serde(default)]
    ana_reporting: Option<bool>,
    #[serde(default)]
    min_cntlid: Option<u16>,
    #[serde(default)]
    max_cntlid: Option<u16>,
}

/// Default serial number: SPDK's default, "00000000000000000000".
const DEFAULT_SN: &str = "00000000000000000000";
/// Default model number.
const DEFAULT_MN: &str = "Lamina NVMe/TCP";
/// Default namespace limit.
const DEFAULT_MAX_NAMESPACES: u32 = 32;

async fn create_subsystem(t: Arc<Target>, p: Params) -> RpcResult {
    let p: CreateSubsystem = p.parse()?;
    let _ = (p.tgt_name, p.min_cntlid, p.max_cntlid);
    if p.ana_reporting == Some(true) {
        return Err(RpcError::invalid("ANA reporting is not supported"));
    }
    lamina_protocol::nvme::Nqn::new(&p.nqn)
        .map_err(|e| RpcError::invalid_params(format!("nqn: {e}")))?;
    let sn = p.serial_number.unwrap_or_else(|| DEFAULT_SN.to_owned());
    let mn = p.model_number.unwrap_or_else(|| DEFAULT_MN.to_owned());
    if sn.len() > 20 || !sn.is_ascii() {
        return Err(RpcError::invalid_params(
            "serial_number: at most 20 ASCII characters",
        ));
    }
    if mn.len() > 40 || !mn.is_ascii() {
        return Err(RpcError::invalid_params(
            "model_number: at most 40 ASCII characters",
        ));
    }
    let max_namespaces = match p.max_namespaces {
        None | Some(0) => DEFAULT_MAX_NAMESPACES,
        Some(n) => n,
    };
    t.subsystems
        .create(SubsystemConfig {
            nqn: p.nqn.clone(),
            serial_number: sn,
            model_number: mn,
            allow_any_host: p.allow_any_host,
            max_namespaces,
        })
        .map_err(|e| RpcError::exists(e.to_string()))?;
    tracing::info!(nqn = %p.nqn, "subsystem created");
    Ok(json!(true))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NqnOnly {
    nqn: String,
    #[serde(default)]
    tgt_name: Option<String>,
}

fn subsystem(t: &Target, nqn: &str) -> Result<Arc<Subsystem>, RpcError> {
    t.subsystems
        .get(nqn)
        .ok_or_else(|| RpcError::not_found(format!("subsystem {nqn} not found")))
}

fn nvm_subsystem(t: &Target, nqn: &str) -> Result<Arc<Subsystem>, RpcError> {
    let s = subsystem(t, nqn)?;
    if s.kind() == SubsystemKind::Discovery {
        return Err(RpcError::invalid("not allowed on the discovery subsystem"));
    }
    Ok(s)
}

async fn delete_subsystem(t: Arc<Target>, p: Params) -> RpcResult {
    let p: NqnOnly = p.parse()?;
    let _ = p.tgt_name;
    let sub = nvm_subsystem(&t, &p.nqn)?;
    t.subsystems.remove(&p.nqn);
    for ctrl in t.controllers.of_subsystem(&p.nqn) {
        ctrl.tear_down();
    }
    for nsid in sub.nsids() {
        if let Ok(ns) = sub.remove_namespace(nsid).await {
            release_backend(&t, &ns);
        }
    }
    tracing::info!(nqn = %p.nqn, "subsystem deleted");
    Ok(json!(true))
}

/// SPDK's listen address object.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenAddress {
    /// "TCP".
    pub trtype: String,
    /// "IPv4" or "IPv6".
    #[serde(default)]
    pub adrfam: Option<String>,
    /// The IP address.
    pub traddr: String,
    /// The port, as a string.
    #[serde(default)]
    pub trsvcid: Option<String>,
}

impl ListenAddress {
    /// The socket address, checked.
    pub fn to_socket_addr(&self) -> Result<SocketAddr, RpcError> {
        if !self.trtype.eq_ignore_ascii_case("tcp") {
            return Err(RpcError::invalid_params(format!(
                "trtype '{}': only TCP",
                self.trtype
            )));
        }
        let ip: IpAddr = self.traddr.parse().map_err(|_| {
            RpcError::invalid_params(format!("traddr '{}' is not an IP address", self.traddr))
        })?;
        let port: u16 = self
            .trsvcid
            .as_deref()
            .unwrap_or("4420")
            .parse()
            .map_err(|_| RpcError::invalid_params("trsvcid must be a port number"))?;
        if let Some(fam) = &self.adrfam {
            let ok = (fam.eq_ignore_ascii_case("ipv4") && ip.is_ipv4())
                || (fam.eq_ignore_ascii_case("ipv6") && ip.is_ipv6());
            if !ok {
                return Err(RpcError::invalid_params(format!(
                    "adrfam '{fam}' does not match traddr"
                )));
            }
        }
        Ok(SocketAddr::new(ip, port))
    }

    /// The SPDK object for `addr`.
    pub fn from_socket_addr(addr: SocketAddr) -> Self {
        Self {
            trtype: "TCP".into(),
            adrfam: Some(if addr.is_ipv4() { "IPv4" } else { "IPv6" }.into()),
            traddr: addr.ip().to_string(),
            trsvcid: Some(addr.port().to_string()),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListenerParams {
    nqn: String,
    listen_address: ListenAddress,
    #[serde(default)]
    tgt_name: Option<String>,
    #[serde(default)]
    secure_channel: Option<bool>,
    #[serde(default)]
    ana_state: Option<String>,
}

async fn add_listener(t: Arc<Target>, p: Params) -> RpcResult {
    let p: ListenerParams = p.parse()?;
    let _ = (p.tgt_name, p.ana_state);
    if p.secure_channel == Some(true) {
        return Err(RpcError::invalid("secure channels (TLS) are not supported"));
    }
    let sub = subsystem(&t, &p.nqn)?;
    let addr = p.listen_address.to_socket_addr()?;
    let port = t.ports.listen(&t, addr).await.map_err(|e| {
        RpcError::new(
            super::error::EINVAL,
            format!("cannot listen on {addr}: {e}"),
        )
    })?;
    if sub.kind() == SubsystemKind::Nvme && !sub.add_listener(port.addr) {
        return Err(RpcError::exists(format!(
            "{} already listens on {addr}",
            p.nqn
        )));
    }
    t.subsystems.bump_generation();
    Ok(json!(true))
}

async fn remove_listener(t: Arc<Target>, p: Params) -> RpcResult {
    let p: ListenerParams = p.parse()?;
    let sub = nvm_subsystem(&t, &p.nqn)?;
    let addr = p.listen_address.to_socket_addr()?;
    if !sub.remove_listener(addr) {
        return Err(RpcError::not_found(format!(
            "{} does not listen on {addr}",
            p.nqn
        )));
    }
    t.subsystems.bump_generation();
    Ok(json!(true))
}

async fn get_listeners(t: Arc<Target>, p: Params) -> RpcResult {
    let p: NqnOnly = p.parse()?;
    let sub = subsystem(&t, &p.nqn)?;
    let addrs = if sub.kind() == SubsystemKind::Discovery {
        t.ports.list().into_iter().map(|p| p.addr).collect()
    } else {
        sub.listeners()
    };
    Ok(Value::Array(
        addrs
            .into_iter()
            .map(|a| json!({"address": ListenAddress::from_socket_addr(a), "ana_state": "optimized"}))
            .collect(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NsParams {
    bdev_name: String,
    #[serde(default)]
    nsid: Option<u32>,
    #[serde(default)]
    nguid: Option<String>,
    #[serde(default)]
    eui64: Option<String>,
    #[serde(default)]
    uuid: Option<Uuid>,
    #[serde(default)]
    anagrpid: Option<u32>,
    #[serde(default)]
    ptpl_file: Option<String>,
    #[serde(default)]
    no_auto_visible: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddNs {
    nqn: String,
    namespace: NsParams,
    #[serde(default)]
    tgt_name: Option<String>,
}

fn parse_nguid(s: &str) -> Result<[u8; 16], RpcError> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    let bad = || RpcError::invalid_params("nguid must be 32 hexadecimal digits");
    if hex.len() != 32 {
        return Err(bad());
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16)
            .map_err(|_| bad())?;
    }
    Ok(out)
}

async fn add_ns(t: Arc<Target>, p: Params) -> RpcResult {
    let p: AddNs = p.parse()?;
    let _ = (
        p.tgt_name,
        p.namespace.anagrpid,
        p.namespace.no_auto_visible,
    );
    if p.namespace.eui64.is_some() || p.namespace.ptpl_file.is_some() {
        return Err(RpcError::invalid("eui64 and ptpl_file are not supported"));
    }
    let sub = nvm_subsystem(&t, &p.nqn)?;
    let nguid = p.namespace.nguid.as_deref().map(parse_nguid).transpose()?;
    let nsid = match p.namespace.nsid {
        Some(0) | None => sub.free_nsid()?,
        Some(n) => n,
    };
    let backend = open_backend(&t, &p.namespace.bdev_name, &p.nqn, nsid)?;
    // An lvol is a bdev named by its UUID (its alias is only an alias), as in SPDK.
    let name = match &backend {
        Backend::Lvol(d) => d.lvol().uuid().to_string(),
        Backend::Bdev(b) => b.name().to_owned(),
    };
    let ns = Arc::new(Namespace::new(
        nsid,
        name.clone(),
        backend,
        p.namespace.uuid,
        nguid,
    ));
    if let Err(e) = sub.add_namespace(ns.clone()) {
        release_backend(&t, &ns);
        return Err(e.into());
    }
    tracing::info!(nqn = %p.nqn, nsid, bdev = %name, "namespace added");
    Ok(json!(nsid))
}

/// Opens what `name` refers to for export: an lvol (UUID or alias), else a bdev.
fn open_backend(t: &Target, name: &str, nqn: &str, nsid: u32) -> Result<Backend, RpcError> {
    if let Ok(lvol) = t.lvols.lvol(name) {
        let desc = lvol.open(OpenMode::Export).map_err(RpcError::from)?;
        return Ok(Backend::Lvol(desc));
    }
    let bdev = t.bdevs.get(name).map_err(|_| {
        RpcError::not_found(format!(
            "bdev '{name}' not found (neither an lvol nor a bdev)"
        ))
    })?;
    bdev.try_claim(Claim::Namespace {
        nqn: nqn.to_owned(),
        nsid,
    })
    .map_err(|holder| RpcError::busy(format!("bdev '{name}' is in use by {holder}")))?;
    Ok(Backend::Bdev(bdev))
}

/// Releases a raw bdev's claim once its namespace is gone (an lvol closes on drop).
fn release_backend(_t: &Target, ns: &Namespace) {
    if let Backend::Bdev(b) = ns.backend() {
        b.release();
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveNs {
    nqn: String,
    nsid: u32,
    #[serde(default)]
    tgt_name: Option<String>,
}

async fn remove_ns(t: Arc<Target>, p: Params) -> RpcResult {
    let p: RemoveNs = p.parse()?;
    let _ = p.tgt_name;
    let sub = nvm_subsystem(&t, &p.nqn)?;
    let ns = sub.remove_namespace(p.nsid).await?;
    release_backend(&t, &ns);
    tracing::info!(nqn = %p.nqn, nsid = p.nsid, "namespace removed");
    Ok(json!(true))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostParams {
    nqn: String,
    host: String,
    #[serde(default)]
    tgt_name: Option<String>,
    #[serde(default)]
    psk: Option<String>,
    #[serde(default)]
    dhchap_key: Option<String>,
    #[serde(default)]
    dhchap_ctrlr_key: Option<String>,
}

async fn add_host(t: Arc<Target>, p: Params) -> RpcResult {
    let p: HostParams = p.parse()?;
    let _ = p.tgt_name;
    if p.psk.is_some() || p.dhchap_key.is_some() || p.dhchap_ctrlr_key.is_some() {
        return Err(RpcError::invalid(
            "TLS PSKs and DH-HMAC-CHAP keys are not supported",
        ));
    }
    lamina_protocol::nvme::Nqn::new(&p.host)
        .map_err(|e| RpcError::invalid_params(format!("host: {e}")))?;
    let sub = nvm_subsystem(&t, &p.nqn)?;
    if !sub.add_host(&p.host) {
        return Err(RpcError::exists(format!(
            "host {} is already allowed on {}",
            p.host, p.nqn
        )));
    }
    t.subsystems.bump_generation();
    Ok(json!(true))
}

async fn remove_host(t: Arc<Target>, p: Params) -> RpcResult {
    let p: HostParams = p.parse()?;
    let sub = nvm_subsystem(&t, &p.nqn)?;
    if !sub.remove_host(&p.host) {
        return Err(RpcError::not_found(format!(
            "host {} is not on {}'s allow-list",
            p.host, p.nqn
        )));
    }
    drop_unauthorized(&t, &sub);
    t.subsystems.bump_generation();
    Ok(json!(true))
}

/// Tears down the controllers of `sub` whose host may no longer connect (a removed host, or
/// every host off the allow-list once `allow_any_host` is off), as SPDK does: access control
/// that only stopped new connections would leave the host doing I/O.
fn drop_unauthorized(t: &Target, sub: &crate::subsystem::Subsystem) {
    for ctrl in t.controllers.of_subsystem(sub.nqn()) {
        if !sub.host_allowed(&ctrl.host().hostnqn) {
            tracing::info!(cntlid = ctrl.cntlid(), hostnqn = %ctrl.host().hostnqn,
                subnqn = %sub.nqn(), "host no longer allowed: tearing its controller down");
            ctrl.tear_down();
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(clippy::struct_field_names)] // SPDK's parameter name
struct AllowAny {
    nqn: String,
    allow_any_host: bool,
    #[serde(default)]
    tgt_name: Option<String>,
}

async fn allow_any_host(t: Arc<Target>, p: Params) -> RpcResult {
    let p: AllowAny = p.parse()?;
    let _ = p.tgt_name;
    let sub = nvm_subsystem(&t, &p.nqn)?;
    sub.set_allow_any_host(p.allow_any_host);
    drop_unauthorized(&t, &sub);
    t.subsystems.bump_generation();
    Ok(json!(true))
}

async fn get_subsystems(t: Arc<Target>, p: Params) -> RpcResult {
    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Get {
        nqn: Option<String>,
        tgt_name: Option<String>,
    }
    let p: Get = p.parse()?;
    let _ = p.tgt_name;
    let subs = match &p.nqn {
        Some(n) => vec![subsystem(&t, n)?],
        None => t.subsystems.list(),
    };
    Ok(Value::Array(
        subs.iter().map(|s| subsystem_json(&t, s)).collect(),
    ))
}

/// One element of `nvmf_get_subsystems`.
pub fn subsystem_json(t: &Target, s: &Subsystem) -> Value {
    let discovery = s.kind() == SubsystemKind::Discovery;
    let listeners: Vec<ListenAddress> = if discovery {
        t.ports
            .list()
            .into_iter()
            .map(|p| ListenAddress::from_socket_addr(p.addr))
            .collect()
    } else {
        s.listeners()
            .into_iter()
            .map(ListenAddress::from_socket_addr)
            .collect()
    };
    let mut v = json!({
        "nqn": s.nqn(),
        "subtype": if discovery { "Discovery" } else { "NVMe" },
        "listen_addresses": listeners,
        "allow_any_host": s.allow_any_host(),
        "hosts": s.hosts().into_iter().map(|h| json!({"nqn": h})).collect::<Vec<_>>(),
    });
    if !discovery {
        v["serial_number"] = json!(s.serial_number());
        v["model_number"] = json!(s.model_number());
        v["max_namespaces"] = json!(s.max_namespaces());
        v["min_cntlid"] = json!(1);
        v["max_cntlid"] = json!(crate::controller::registry::MAX_CNTLID);
        v["namespaces"] =
            Value::Array(s.namespaces().iter().map(|ns| namespace_json(ns)).collect());
    }
    v
}

fn namespace_json(ns: &Namespace) -> Value {
    let nguid = hex_upper(&ns.nguid());
    json!({
        "nsid": ns.nsid(),
        "bdev_name": ns.bdev_name(),
        "name": ns.bdev_name(),
        "nguid": nguid,
        "uuid": ns.uuid().to_string(),
    })
}

async fn get_controllers(t: Arc<Target>, p: Params) -> RpcResult {
    let p: NqnOnly = p.parse()?;
    subsystem(&t, &p.nqn)?;
    Ok(Value::Array(
        t.controllers
            .of_subsystem(&p.nqn)
            .iter()
            .map(|c| {
                let hostid = Uuid::from_bytes(c.host().hostid);
                json!({
                    "cntlid": c.cntlid(),
                    "hostnqn": c.host().hostnqn,
                    "hostid": hostid.to_string(),
                    "num_io_qpairs": c.io_queue_count(),
                })
            })
            .collect(),
    ))
}

async fn get_qpairs(t: Arc<Target>, p: Params) -> RpcResult {
    let p: NqnOnly = p.parse()?;
    subsystem(&t, &p.nqn)?;
    let mut out = Vec::new();
    for c in t.controllers.of_subsystem(&p.nqn) {
        let addr = ListenAddress::from_socket_addr(c.host().local);
        let qids = std::iter::once(0).chain(c.io_queue_ids());
        for qid in qids {
            out.push(json!({"cntlid": c.cntlid(), "qid": qid, "state": "active",
                "thread": "lamina", "listen_address": addr}));
        }
    }
    Ok(Value::Array(out))
}

async fn get_stats(t: Arc<Target>, p: Params) -> RpcResult {
    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Get {
        tgt_name: Option<String>,
    }
    let p: Get = p.parse()?;
    let _ = p.tgt_name;
    let ctrls = t.controllers.list();
    let admin = ctrls.len();
    let io: usize = ctrls.iter().map(|c| c.io_queue_count()).sum();
    Ok(json!({
        "tick_rate": 1_000_000_000u64,
        "poll_groups": [{
            "name": "lamina",
            "admin_qpairs": admin,
            "io_qpairs": io,
            "current_admin_qpairs": admin,
            "current_io_qpairs": io,
            "pending_bdev_io": 0,
            "completed_nvme_io": ctrls.iter().map(|c| {
                let s = c.stats().snapshot();
                s.read_commands + s.write_commands
            }).sum::<u64>(),
            "transports": [{"trtype": "TCP"}],
        }],
    }))
}

/// Upper-case hexadecimal, as SPDK prints NGUIDs.
pub fn hex_upper(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02X}");
            s
        })
}

/// The discovery NQN, for callers that list subsystems.
pub const DISCOVERY: &str = DISCOVERY_NQN;
