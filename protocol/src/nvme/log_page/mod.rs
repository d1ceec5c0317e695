//! Log pages: Supported Log Pages, Error Information, SMART / Health Information, Firmware
//! Slot Information, Changed Namespace List, Commands Supported and Effects, Asymmetric
//! Namespace Access, Feature Identifiers Supported and Effects and NVMe-MI Commands Supported
//! and Effects.
//! The Discovery log page lives in [`crate::fabrics::discovery`].

mod ana;
mod effects;
mod error_info;
mod fw_slot;
mod smart;
mod supported;

pub use ana::{AnaGroupDescriptor, AnaLog, AnaState};
pub use effects::{CommandEffects, CommandsSupportedEffects};
pub use error_info::{ERROR_INFO_ENTRY_LEN, ErrorInfoEntry};
pub use fw_slot::FirmwareSlotInfo;
pub use smart::SmartLog;
pub use supported::{
    FeatureEffects, FeatureIdsEffects, LidSupport, NvmeMiCommandsEffects, SupportedLogPages,
};

use crate::wire::open_enum;

/// The Changed Namespace List log page (LID 04h) has the layout of a namespace ID list; an
/// entry of FFFFFFFFh in the first slot means more than 1024 namespaces changed.
pub type ChangedNsList = super::identify::NsIdList;

open_enum! {
    //~ NVMe Base 2.0, Log Page Identifiers figure; NVMe-oF 1.1: 70h Discovery.
    /// Log Page Identifier.
    pub struct LogPageId(u8) {
        /// Supported Log Pages.
        SUPPORTED_LOG_PAGES = 0x00,
        /// Error Information.
        ERROR_INFO = 0x01,
        /// SMART / Health Information.
        SMART = 0x02,
        /// Firmware Slot Information.
        FIRMWARE_SLOT = 0x03,
        /// Changed Namespace List.
        CHANGED_NS_LIST = 0x04,
        /// Commands Supported and Effects.
        COMMANDS_EFFECTS = 0x05,
        /// Device Self-test.
        DEVICE_SELF_TEST = 0x06,
        /// Telemetry Host-Initiated.
        TELEMETRY_HOST = 0x07,
        /// Telemetry Controller-Initiated.
        TELEMETRY_CONTROLLER = 0x08,
        /// Endurance Group Information.
        ENDURANCE_GROUP = 0x09,
        /// Asymmetric Namespace Access.
        ANA = 0x0C,
        /// Persistent Event Log.
        PERSISTENT_EVENT = 0x0D,
        /// Feature Identifiers Supported and Effects.
        FEATURE_IDS_EFFECTS = 0x12,
        /// NVMe-MI Commands Supported and Effects.
        NVME_MI_EFFECTS = 0x13,
        /// Discovery (fabrics discovery controllers).
        DISCOVERY = 0x70,
        /// Reservation Notification.
        RESERVATION_NOTIFICATION = 0x80,
        /// Sanitize Status.
        SANITIZE_STATUS = 0x81,
    }
}

/// Size of the SMART, Firmware Slot logs.
pub const LOG_512: usize = 512;
