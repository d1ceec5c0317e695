//! The completion status field: Status Code Type, Status Code, Command Retry Delay, More and Do
//! Not Retry, with named constants for the generic, command-specific (incl. Fabrics Connect),
//! media and data integrity, and path codes.

use crate::wire::open_enum;

open_enum! {
    //~ NVMe Base 2.0, Status Code Type values figure.
    /// Status Code Type.
    pub struct Sct(u8) {
        /// Generic Command Status.
        GENERIC = 0,
        /// Command Specific Status.
        COMMAND_SPECIFIC = 1,
        /// Media and Data Integrity Errors.
        MEDIA = 2,
        /// Path Related Status.
        PATH = 3,
        /// Vendor Specific.
        VENDOR_SPECIFIC = 7,
    }
}

/// A status code: its type and its value within the type. Unknown pairs round-trip.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct StatusCode {
    /// Status Code Type (3 bits).
    pub sct: Sct,
    /// Status Code.
    pub sc: u8,
}

macro_rules! status_codes {
    ($( $(#[$m:meta])* $name:ident = ($sct:ident, $sc:literal) ),* $(,)?) => {
        impl StatusCode {
            $( $(#[$m])* pub const $name: Self = Self { sct: Sct::$sct, sc: $sc }; )*
        }
        const KNOWN: &[(StatusCode, &str)] = &[ $( (StatusCode::$name, stringify!($name)), )* ];
    };
}

status_codes! {
    //~ NVMe Base 2.0, Generic Command Status Values figure.
    /// Successful Completion.
    SUCCESS = (GENERIC, 0x00),
    /// Invalid Command Opcode.
    INVALID_OPCODE = (GENERIC, 0x01),
    /// Invalid Field in Command.
    INVALID_FIELD = (GENERIC, 0x02),
    /// Command ID Conflict.
    COMMAND_ID_CONFLICT = (GENERIC, 0x03),
    /// Data Transfer Error.
    DATA_TRANSFER_ERROR = (GENERIC, 0x04),
    /// Commands Aborted due to Power Loss Notification.
    ABORTED_POWER_LOSS = (GENERIC, 0x05),
    /// Internal Error.
    INTERNAL_ERROR = (GENERIC, 0x06),
    /// Command Abort Requested.
    ABORT_REQUESTED = (GENERIC, 0x07),
    /// Command Aborted due to SQ Deletion.
    ABORTED_SQ_DELETION = (GENERIC, 0x08),
    /// Command Aborted due to Failed Fused Command.
    ABORTED_FAILED_FUSED = (GENERIC, 0x09),
    /// Command Aborted due to Missing Fused Command.
    ABORTED_MISSING_FUSED = (GENERIC, 0x0A),
    /// Invalid Namespace or Format.
    INVALID_NAMESPACE_OR_FORMAT = (GENERIC, 0x0B),
    /// Command Sequence Error.
    COMMAND_SEQUENCE_ERROR = (GENERIC, 0x0C),
    /// Invalid SGL Segment Descriptor.
    INVALID_SGL_SEGMENT_DESCRIPTOR = (GENERIC, 0x0D),
    /// Invalid Number of SGL Descriptors.
    INVALID_SGL_DESCRIPTOR_COUNT = (GENERIC, 0x0E),
    /// Data SGL Length Invalid.
    DATA_SGL_LENGTH_INVALID = (GENERIC, 0x0F),
    /// Metadata SGL Length Invalid.
    METADATA_SGL_LENGTH_INVALID = (GENERIC, 0x10),
    /// SGL Descriptor Type Invalid.
    SGL_DESCRIPTOR_TYPE_INVALID = (GENERIC, 0x11),
    /// Invalid Use of Controller Memory Buffer.
    INVALID_CMB_USE = (GENERIC, 0x12),
    /// PRP Offset Invalid.
    PRP_OFFSET_INVALID = (GENERIC, 0x13),
    /// Atomic Write Unit Exceeded.
    ATOMIC_WRITE_UNIT_EXCEEDED = (GENERIC, 0x14),
    /// Operation Denied.
    OPERATION_DENIED = (GENERIC, 0x15),
    /// SGL Offset Invalid.
    SGL_OFFSET_INVALID = (GENERIC, 0x16),
    /// Host Identifier Inconsistent Format.
    HOST_ID_INCONSISTENT_FORMAT = (GENERIC, 0x18),
    /// Keep Alive Timer Expired.
    KEEP_ALIVE_EXPIRED = (GENERIC, 0x19),
    /// Keep Alive Timeout Invalid.
    KEEP_ALIVE_INVALID = (GENERIC, 0x1A),
    /// Command Aborted due to Preempt and Abort.
    ABORTED_PREEMPT = (GENERIC, 0x1B),
    /// Sanitize Failed.
    SANITIZE_FAILED = (GENERIC, 0x1C),
    /// Sanitize In Progress.
    SANITIZE_IN_PROGRESS = (GENERIC, 0x1D),
    /// SGL Data Block Granularity Invalid.
    SGL_GRANULARITY_INVALID = (GENERIC, 0x1E),
    /// Command Not Supported for Queue in CMB.
    NOT_SUPPORTED_FOR_CMB_QUEUE = (GENERIC, 0x1F),
    /// Namespace is Write Protected.
    NAMESPACE_WRITE_PROTECTED = (GENERIC, 0x20),
    /// Command Interrupted.
    COMMAND_INTERRUPTED = (GENERIC, 0x21),
    /// Transient Transport Error.
    TRANSIENT_TRANSPORT_ERROR = (GENERIC, 0x22),
    /// Command Prohibited by Command and Feature Lockdown.
    PROHIBITED_BY_LOCKDOWN = (GENERIC, 0x23),
    /// Admin Command Media Not Ready.
    ADMIN_MEDIA_NOT_READY = (GENERIC, 0x24),
    //= NVM Command Set 1.0 §3.1, Figure 15
    //# 80h LBA Out of Range: The command references an LBA that exceeds the size of the
    //# namespace.
    // Figure 15 lists only 80h of the values below; 81h..84h are not quoted here.
    /// LBA Out of Range.
    LBA_OUT_OF_RANGE = (GENERIC, 0x80),
    /// Capacity Exceeded.
    CAPACITY_EXCEEDED = (GENERIC, 0x81),
    /// Namespace Not Ready.
    NAMESPACE_NOT_READY = (GENERIC, 0x82),
    /// Reservation Conflict.
    RESERVATION_CONFLICT = (GENERIC, 0x83),
    /// Format In Progress.
    FORMAT_IN_PROGRESS = (GENERIC, 0x84),

    //~ NVMe Base 2.0, Command Specific Status Values figure.
    /// Completion Queue Invalid.
    COMPLETION_QUEUE_INVALID = (COMMAND_SPECIFIC, 0x00),
    /// Invalid Queue Identifier.
    INVALID_QUEUE_ID = (COMMAND_SPECIFIC, 0x01),
    /// Invalid Queue Size.
    INVALID_QUEUE_SIZE = (COMMAND_SPECIFIC, 0x02),
    /// Abort Command Limit Exceeded.
    ABORT_LIMIT_EXCEEDED = (COMMAND_SPECIFIC, 0x03),
    /// Asynchronous Event Request Limit Exceeded.
    ASYNC_EVENT_LIMIT_EXCEEDED = (COMMAND_SPECIFIC, 0x05),
    /// Invalid Firmware Slot.
    INVALID_FIRMWARE_SLOT = (COMMAND_SPECIFIC, 0x06),
    /// Invalid Firmware Image.
    INVALID_FIRMWARE_IMAGE = (COMMAND_SPECIFIC, 0x07),
    /// Invalid Interrupt Vector.
    INVALID_INTERRUPT_VECTOR = (COMMAND_SPECIFIC, 0x08),
    /// Invalid Log Page.
    INVALID_LOG_PAGE = (COMMAND_SPECIFIC, 0x09),
    /// Invalid Format.
    INVALID_FORMAT = (COMMAND_SPECIFIC, 0x0A),
    /// Invalid Queue Deletion.
    INVALID_QUEUE_DELETION = (COMMAND_SPECIFIC, 0x0C),
    /// Feature Identifier Not Saveable.
    FEATURE_NOT_SAVEABLE = (COMMAND_SPECIFIC, 0x0D),
    /// Feature Not Changeable.
    FEATURE_NOT_CHANGEABLE = (COMMAND_SPECIFIC, 0x0E),
    /// Feature Not Namespace Specific.
    FEATURE_NOT_NAMESPACE_SPECIFIC = (COMMAND_SPECIFIC, 0x0F),
    /// Namespace Insufficient Capacity.
    NAMESPACE_INSUFFICIENT_CAPACITY = (COMMAND_SPECIFIC, 0x15),
    /// Namespace Identifier Unavailable.
    NAMESPACE_ID_UNAVAILABLE = (COMMAND_SPECIFIC, 0x16),
    /// Namespace Already Attached.
    NAMESPACE_ALREADY_ATTACHED = (COMMAND_SPECIFIC, 0x18),
    /// Namespace Is Private.
    NAMESPACE_IS_PRIVATE = (COMMAND_SPECIFIC, 0x19),
    /// Namespace Not Attached.
    NAMESPACE_NOT_ATTACHED = (COMMAND_SPECIFIC, 0x1A),
    /// Controller List Invalid.
    CONTROLLER_LIST_INVALID = (COMMAND_SPECIFIC, 0x1C),
    /// Invalid Controller Identifier.
    INVALID_CONTROLLER_ID = (COMMAND_SPECIFIC, 0x1F),
    /// ANA Group Identifier Invalid.
    ANA_GROUP_ID_INVALID = (COMMAND_SPECIFIC, 0x24),
    /// I/O Command Set Not Supported.
    IO_COMMAND_SET_NOT_SUPPORTED = (COMMAND_SPECIFIC, 0x29),
    /// I/O Command Set Not Enabled.
    IO_COMMAND_SET_NOT_ENABLED = (COMMAND_SPECIFIC, 0x2A),
    /// I/O Command Set Combination Rejected (Set Features I/O Command Set Profile).
    IO_COMMAND_SET_COMBINATION_REJECTED = (COMMAND_SPECIFIC, 0x2B),
    /// Invalid I/O Command Set.
    INVALID_IO_COMMAND_SET = (COMMAND_SPECIFIC, 0x2C),
    //= NVM Command Set 1.0 §3.1, Figure 16
    //# Value Description Commands Affected
    //# 80h Conflicting Attributes Dataset Management, Read, Write
    //# 81h Invalid Protection Information Compare, Copy, Read, Verify, Write, Write Zeroes
    //# Copy, Dataset Management, Flush, Format 82h Attempted Write to Read Only Range NVM, Write,
    //# Write Uncorrectable, Write Zeroes
    /// Conflicting Attributes (Dataset Management, Read, Write).
    CONFLICTING_ATTRIBUTES = (COMMAND_SPECIFIC, 0x80),
    /// Invalid Protection Information.
    INVALID_PROTECTION_INFO = (COMMAND_SPECIFIC, 0x81),
    /// Attempted Write to Read Only Range.
    WRITE_TO_READ_ONLY_RANGE = (COMMAND_SPECIFIC, 0x82),
    //~ NVMe-oF 1.1, Connect and Disconnect command specific status values (Linux
    //~ NVME_SC_CONNECT_*, NVME_SC_DISCONNECT_INVALID_QTYPE).
    /// Incompatible Format (Connect, Disconnect: a Record Format other than 0).
    CONNECT_INCOMPATIBLE_FORMAT = (COMMAND_SPECIFIC, 0x80),
    /// Connect Controller Busy.
    CONNECT_CONTROLLER_BUSY = (COMMAND_SPECIFIC, 0x81),
    /// Connect Invalid Parameters (DW0 holds IATTR and IPO).
    CONNECT_INVALID_PARAMETERS = (COMMAND_SPECIFIC, 0x82),
    /// Connect Restart Discovery.
    CONNECT_RESTART_DISCOVERY = (COMMAND_SPECIFIC, 0x83),
    /// Connect Invalid Host.
    CONNECT_INVALID_HOST = (COMMAND_SPECIFIC, 0x84),
    /// Invalid Queue Type (Disconnect on the Admin Queue).
    INVALID_QUEUE_TYPE = (COMMAND_SPECIFIC, 0x85),
    /// Discover Restart (Get Log Page of the Discovery log).
    DISCOVER_RESTART = (COMMAND_SPECIFIC, 0x90),
    /// Authentication Required.
    AUTHENTICATION_REQUIRED = (COMMAND_SPECIFIC, 0x91),

    //~ NVMe Base 2.0, Media and Data Integrity Errors figure.
    /// Write Fault.
    WRITE_FAULT = (MEDIA, 0x80),
    /// Unrecovered Read Error.
    UNRECOVERED_READ_ERROR = (MEDIA, 0x81),
    /// End-to-end Guard Check Error.
    GUARD_CHECK_ERROR = (MEDIA, 0x82),
    /// End-to-end Application Tag Check Error.
    APPLICATION_TAG_CHECK_ERROR = (MEDIA, 0x83),
    /// End-to-end Reference Tag Check Error.
    REFERENCE_TAG_CHECK_ERROR = (MEDIA, 0x84),
    /// Compare Failure.
    COMPARE_FAILURE = (MEDIA, 0x85),
    /// Access Denied.
    ACCESS_DENIED = (MEDIA, 0x86),
    /// Deallocated or Unwritten Logical Block.
    DEALLOCATED_OR_UNWRITTEN = (MEDIA, 0x87),

    //~ NVMe Base 2.0, Path Related Status figure.
    /// Internal Path Error.
    INTERNAL_PATH_ERROR = (PATH, 0x00),
    /// Asymmetric Access Persistent Loss.
    ANA_PERSISTENT_LOSS = (PATH, 0x01),
    /// Asymmetric Access Inaccessible.
    ANA_INACCESSIBLE = (PATH, 0x02),
    /// Asymmetric Access Transition.
    ANA_TRANSITION = (PATH, 0x03),
    /// Controller Pathing Error.
    CONTROLLER_PATHING_ERROR = (PATH, 0x60),
    /// Host Pathing Error.
    HOST_PATHING_ERROR = (PATH, 0x70),
    /// Command Aborted By Host.
    ABORTED_BY_HOST = (PATH, 0x71),
}

impl StatusCode {
    /// Names of every constant with this value. Command-specific codes from 80h up are
    /// defined per command, so one value can have several names (e.g. 1h/80h is both
    /// Conflicting Attributes and Connect Incompatible Format).
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        KNOWN
            .iter()
            .filter(move |(code, _)| *code == self)
            .map(|(_, name)| *name)
    }

    /// Whether this is Successful Completion.
    pub fn is_success(self) -> bool {
        self == Self::SUCCESS
    }
}

impl core::fmt::Debug for StatusCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut names = self.names().peekable();
        if names.peek().is_none() {
            return write!(f, "StatusCode({:?}, {:#04x})", self.sct, self.sc);
        }
        write!(f, "StatusCode::")?;
        for (i, name) in names.enumerate() {
            write!(f, "{}{name}", if i == 0 { "" } else { "|" })?;
        }
        Ok(())
    }
}

//~ NVMe Base 2.0, Completion Queue Entry: Status Field figure: bit 0 Phase Tag (P), bits
//~ 8:1 SC, 11:9 SCT, 13:12 CRD, bit 14 More (M), bit 15 Do Not Retry (DNR).
/// The completion status, without the phase tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Status {
    /// Status Code Type and Status Code.
    pub code: StatusCode,
    /// Command Retry Delay: 0, or which of CRDT1..3 to wait before retrying (2 bits).
    pub crd: u8,
    /// More: more status information in the Error Information log page.
    pub more: bool,
    /// Do Not Retry.
    pub dnr: bool,
}

