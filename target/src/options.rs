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
        }
    }
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
        Ok(())
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
    }
}
