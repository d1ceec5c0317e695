//! Identify data structures: Identify Controller (CNS 01h), Identify Namespace (CNS 00h), the
//! Active Namespace ID lists (CNS 02h, 07h), the Namespace Identification Descriptor list
//! (CNS 03h), the NVM command set specific Identify Namespace and Controller (CNS 05h, 06h),
//! the I/O Command Set Independent Identify Namespace (CNS 08h) and the I/O Command Set data
//! structure (CNS 1Ch).

mod cs_ns;
mod ctrl;
mod iocs;
mod lists;
mod ns;
mod nvm_ctrl;

pub use cs_ns::{
    ExtendedLbaFormat, IdentifyNamespaceIndependent, IdentifyNamespaceNvm, indep_offsets,
};
pub use ctrl::{IdentifyController, PowerStateDescriptor, ctrl_offsets};
pub use iocs::{IOCS_VECTORS, IoCommandSetList, IoCommandSetVector};
pub use lists::{NidType, NsIdDescriptor, NsIdList};
pub use ns::{IdentifyNamespace, LbaFormat, ns_offsets};
pub use nvm_ctrl::IdentifyControllerNvm;

use crate::wire::open_enum;

//~ NVMe Base 2.0: every Identify data structure is 4096 bytes.
/// Size of every Identify data structure.
pub const IDENTIFY_LEN: usize = 4096;

open_enum! {
    //~ NVMe Base 2.0, CNS values figure.
    /// Controller or Namespace Structure selector of Identify.
    pub struct Cns(u8) {
        /// Identify Namespace (NVM command set).
        NAMESPACE = 0x00,
        /// Identify Controller.
        CONTROLLER = 0x01,
        /// Active Namespace ID list.
        ACTIVE_NS_LIST = 0x02,
        /// Namespace Identification Descriptor list.
        NS_ID_DESCRIPTORS = 0x03,
        /// NVM Set list.
        NVM_SET_LIST = 0x04,
        /// I/O command set specific Identify Namespace.
        CSI_NAMESPACE = 0x05,
        /// I/O command set specific Identify Controller.
        CSI_CONTROLLER = 0x06,
        /// Active Namespace ID list for a command set.
        CSI_ACTIVE_NS_LIST = 0x07,
        /// I/O command set independent Identify Namespace.
        CS_INDEPENDENT_NAMESPACE = 0x08,
        /// Allocated Namespace ID list.
        ALLOCATED_NS_LIST = 0x10,
        /// Identify Namespace for an allocated NSID.
        ALLOCATED_NAMESPACE = 0x11,
        /// Controllers attached to a namespace.
        NS_CONTROLLER_LIST = 0x12,
        /// Controllers in the subsystem.
        CONTROLLER_LIST = 0x13,
        /// I/O Command Set data structure.
        COMMAND_SET = 0x1C,
    }
}

open_enum! {
    //~ NVMe Base 2.0, Command Set Identifiers figure.
    /// Command Set Identifier.
    pub struct Csi(u8) {
        /// NVM command set.
        NVM = 0x00,
        /// Key Value command set.
        KEY_VALUE = 0x01,
        /// Zoned Namespace command set.
        ZONED = 0x02,
    }
}