impl Status {
    /// Successful Completion.
    pub const SUCCESS: Self = Self {
        code: StatusCode::SUCCESS,
        crd: 0,
        more: false,
        dnr: false,
    };

    /// `code` without retry hints.
    pub const fn new(code: StatusCode) -> Self {
        Self {
            code,
            crd: 0,
            more: false,
            dnr: false,
        }
    }

    /// `code` with Do Not Retry set.
    pub const fn dnr(code: StatusCode) -> Self {
        Self {
            code,
            crd: 0,
            more: false,
            dnr: true,
        }
    }

    /// Splits the 16-bit status field into the status and the phase tag.
    pub fn from_field(field: u16) -> (Self, bool) {
        let sc = u8::try_from((field >> 1) & 0xff).unwrap_or(0);
        let sct = u8::try_from((field >> 9) & 0x7).unwrap_or(0);
        let crd = u8::try_from((field >> 12) & 0x3).unwrap_or(0);
        let status = Self {
            code: StatusCode { sct: Sct(sct), sc },
            crd,
            more: field & (1 << 14) != 0,
            dnr: field & (1 << 15) != 0,
        };
        (status, field & 1 != 0)
    }

    /// The 16-bit status field with the given phase tag.
    pub fn to_field(self, phase: bool) -> u16 {
        u16::from(phase)
            | (u16::from(self.code.sc) << 1)
            | (u16::from(self.code.sct.0 & 0x7) << 9)
            | (u16::from(self.crd & 0x3) << 12)
            | (u16::from(self.more) << 14)
            | (u16::from(self.dnr) << 15)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // NVM Command Set 1.0 §3.1
    #[test]
    fn status_field_bits() {
        let s = Status::dnr(StatusCode::LBA_OUT_OF_RANGE);
        assert_eq!(s.to_field(false), 0x8000 | (0x80 << 1));
        assert_eq!(Status::from_field(0x8000 | (0x80 << 1) | 1), (s, true));
        // Linux NVME_SC_CONNECT_INVALID_PARAM = 0x182: SCT 1, SC 82h.
        let c = Status::new(StatusCode::CONNECT_INVALID_PARAMETERS);
        assert_eq!(c.to_field(false) >> 1, 0x182);
    }

    // NVM Command Set 1.0 §3.1
    #[test]
    fn debug_names_ambiguous_codes() {
        assert_eq!(
            format!("{:?}", StatusCode::LBA_OUT_OF_RANGE),
            "StatusCode::LBA_OUT_OF_RANGE"
        );
        assert_eq!(
            format!("{:?}", StatusCode::CONFLICTING_ATTRIBUTES),
            "StatusCode::CONFLICTING_ATTRIBUTES|CONNECT_INCOMPATIBLE_FORMAT"
        );
        let unknown = StatusCode {
            sct: Sct(2),
            sc: 0x7f,
        };
        assert_eq!(format!("{unknown:?}"), "StatusCode(Sct::MEDIA, 0x7f)");
    }
}
