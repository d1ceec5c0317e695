//! NVMe structures (NVMe Base Specification 2.0, NVM Command Set 1.0): the SQE and its typed
//! command views, SGL descriptors, the CQE and its status, opcodes, Identify data structures,
//! log pages, features, asynchronous events and NQN/text fields.

mod admin_cmd;
mod aer;
mod cqe;
pub mod features;
pub mod identify;
mod io_cmd;
pub mod log_page;
mod opcode;
mod sgl;
mod sqe;
mod status;
pub mod strings;

pub use admin_cmd::{Abort, GetFeatures, GetLogPage, Identify, SetFeatures, SimpleAdmin};
pub use aer::{AsyncEvent, AsyncEventType, NoticeInfo};
pub use cqe::{CQE_CID_OFFSET, CQE_LEN, CQE_SQHD_OFFSET, CQE_SQID_OFFSET, CQE_STATUS_OFFSET, Cqe};
pub use io_cmd::{DSM_RANGE_LEN, DatasetManagement, DsmRange, Flush, ReadWrite, WriteZeroes};
pub use opcode::{AdminOpcode, DataDirection, IoOpcode};
pub use sgl::{SGL_DESC_LEN, SGL_ID_OFFSET, SglDescType, SglDescriptor, SglId, SglSubtype};
pub use sqe::{
    Fuse, Psdt, SQE_CDW2_OFFSET, SQE_CDW3_OFFSET, SQE_CDW10_OFFSET, SQE_CID_OFFSET,
    SQE_DPTR_OFFSET, SQE_LEN, SQE_MPTR_OFFSET, SQE_NSID_OFFSET, Sqe,
};
pub use status::{Sct, Status, StatusCode};
pub use strings::{DISCOVERY_NQN, Nqn, NqnError};
