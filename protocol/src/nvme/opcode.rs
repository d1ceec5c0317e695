//! Admin and NVM I/O command opcodes.

use crate::wire::open_enum;

open_enum! {
    //~ NVMe Base 2.0, Admin Command Set opcodes figure; NVMe-oF 1.1: 7Fh is Fabrics.
    /// Admin command opcode.
    pub struct AdminOpcode(u8) {
        /// Delete I/O Submission Queue.
        DELETE_IO_SQ = 0x00,
        /// Create I/O Submission Queue.
        CREATE_IO_SQ = 0x01,
        /// Get Log Page.
        GET_LOG_PAGE = 0x02,
        /// Delete I/O Completion Queue.
        DELETE_IO_CQ = 0x04,
        /// Create I/O Completion Queue.
        CREATE_IO_CQ = 0x05,
        /// Identify.
        IDENTIFY = 0x06,
        /// Abort.
        ABORT = 0x08,
        /// Set Features.
        SET_FEATURES = 0x09,
        /// Get Features.
        GET_FEATURES = 0x0A,
        /// Asynchronous Event Request.
        ASYNC_EVENT_REQUEST = 0x0C,
        /// Namespace Management.
        NS_MANAGEMENT = 0x0D,
        /// Firmware Commit.
        FIRMWARE_COMMIT = 0x10,
        /// Firmware Image Download.
        FIRMWARE_DOWNLOAD = 0x11,
        /// Device Self-test.
        DEVICE_SELF_TEST = 0x14,
        /// Namespace Attachment.
        NS_ATTACHMENT = 0x15,
        /// Keep Alive.
        KEEP_ALIVE = 0x18,
        /// Directive Send.
        DIRECTIVE_SEND = 0x19,
        /// Directive Receive.
        DIRECTIVE_RECEIVE = 0x1A,
        /// Virtualization Management.
        VIRTUALIZATION_MANAGEMENT = 0x1C,
        /// NVMe-MI Send.
        NVME_MI_SEND = 0x1D,
        /// NVMe-MI Receive.
        NVME_MI_RECEIVE = 0x1E,
        /// Capacity Management.
        CAPACITY_MANAGEMENT = 0x20,
        /// Lockdown.
        LOCKDOWN = 0x24,
        /// Doorbell Buffer Config.
        DOORBELL_BUFFER_CONFIG = 0x7C,
        /// Fabrics command; the command type is in FCTYPE.
        FABRICS = 0x7F,
        /// Format NVM.
        FORMAT_NVM = 0x80,
        /// Security Send.
        SECURITY_SEND = 0x81,
        /// Security Receive.
        SECURITY_RECEIVE = 0x82,
        /// Sanitize.
        SANITIZE = 0x84,
        /// Get LBA Status.
        GET_LBA_STATUS = 0x86,
    }
}

open_enum! {
    //= NVM Command Set 1.0 §3.2, Figure 18
    //# The NVM Command Set includes the commands listed in Figure 18. ...
    //# NOTES:
    //# 1. Opcodes not listed are reserved. ...
    //# 3. Indicates the data transfer direction of the command. ... 00b = no data transfer; 01b =
    //# host to controller; 10b = controller to host; 11b = bidirectional.
    // Plus the Fabrics opcode 7Fh on any queue, which this document does not list.
    /// NVM command set I/O opcode.
    pub struct IoOpcode(u8) {
        /// Flush.
        FLUSH = 0x00,
        /// Write.
        WRITE = 0x01,
        /// Read.
        READ = 0x02,
        /// Write Uncorrectable.
        WRITE_UNCORRECTABLE = 0x04,
        /// Compare.
        COMPARE = 0x05,
        /// Write Zeroes.
        WRITE_ZEROES = 0x08,
        /// Dataset Management.
        DATASET_MANAGEMENT = 0x09,
        /// Verify.
        VERIFY = 0x0C,
        /// Reservation Register.
        RESERVATION_REGISTER = 0x0D,
        /// Reservation Report.
        RESERVATION_REPORT = 0x0E,
        /// Reservation Acquire.
        RESERVATION_ACQUIRE = 0x11,
        /// Reservation Release.
        RESERVATION_RELEASE = 0x15,
        /// Copy.
        COPY = 0x19,
        /// Fabrics command (Connect and Disconnect may be sent on I/O queues).
        FABRICS = 0x7F,
    }
}

/// Data transfer direction encoded in bits 1:0 of every opcode.
//~ NVMe Base 2.0, Opcodes for Admin/NVM commands: bits 1:0 give the data transfer direction:
//~ 00b none, 01b host to controller, 10b controller to host, 11b bidirectional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataDirection {
    /// No data.
    None,
    /// Host to controller (write-type).
    HostToController,
    /// Controller to host (read-type).
    ControllerToHost,
    /// Bidirectional.
    Bidirectional,
}

impl DataDirection {
    /// Direction of an opcode (Admin, I/O and Fabrics opcodes share the rule; for Fabrics it
    /// applies to FCTYPE).
    pub const fn of(opcode: u8) -> Self {
        match opcode & 0x3 {
            0 => Self::None,
            1 => Self::HostToController,
            2 => Self::ControllerToHost,
            _ => Self::Bidirectional,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // NVM Command Set 1.0 §3.2
    #[test]
    fn directions() {
        assert_eq!(
            DataDirection::of(IoOpcode::WRITE.0),
            DataDirection::HostToController
        );
        assert_eq!(
            DataDirection::of(IoOpcode::READ.0),
            DataDirection::ControllerToHost
        );
        assert_eq!(
            DataDirection::of(AdminOpcode::IDENTIFY.0),
            DataDirection::ControllerToHost
        );
        assert_eq!(DataDirection::of(IoOpcode::FLUSH.0), DataDirection::None);
        assert_eq!(format!("{:?}", IoOpcode(0x02)), "IoOpcode::READ");
    }
}
