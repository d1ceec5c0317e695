//! Feature identifiers and the values of the features a fabrics controller implements: Number
//! of Queues, Keep Alive Timer, Asynchronous Event Configuration, Volatile Write Cache,
//! Timestamp and Host Identifier.

use bytes::BytesMut;

use crate::wire::{Reader, StructDecodeError, Writer, hi16, lo16, open_enum};

open_enum! {
    //~ NVMe Base 2.0, Feature Identifiers figure.
    /// Feature Identifier.
    pub struct FeatureId(u8) {
        /// Arbitration.
        ARBITRATION = 0x01,
        /// Power Management.
        POWER_MANAGEMENT = 0x02,
        /// Temperature Threshold.
        TEMPERATURE_THRESHOLD = 0x04,
        /// Error Recovery.
        ERROR_RECOVERY = 0x05,
        /// Volatile Write Cache.
        VOLATILE_WRITE_CACHE = 0x06,
        /// Number of Queues.
        NUMBER_OF_QUEUES = 0x07,
        /// Interrupt Coalescing.
        INTERRUPT_COALESCING = 0x08,
        /// Interrupt Vector Configuration.
        INTERRUPT_VECTOR_CONFIG = 0x09,
        /// Write Atomicity Normal.
        WRITE_ATOMICITY = 0x0A,
        /// Asynchronous Event Configuration.
        ASYNC_EVENT_CONFIG = 0x0B,
        /// Autonomous Power State Transition.
        AUTONOMOUS_POWER_STATE = 0x0C,
        /// Timestamp.
        TIMESTAMP = 0x0E,
        /// Keep Alive Timer.
        KEEP_ALIVE_TIMER = 0x0F,
        /// Host Controlled Thermal Management.
        HOST_THERMAL_MANAGEMENT = 0x10,
        /// Non-Operational Power State Config.
        NON_OP_POWER_STATE = 0x11,
        /// Host Behavior Support.
        HOST_BEHAVIOR = 0x16,
        /// I/O Command Set Profile.
        IO_COMMAND_SET_PROFILE = 0x19,
        /// Software Progress Marker.
        SOFTWARE_PROGRESS_MARKER = 0x80,
        /// Host Identifier.
        HOST_IDENTIFIER = 0x81,
        /// Reservation Notification Mask.
        RESERVATION_NOTIFICATION_MASK = 0x82,
        /// Reservation Persistence.
        RESERVATION_PERSISTENCE = 0x83,
    }
}

//~ NVMe Base 2.0, Number of Queues: CDW11 and completion DW0 hold NSQR/NSQA (15:0)
//~ and NCQR/NCQA (31:16), both 0's based.
/// Number of Queues (requested in CDW11, allocated in completion DW0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NumberOfQueues {
    /// I/O submission queues, 0's based.
    pub nsq: u16,
    /// I/O completion queues, 0's based.
    pub ncq: u16,
}

impl NumberOfQueues {
    /// From CDW11 or DW0.
    pub const fn from_dword(dw: u32) -> Self {
        Self {
            nsq: lo16(dw),
            ncq: hi16(dw),
        }
    }

    /// To CDW11 or DW0.
    pub fn to_dword(self) -> u32 {
        u32::from(self.nsq) | (u32::from(self.ncq) << 16)
    }
}

//~ NVMe Base 2.0, Keep Alive Timer: CDW11 KATO in milliseconds.
/// Keep Alive Timer value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeepAliveTimer {
    /// Keep Alive Timeout in milliseconds (0 disables it).
    pub kato_ms: u32,
}

//~ NVMe Base 2.0, Asynchronous Event Configuration: bits 7:0 SMART / Health critical
//~ warnings, 8 Namespace Attribute Notices, 9 Firmware Activation Notices, 10 Telemetry Log
//~ Notices, 11 ANA Change Notices, 12 Predictable Latency, 13 LBA Status, 14 Endurance Group
//~ Event, 31 Discovery Log Page Change.
/// Asynchronous Event Configuration (also the layout of OAES in Identify Controller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AsyncEventConfig(pub u32);

