//! Listen addresses: `nvmf_subsystem_add_listener`, `nvmf_subsystem_remove_listener` and
//! `nvmf_subsystem_get_listeners`, with SPDK's listen address object.
//!
//! A listener added to the discovery subsystem (SPDK's `discovery` shortcut names it) opens the
//! port for discovery only. `secure_channel` makes the port a TLS one (TLS 1.3 with the hosts'
//! PSKs, see `crate::transport::tls`): an address serves TLS or clear text, not both, as a
//! port's kind is fixed when it is first opened. ANA states are not implemented and are
//! accepted only at the value that describes an optimized path.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::super::dispatch::RpcResult;
use super::super::error::{EINVAL, RpcError};
use super::super::fields::{Described, Field, Lit, TGT_NAME, Ty, applied, object, only, same};
use super::{NqnOnly, nvm_subsystem, subsystem};
use crate::mgmt::context::Target;
use crate::plane::subsystem::SubsystemKind;

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

impl Described for ListenAddress {
    const FIELDS: &'static [Field] = &[
        applied("trtype"),
        applied("adrfam"),
        applied("traddr"),
        applied("trsvcid"),
    ];
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

/// `nvmf_subsystem_add_listener`'s parameters Lamina applies.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AddListener {
    nqn: String,
    listen_address: ListenAddress,
    #[serde(default)]
    secure_channel: bool,
    sock_impl: Option<String>,
}

impl Described for AddListener {
    const FIELDS: &'static [Field] = &[
        applied("nqn"),
        TGT_NAME,
        object::<ListenAddress>("listen_address"),
        applied("secure_channel"),
        only(
            "ana_state",
            &[Lit::Str("optimized")],
            "ANA is not implemented: every path is optimized",
        ),
        applied("sock_impl"),
        same(
            "numa_id",
            Ty::Int,
            "a vfio-user option; SPDK's TCP transport ignores it too",
        ),
    ];
}

pub(super) async fn add_listener(t: Arc<Target>, p: AddListener) -> RpcResult {
    let sub = subsystem(&t, &p.nqn)?;
    let addr = p.listen_address.to_socket_addr()?;
    // Lamina's sockets are the kernel's TCP sockets (SPDK's posix), with TLS on them for a
    // secure channel (SPDK's ssl, its TLS implementation): ssl only with secure_channel.
    match p.sock_impl.as_deref() {
        None | Some("posix") => {}
        Some("ssl") if p.secure_channel => {}
        Some("ssl") => {
            return Err(RpcError::invalid_params(
                "sock_impl 'ssl' is TLS: it needs secure_channel true",
            ));
        }
        Some(other) => {
            return Err(RpcError::invalid_params(format!(
                "sock_impl '{other}': Lamina has posix (and ssl for secure_channel)"
            )));
        }
    }
    if p.secure_channel && sub.kind() == SubsystemKind::Discovery {
        return Err(RpcError::invalid_params(
            "secure_channel: discovery over TLS is not supported (NVM subsystems' TLS ports \
             are reported, with TLS required, in the discovery log of a clear-text port)",
        ));
    }
    let port = crate::transport::listen_port(&t.net, addr, p.secure_channel)
        .await
        .map_err(|e| RpcError::new(EINVAL, format!("cannot listen on {addr}: {e}")))?;
    if sub.kind() == SubsystemKind::Nvme && !sub.add_listener(port.addr) {
        return Err(RpcError::exists(format!(
            "{} already listens on {addr}",
            p.nqn
        )));
    }
    t.subsystems.bump_generation();
    Ok(json!(true))
}

/// `nvmf_subsystem_remove_listener`'s parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RemoveListener {
    nqn: String,
    listen_address: ListenAddress,
}

impl Described for RemoveListener {
    const FIELDS: &'static [Field] = &[
        applied("nqn"),
        TGT_NAME,
        object::<ListenAddress>("listen_address"),
    ];
}

pub(super) async fn remove_listener(t: Arc<Target>, p: RemoveListener) -> RpcResult {
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

pub(super) async fn get_listeners(t: Arc<Target>, p: NqnOnly) -> RpcResult {
    let sub = subsystem(&t, &p.nqn)?;
    let addrs = if sub.kind() == SubsystemKind::Discovery {
        t.ports.list().into_iter().map(|p| p.addr).collect()
    } else {
        sub.listeners()
    };
    Ok(Value::Array(
        addrs
            .into_iter()
            .map(|a| {
                let secure = t.ports.get(a).is_some_and(|p| p.secure);
                json!({"address": ListenAddress::from_socket_addr(a), "ana_state": "optimized",
                    "secure_channel": secure})
            })
            .collect(),
    ))
}
