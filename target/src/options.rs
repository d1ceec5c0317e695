//! Transport options: the limits the target advertises and enforces on every connection
//! (SPDK's `nvmf_create_transport` parameters, with SPDK's names where they exist).

use serde::{Deserialize, Serialize};

/// NVMe/TCP transport limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransportOptions {
    /// Largest I/O queue size (entries); CAP.MQES is this minus one.
    pub max_queue_depth: u16,
    /// Most I/O queues per controller.
    pub max_io_qpairs_per_ctrlr: u16,
    /// In-capsule data on I/O queues, in bytes (IOCCSZ = (this + 64) / 16).
    pub in_capsule_data_size: u32,
    /// Largest data transfer of one command, in bytes (MDTS, a power of two times 4 KiB).
    pub max_io_size: u32,
    /// Largest H2CData PDU the host may send, in bytes (MAXH2CDATA).
    pub io_unit_size: u32,
    /// Largest admin queue size (entries).
    pub max_aq_depth: u16,
    /// Use the C2HData SUCCESS flag (skipping the response capsule) when the host disabled SQ
    /// flow control.
    pub c2h_success: bool,
    /// KAS: the keep-alive granularity the controllers report, in 100 ms units; a host's KATO
    /// is rounded up to a multiple of it (as SPDK does).
    pub kas: u16,
    /// The shortest keep-alive timeout, in milliseconds: a host asking for this or less (but not
    /// 0) gets this (as SPDK does).
    pub min_kato: u32,
    /// `SO_PRIORITY` of accepted connections (0..=16, as SPDK allows; 0 leaves the default).
    pub sock_priority: u32,
}

impl Default for TransportOptions {
    fn default() -> Self {
        Self {
            max_queue_depth: 128,
            max_io_qpairs_per_ctrlr: 127,
            in_capsule_data_size: 8192,
            max_io_size: 256 * 1024,
            io_unit_size: 128 * 1024,
            max_aq_depth: 128,
            c2h_success: true,
            kas: 10,
            min_kato: 1000,
            sock_priority: 0,
        }
    }
}

/// The highest `sock_priority` (SPDK's limit).
pub const MAX_SOCK_PRIORITY: u32 = 16;

/// Socket options of one SPDK socket implementation (`sock_impl_set_options`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SockOptions {
    /// `SO_RCVBUF` of accepted connections in bytes; 0 leaves the kernel's autotuning.
    pub recv_buf_size: u32,
    /// `SO_SNDBUF` of accepted connections in bytes; 0 leaves the kernel's autotuning.
    pub send_buf_size: u32,
    /// `TCP_QUICKACK` on accepted connections.
    pub enable_quickack: bool,
}

/// The options of SPDK's two socket implementations: `posix` (the kernel's TCP sockets,
/// Lamina's listeners) and `ssl` (kept for TLS listeners).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SockImpls {
    /// The kernel's TCP sockets.
    pub posix: SockOptions,
    /// TLS sockets.
    pub ssl: SockOptions,
}

/// The in-capsule data the admin queue accepts (NVMe/TCP: 8 KiB).
pub const ADMIN_IN_CAPSULE_DATA: u32 = 8192;

impl TransportOptions {
    /// Checks the values against what the protocol and the Linux host allow.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_queue_depth < 2 {
            return Err("max_queue_depth must be at least 2".into());
        }
        if self.max_aq_depth < 2 {
            return Err("max_aq_depth must be at least 2".into());
        }
        if self.max_io_qpairs_per_ctrlr == 0 {
            return Err("max_io_qpairs_per_ctrlr must be at least 1".into());
        }
        if self.io_unit_size < 4096 || !self.io_unit_size.is_multiple_of(4) {
            return Err("io_unit_size must be a multiple of 4 and at least 4096".into());
        }
        if !self.in_capsule_data_size.is_multiple_of(16) || self.in_capsule_data_size > 128 * 1024 {
            return Err("in_capsule_data_size must be a multiple of 16 and at most 131072".into());
        }
        if !self.max_io_size.is_power_of_two() || self.max_io_size < 4096 {
            return Err("max_io_size must be a power of two of at least 4096".into());
        }
        if self.kas == 0 {
            return Err(
                "kas must be at least 1 (a KAS of 0 means no keep-alive, which the \
                 Linux host refuses)"
                    .into(),
            );
        }
        if self.min_kato == 0 {
            return Err("min_kato must be at least 1".into());
        }
        if self.sock_priority > MAX_SOCK_PRIORITY {
            return Err(format!("sock_priority must be at most {MAX_SOCK_PRIORITY}"));
        }
        Ok(())
    }

    /// The keep-alive timeout a controller uses when a host asks for `kato_ms` (at Connect or
    /// with Set Features): 0 stays 0 (none), at most [`Self::min_kato`] becomes that, anything
    /// else is rounded up to a multiple of the KAS granularity (SPDK's rule; NVMe Base 2.0
    /// §5.27.1.12 lets the controller round KATO up to its granularity).
    pub fn effective_kato(&self, kato_ms: u32) -> u32 {
        let unit = u32::from(self.kas) * 100;
        match kato_ms {
            0 => 0,
            k if k <= self.min_kato => self.min_kato,
            k => k.div_ceil(unit).saturating_mul(unit),
        }
    }

    /// IOCCSZ: the I/O command capsule size in 16-byte units.
    pub fn ioccsz(&self) -> u32 {
        (self.in_capsule_data_size + 64) / 16
    }

    /// MDTS: the transfer limit as a power of two of 4 KiB pages.
    pub fn mdts(&self) -> u8 {
        let pages = (self.max_io_size / 4096).max(1);
        u8::try_from(pages.trailing_zeros()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_derive_identify_fields() {
        let o = TransportOptions::default();
        o.validate().unwrap();
        assert_eq!(o.ioccsz(), 516);
        assert_eq!(o.mdts(), 6);
    }

    #[test]
    fn bad_values_are_refused() {
        let o = TransportOptions {
            io_unit_size: 4094,
            ..TransportOptions::default()
        };
        assert!(o.validate().is_err());
        let o = TransportOptions {
            max_io_size: 3000,
            ..TransportOptions::default()
        };
        assert!(o.validate().is_err());
        for bad in [
            TransportOptions {
                kas: 0,
                ..TransportOptions::default()
            },
            TransportOptions {
                min_kato: 0,
                ..TransportOptions::default()
            },
            TransportOptions {
                sock_priority: 17,
                ..TransportOptions::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn kato_is_raised_to_the_minimum_and_rounded_to_kas() {
        let o = TransportOptions::default();
        assert_eq!(o.effective_kato(0), 0);
        assert_eq!(o.effective_kato(400), 1000);
        assert_eq!(o.effective_kato(1000), 1000);
        assert_eq!(o.effective_kato(1001), 2000);
        assert_eq!(o.effective_kato(30_000), 30_000);
        let spdk = TransportOptions {
            kas: 100,
            min_kato: 10_000,
            ..TransportOptions::default()
        };
        assert_eq!(spdk.effective_kato(5_000), 10_000);
        assert_eq!(spdk.effective_kato(10_001), 20_000);
        assert_eq!(spdk.effective_kato(u32::MAX), u32::MAX);
    }
}