impl AsyncEventConfig {
    /// Namespace Attribute Notices.
    pub const NS_ATTRIBUTE: u32 = 1 << 8;
    /// Firmware Activation Notices.
    pub const FIRMWARE_ACTIVATION: u32 = 1 << 9;
    /// Telemetry Log Notices.
    pub const TELEMETRY_LOG: u32 = 1 << 10;
    /// ANA Change Notices.
    pub const ANA_CHANGE: u32 = 1 << 11;
    /// Discovery Log Page Change Notification.
    pub const DISCOVERY_LOG_CHANGE: u32 = 1 << 31;

    /// SMART / Health critical warnings enabled (bits 7:0).
    pub const fn smart_warnings(self) -> u8 {
        self.0.to_le_bytes()[0]
    }

    /// Whether every bit of `mask` is set.
    pub const fn contains(self, mask: u32) -> bool {
        self.0 & mask == mask
    }
}

//~ NVMe Base 2.0, Volatile Write Cache: CDW11 bit 0 WCE.
/// Volatile Write Cache value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VolatileWriteCache {
    /// Write Cache Enable.
    pub enabled: bool,
}

impl VolatileWriteCache {
    /// From CDW11 or DW0.
    pub const fn from_dword(dw: u32) -> Self {
        Self {
            enabled: dw & 1 != 0,
        }
    }

    /// To CDW11 or DW0.
    pub fn to_dword(self) -> u32 {
        u32::from(self.enabled)
    }
}

//~ NVMe Base 2.0, Timestamp data: bytes 0..6 milliseconds since the epoch, byte 6
//~ attributes (bit 0 Synch, bits 3:1 Timestamp Origin), byte 7 reserved.
/// Size of the Timestamp data.
pub const TIMESTAMP_LEN: usize = 8;

/// Timestamp feature data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timestamp {
    /// Milliseconds since 1970-01-01 UTC (48 bits).
    pub millis: u64,
    /// Synch: the timestamp may have stopped advancing.
    pub synch: bool,
    /// Timestamp Origin (3 bits): 0 reset, 1 set by Set Features.
    pub origin: u8,
}

impl Timestamp {
    /// Largest representable value.
    pub const MAX_MILLIS: u64 = (1 << 48) - 1;

    /// Appends the 8 bytes.
    pub fn encode(&self, dst: &mut BytesMut) {
        let mut w = Writer::append(dst, TIMESTAMP_LEN);
        let ms = (self.millis & Self::MAX_MILLIS).to_le_bytes();
        w.bytes(0, ms.get(..6).unwrap_or_default());
        w.u8(6, u8::from(self.synch) | ((self.origin & 0x7) << 1));
    }

    /// Parses the 8 bytes.
    pub fn decode(src: &[u8]) -> Result<Self, StructDecodeError> {
        let r = Reader::new(src, "Timestamp", TIMESTAMP_LEN)?;
        let attr = r.u8(6)?;
        Ok(Self {
            millis: r.u64(0)? & Self::MAX_MILLIS,
            synch: attr & 1 != 0,
            origin: (attr >> 1) & 0x7,
        })
    }
}

//~ NVMe Base 2.0, Host Identifier: CDW11 bit 0 EXHID selects the 128-bit form, which
//~ NVMe over Fabrics requires; the identifier is the command's data (8 or 16 bytes).
/// Host Identifier feature data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostIdentifier {
    /// 64-bit Host Identifier (EXHID = 0).
    Short([u8; 8]),
    /// 128-bit Extended Host Identifier (EXHID = 1).
    Extended([u8; 16]),
}

impl HostIdentifier {
    /// Bytes of data the command carries.
    pub fn encoded_len(&self) -> usize {
        match self {
            Self::Short(_) => 8,
            Self::Extended(_) => 16,
        }
    }

    /// CDW11 for this form.
    pub fn cdw11(&self) -> u32 {
        u32::from(matches!(self, Self::Extended(_)))
    }

    /// Appends the identifier.
    pub fn encode(&self, dst: &mut BytesMut) {
        match self {
            Self::Short(v) => dst.extend_from_slice(v),
            Self::Extended(v) => dst.extend_from_slice(v),
        }
    }

    /// Parses the identifier; `cdw11` selects the form.
    pub fn decode(cdw11: u32, src: &[u8]) -> Result<Self, StructDecodeError> {
        if cdw11 & 1 != 0 {
            let r = Reader::new(src, "Host Identifier", 16)?;
            Ok(Self::Extended(r.array(0)?))
        } else {
            let r = Reader::new(src, "Host Identifier", 8)?;
            Ok(Self::Short(r.array(0)?))
        }
    }
}
