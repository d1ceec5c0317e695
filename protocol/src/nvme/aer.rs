//! The completion DW0 of an Asynchronous Event Request: event type, information and the log
//! page to read.

use super::log_page::LogPageId;
use crate::wire::open_enum;

open_enum! {
    //~ NVMe Base 2.0, Asynchronous Event Type figure.
    /// Asynchronous Event Type.
    pub struct AsyncEventType(u8) {
        /// Error status.
        ERROR = 0,
        /// SMART / Health status.
        SMART = 1,
        /// Notice.
        NOTICE = 2,
        /// Immediate.
        IMMEDIATE = 3,
        /// One-Shot.
        ONE_SHOT = 4,
        /// I/O Command specific status.
        IO_COMMAND_SPECIFIC = 6,
        /// Vendor specific.
        VENDOR_SPECIFIC = 7,
    }
}

open_enum! {
    //~ NVMe Base 2.0, Asynchronous Event Information – Notice figure; NVMe-oF 1.1: F0h
    //~ Discovery Log Page Change.
    /// Asynchronous Event Information for notices.
    pub struct NoticeInfo(u8) {
        /// Namespace Attribute Changed (read the Changed Namespace List).
        NS_ATTRIBUTE_CHANGED = 0x00,
        /// Firmware Activation Starting.
        FIRMWARE_ACTIVATION = 0x01,
        /// Telemetry Log Changed.
        TELEMETRY_LOG_CHANGED = 0x02,
        /// Asymmetric Namespace Access Change.
        ANA_CHANGE = 0x03,
        /// Predictable Latency Event Aggregate Log Change.
        PREDICTABLE_LATENCY = 0x04,
        /// LBA Status Information Alert.
        LBA_STATUS_ALERT = 0x05,
        /// Endurance Group Event Aggregate Log Page Change.
        ENDURANCE_GROUP_EVENT = 0x06,
        /// Discovery Log Page Change.
        DISCOVERY_LOG_CHANGE = 0xF0,
    }
}

//~ NVMe Base 2.0, Asynchronous Event Request completion DW0: type (2:0), information
//~ (15:8), log page identifier (23:16).
/// An asynchronous event, as carried in completion DW0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AsyncEvent {
    /// Event type (3 bits).
    pub event_type: AsyncEventType,
    /// Event information (meaning depends on the type; see [`NoticeInfo`]).
    pub info: u8,
    /// The log page the host reads to clear the event.
    pub log_page: LogPageId,
}

impl AsyncEvent {
    /// Namespace attribute changed: read the Changed Namespace List.
    pub const NS_CHANGED: Self = Self {
        event_type: AsyncEventType::NOTICE,
        info: NoticeInfo::NS_ATTRIBUTE_CHANGED.0,
        log_page: LogPageId::CHANGED_NS_LIST,
    };
    /// ANA change: read the ANA log.
    pub const ANA_CHANGED: Self = Self {
        event_type: AsyncEventType::NOTICE,
        info: NoticeInfo::ANA_CHANGE.0,
        log_page: LogPageId::ANA,
    };
    /// Discovery log page changed.
    pub const DISCOVERY_CHANGED: Self = Self {
        event_type: AsyncEventType::NOTICE,
        info: NoticeInfo::DISCOVERY_LOG_CHANGE.0,
        log_page: LogPageId::DISCOVERY,
    };

    /// Completion DW0.
    pub fn to_dw0(self) -> u32 {
        u32::from(self.event_type.0 & 0x7)
            | (u32::from(self.info) << 8)
            | (u32::from(self.log_page.0) << 16)
    }

    /// Parses completion DW0.
    pub fn from_dw0(dw0: u32) -> Self {
        let [b0, b1, b2, _] = dw0.to_le_bytes();
        Self {
            event_type: AsyncEventType(b0 & 0x7),
            info: b1,
            log_page: LogPageId(b2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ns_changed_dw0() {
        // Linux NVME_AER_NOTICE_NS_CHANGED: type 2, info 0, LID 04h.
        assert_eq!(AsyncEvent::NS_CHANGED.to_dw0(), 0x0004_0002);
        assert_eq!(AsyncEvent::from_dw0(0x0004_0002), AsyncEvent::NS_CHANGED);
        assert_eq!(AsyncEvent::DISCOVERY_CHANGED.to_dw0(), 0x0070_f002);
    }
}
