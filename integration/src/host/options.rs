//! [`ConnectOptions`]: everything a host chooses when it connects to a controller, with the
//! Linux host's defaults where it has one.

use std::time::Duration;

use lamina_protocol::nvme::Nqn;
use lamina_protocol::tcp::{Digests, Pda};

use crate::host::HostError;
use crate::host::core::MAX_SLOTS;

/// Options of [`crate::host::Controller::connect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Subsystem to connect to (the discovery NQN for a discovery controller).
    pub subnqn: Nqn,
    /// This host's NQN (default: `nqn.2014-08.org.nvmexpress:uuid:<random>`).
    pub hostnqn: Nqn,
    /// This host's 128-bit identifier (default: random, matching the NQN's UUID).
    pub hostid: [u8; 16],
    /// Ask for header digests.
    pub hdgst: bool,
    /// Ask for data digests.
    pub ddgst: bool,
    /// Keep Alive Timeout sent in the admin Connect, in milliseconds (0: none). Linux uses 5 s.
    pub kato_ms: u32,
    /// Send Keep Alive every KATO/2 in the background (when `kato_ms` is not 0).
    pub keep_alive: bool,
    /// Admin queue size (Linux: 32).
    pub admin_queue_size: u16,
    /// I/O queues to create (each its own TCP connection); clamped to what the controller
    /// allocates. 0 for an admin-only connection.
    pub io_queues: u16,
    /// I/O queue size, clamped to CAP.MQES + 1 and MAXCMD.
    pub io_queue_size: u16,
    /// Set CATTR "SQ flow control disable" in Connect, which allows C2HData SUCCESS.
    pub disable_sq_flow_control: bool,
    /// Host PDU data alignment asked for in ICReq (Linux: 0).
    pub hpda: Pda,
    /// Largest data transfer of one command; larger requests are refused. The controller's
    /// MDTS lowers it further.
    pub max_transfer_bytes: u32,
    /// Limit for TCP connect plus the ICReq/ICResp exchange (Linux waits 10 s for the ICResp).
    pub connect_timeout: Duration,
    /// Limit for each command issued by the typed API.
    pub command_timeout: Duration,
    /// A secure channel: TLS 1.3 with this PSK on every queue, before its ICReq.
    pub tls: Option<crate::host::TlsPsk>,
    /// DH-HMAC-CHAP on every queue whose Connect response asks for it.
    pub dhchap: Option<crate::host::Dhchap>,
}

impl ConnectOptions {
    /// Defaults for `subnqn`, with a fresh random host identity.
    pub fn new(subnqn: &str) -> Result<Self, HostError> {
        let uuid = uuid::Uuid::new_v4();
        Ok(Self {
            subnqn: Nqn::new(subnqn)?,
            hostnqn: Nqn::new(format!("nqn.2014-08.org.nvmexpress:uuid:{uuid}"))?,
            hostid: *uuid.as_bytes(),
            hdgst: false,
            ddgst: false,
            kato_ms: 5_000,
            keep_alive: true,
            admin_queue_size: 32,
            io_queues: 1,
            io_queue_size: 128,
            disable_sq_flow_control: false,
            hpda: Pda(0),
            max_transfer_bytes: 8 * 1024 * 1024,
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(30),
            tls: None,
            dhchap: None,
        })
    }

    /// The digests to ask for.
    pub fn digests(&self) -> Digests {
        Digests {
            header: self.hdgst,
            data: self.ddgst,
        }
    }

    /// Both digests on or off.
    #[must_use]
    pub fn with_digests(mut self, header: bool, data: bool) -> Self {
        self.hdgst = header;
        self.ddgst = data;
        self
    }

    /// Checks the sizes before anything is sent.
    pub(crate) fn validate(&self) -> Result<(), HostError> {
        let bad = |what: &str| Err(HostError::InvalidRequest(what.to_owned()));
        if self.admin_queue_size < 2 || self.admin_queue_size > MAX_SLOTS {
            return bad("admin queue size must be 2..=4095");
        }
        if self.io_queues > 0 && (self.io_queue_size < 2 || self.io_queue_size > MAX_SLOTS) {
            return bad("I/O queue size must be 2..=4095");
        }
        if !self.hpda.is_valid() {
            return bad("HPDA must be 0..=31");
        }
        if self.max_transfer_bytes < 4096 {
            return bad("max transfer must be at least 4096 bytes");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_identities_random() {
        let a = ConnectOptions::new("nqn.2026-11.io.lamina:default").unwrap();
        let b = ConnectOptions::new("nqn.2026-11.io.lamina:default").unwrap();
        a.validate().unwrap();
        assert_ne!(a.hostnqn, b.hostnqn);
        assert_ne!(a.hostid, b.hostid);
        assert!(
            a.hostnqn
                .as_str()
                .ends_with(&uuid::Uuid::from_bytes(a.hostid).to_string())
        );
    }

    #[test]
    fn rejects_bad_sizes_and_nqns() {
        assert!(ConnectOptions::new("not-an-nqn").is_err());
        let mut o = ConnectOptions::new("nqn.x").unwrap();
        o.io_queue_size = 1;
        assert!(o.validate().is_err());
        o.io_queues = 0;
        o.validate().unwrap();
        o.admin_queue_size = 5000;
        assert!(o.validate().is_err());
    }
}
