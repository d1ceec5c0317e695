//! NVMe/TCP ports: the addresses the target listens on, each with a port ID for the discovery
//! log page (the network shell, `crate::transport::listen_port`, binds them and runs their
//! accept loops).
//!
//! A port is started the first time an address is asked for (`--listen`, or a subsystem's
//! `nvmf_subsystem_add_listener`) and runs until shutdown: the discovery subsystem is reachable
//! on every port, and which NVM subsystems a connection may reach is decided per subsystem
//! (its listener list) at Connect time.
//!
//! At start-up the ports are bound first (so the embedded default and the restored
//! configuration see the real addresses) but accept nothing until [`Ports::open`]: the
//! configuration is then fully applied, and a host reconnecting across a restart never meets a
//! half-restored target (its Connect refused with DNR, which kernels from 6.10 on take as
//! final). Until then its connection waits in the kernel's accept queue.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use parking_lot::Mutex;

/// One listening address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Port {
    /// The port ID reported in the discovery log page.
    pub id: u16,
    /// The bound address (with the real port when 0 was asked for).
    pub addr: SocketAddr,
    /// A secure channel: every connection must do TLS 1.3 with a PSK before its ICReq.
    pub secure: bool,
}

/// Every port.
#[derive(Debug)]
pub struct Ports {
    ports: Mutex<BTreeMap<SocketAddr, Port>>,
    /// Whether accept loops may accept (false until start-up ends).
    open: tokio::sync::watch::Sender<bool>,
}

impl Default for Ports {
    fn default() -> Self {
        Self {
            ports: Mutex::new(BTreeMap::new()),
            open: tokio::sync::watch::Sender::new(false),
        }
    }
}

impl Ports {
    /// No ports, accepting nothing until [`Ports::open`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets every accept loop, present and future, accept.
    pub fn open(&self) {
        self.open.send_replace(true);
    }

    /// Resolves once the ports accept.
    pub async fn opened(&self) {
        let mut rx = self.open.subscribe();
        let _ = rx.wait_for(|open| *open).await;
    }

    /// Records a port bound at `bound`; `None` when one is already recorded there.
    pub fn insert(&self, bound: SocketAddr, secure: bool) -> Option<Port> {
        let mut ports = self.ports.lock();
        if ports.contains_key(&bound) {
            return None;
        }
        let id = u16::try_from(ports.len() + 1).unwrap_or(u16::MAX);
        let port = Port {
            id,
            addr: bound,
            secure,
        };
        ports.insert(bound, port);
        Some(port)
    }

    /// The port at exactly `addr`.
    pub fn get(&self, addr: SocketAddr) -> Option<Port> {
        self.ports.lock().get(&addr).copied()
    }

    /// The port a connection with local address `local` arrived on (a wildcard port matches any
    /// local address on its port number).
    pub fn arrived_on(&self, local: SocketAddr) -> Option<Port> {
        let ports = self.ports.lock();
        ports.get(&local).copied().or_else(|| {
            ports
                .values()
                .find(|p| p.addr.port() == local.port() && p.addr.ip().is_unspecified())
                .copied()
        })
    }

    /// Every port, by address.
    pub fn list(&self) -> Vec<Port> {
        self.ports.lock().values().copied().collect()
    }
}
