//! JSON-RPC error objects: the one place where Lamina's RPC error codes are chosen.
//!
//! Codes follow SPDK's JSON-RPC server so existing tooling (`scripts/rpc.py`, runbooks that match
//! on codes) keeps working: the JSON-RPC 2.0 reserved codes for protocol faults, and negative
//! errno values for domain errors (`-ENODEV` not found, `-EEXIST` exists, `-EBUSY` in use,
//! `-ENOSPC` no space, `-EINVAL` invalid value). Every message says what is wrong and, where it
//! helps, what to do about it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An error answered to a JSON-RPC request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("JSON-RPC error {code}: {message}")]
pub struct RpcError {
    /// The JSON-RPC error code.
    pub code: i32,
    /// A human-readable message naming the problem.
    pub message: String,
    /// Optional structured detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// JSON-RPC 2.0: invalid JSON was received.
pub const PARSE_ERROR: i32 = -32700;
/// JSON-RPC 2.0: the JSON sent is not a valid request object.
pub const INVALID_REQUEST: i32 = -32600;
/// JSON-RPC 2.0: the method does not exist.
pub const METHOD_NOT_FOUND: i32 = -32601;
/// JSON-RPC 2.0: invalid method parameters.
pub const INVALID_PARAMS: i32 = -32602;
/// JSON-RPC 2.0: internal error.
pub const INTERNAL_ERROR: i32 = -32603;
/// SPDK: the method exists but is not callable in the current state.
pub const INVALID_STATE: i32 = -1;
/// `-EPERM`: operation not permitted.
pub const EPERM: i32 = -1;
/// `-ENOENT`: no such file or directory.
pub const ENOENT: i32 = -2;
/// `-EIO`: input/output error.
pub const EIO: i32 = -5;
/// `-ENOMEM`: out of memory.
pub const ENOMEM: i32 = -12;
/// `-EBUSY`: device or resource busy.
pub const EBUSY: i32 = -16;
/// `-EEXIST`: already exists.
pub const EEXIST: i32 = -17;
/// `-ENODEV`: no such device.
pub const ENODEV: i32 = -19;
/// `-EINVAL`: invalid argument.
pub const EINVAL: i32 = -22;
/// `-ENOSPC`: no space left on device.
pub const ENOSPC: i32 = -28;
/// `-EROFS`: read-only.
pub const EROFS: i32 = -30;
/// `-ETIMEDOUT`: timed out.
pub const ETIMEDOUT: i32 = -110;
/// `-ENOTSUP`: operation not supported.
pub const ENOTSUP: i32 = -95;

impl RpcError {
    /// An error with a code and a message.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// The request could not be parsed as JSON.
    pub fn parse_error(detail: impl std::fmt::Display) -> Self {
        Self::new(PARSE_ERROR, format!("Parse error: {detail}"))
    }

    /// The JSON is not a valid JSON-RPC 2.0 request.
    pub fn invalid_request(detail: impl std::fmt::Display) -> Self {
        Self::new(INVALID_REQUEST, format!("Invalid request: {detail}"))
    }

    /// No method of that name.
    pub fn method_not_found(method: &str) -> Self {
        Self::new(
            METHOD_NOT_FOUND,
            format!("Method not found: '{method}' (rpc_get_methods lists the methods)"),
        )
    }

    /// Bad or missing parameters; the detail names the parameter.
    pub fn invalid_params(detail: impl std::fmt::Display) -> Self {
        Self::new(INVALID_PARAMS, format!("Invalid parameters: {detail}"))
    }

    /// An internal failure.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::new(INTERNAL_ERROR, format!("Internal error: {detail}"))
    }

    /// The object named does not exist (`-ENODEV`).
    pub fn not_found(detail: impl std::fmt::Display) -> Self {
        Self::new(ENODEV, detail.to_string())
    }

    /// The object already exists (`-EEXIST`).
    pub fn exists(detail: impl std::fmt::Display) -> Self {
        Self::new(EEXIST, detail.to_string())
    }

    /// The object is in use (`-EBUSY`).
    pub fn busy(detail: impl std::fmt::Display) -> Self {
        Self::new(EBUSY, detail.to_string())
    }

    /// A value is out of its domain (`-EINVAL`).
    pub fn invalid(detail: impl std::fmt::Display) -> Self {
        Self::new(EINVAL, detail.to_string())
    }

    /// Out of space (`-ENOSPC`).
    pub fn no_space(detail: impl std::fmt::Display) -> Self {
        Self::new(ENOSPC, detail.to_string())
    }

    /// A short, bounded label for metrics: the code's name, never the free-text message.
    pub fn code_label(&self) -> &'static str {
        match self.code {
            PARSE_ERROR => "parse_error",
            INVALID_REQUEST => "invalid_request",
            METHOD_NOT_FOUND => "method_not_found",
            INVALID_PARAMS => "invalid_params",
            INTERNAL_ERROR => "internal_error",
            EPERM => "eperm",
            ENOENT => "enoent",
            EIO => "eio",
            ENOMEM => "enomem",
            EBUSY => "ebusy",
            EEXIST => "eexist",
            ENODEV => "enodev",
            EINVAL => "einval",
            ENOSPC => "enospc",
            EROFS => "erofs",
            ENOTSUP => "enotsup",
            _ => "other",
        }
    }
}

impl From<crate::plane::bdev::BdevError> for RpcError {
    fn from(e: crate::plane::bdev::BdevError) -> Self {
        use crate::plane::bdev::BdevError;
        let code = match &e {
            BdevError::NotFound(_) => ENODEV,
            BdevError::Exists(_) => EEXIST,
            BdevError::Claimed { .. } => EBUSY,
            BdevError::BadName(_) => EINVAL,
        };
        Self::new(code, e.to_string())
    }
}

impl From<&lamina_lvol::LvolError> for RpcError {
    fn from(e: &lamina_lvol::LvolError) -> Self {
        use lamina_lvol::LvolError;
        let code = match e {
            LvolError::NotFound(_) | LvolError::Deleted | LvolError::NoLvstore => ENODEV,
            LvolError::Exists(_) => EEXIST,
            LvolError::Busy(_)
            | LvolError::HasClones(_)
            | LvolError::Unloaded
            | LvolError::Closed => EBUSY,
            LvolError::NoSpace { .. } | LvolError::MetadataFull(_) => ENOSPC,
            LvolError::ReadOnly => EROFS,
            LvolError::OutOfRange { .. }
            | LvolError::Misaligned { .. }
            | LvolError::InvalidArgument(_) => EINVAL,
            LvolError::Corrupt(_) | LvolError::StoreFailed | LvolError::Device(_) => EIO,
        };
        Self::new(code, e.to_string())
    }
}

impl From<lamina_lvol::LvolError> for RpcError {
    fn from(e: lamina_lvol::LvolError) -> Self {
        Self::from(&e)
    }
}

impl From<crate::plane::subsystem::SubsystemError> for RpcError {
    fn from(e: crate::plane::subsystem::SubsystemError) -> Self {
        use crate::plane::subsystem::SubsystemError;
        let code = match &e {
            SubsystemError::NsidInUse(_) => EEXIST,
            SubsystemError::BadNsid { .. } | SubsystemError::Discovery => EINVAL,
            SubsystemError::Lifecycle(_) => EBUSY,
            SubsystemError::Full(_) => ENOSPC,
            SubsystemError::NoNamespace(_) => ENODEV,
            SubsystemError::AutoVisible(_) => EPERM,
        };
        Self::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_without_empty_data() {
        let e = RpcError::not_found("lvol 'lvs0/x' not found");
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"code": -19, "message": "lvol 'lvs0/x' not found"})
        );
    }

    #[test]
    fn labels_are_bounded() {
        assert_eq!(RpcError::busy("x").code_label(), "ebusy");
        assert_eq!(RpcError::new(-1234, "x").code_label(), "other");
        assert_eq!(
            RpcError::method_not_found("m").code_label(),
            "method_not_found"
        );
    }
}
