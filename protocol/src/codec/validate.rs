//! Phase one of framing: the rules a received common header must satisfy, checked on its
//! 8 bytes alone, before the framer waits for the rest of the PDU. A hostile PLEN (4 GiB) is
//! therefore refused at once instead of making the receiver buffer it.
//!
//! Fields are checked in wire order (type, flags, HLEN, PDO, PLEN) so that the error reported
//! is the one with the lowest offset, as the specification's FEI implies and FreeBSD's
//! `nvmf_tcp_validate_pdu_header` does.

use super::{FramerConfig, Phase, Role};
use crate::tcp::{CommonHeader, DIGEST_LEN, MAX_TERM_REQ_PLEN, PduFlags, PduType, TERM_REQ_HLEN};
use crate::tcp::{DecodeError, ErrorHeader};

/// Where the parts of an accepted PDU lie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) ch: CommonHeader,
    /// HLEN plus the header digest, if present.
    pub(crate) full_hlen: usize,
    pub(crate) data_offset: usize,
    pub(crate) data_len: usize,
    pub(crate) ddgst_len: usize,
    pub(crate) plen: usize,
}

/// Validates the common header `ch` found at the start of `buf` (used only to copy the
/// offending header into errors).
pub(crate) fn check_common(
    config: &FramerConfig,
    phase: Phase,
    ch: CommonHeader,
    buf: &[u8],
) -> Result<Plan, DecodeError> {
    let t = ch.pdu_type;
    let header = || error_header(ch, buf);
    let Some(expected_hlen) = t.header_len() else {
        return Err(DecodeError::UnknownPduType {
            pdu_type: t,
            header: header(),
        });
    };
    check_direction_and_sequence(config.role, phase, ch, buf)?;
    if t == PduType::H2C_TERM_REQ || t == PduType::C2H_TERM_REQ {
        return check_term_req(ch, buf);
    }
    check_flags(config, ch, buf)?;
    if ch.hlen != expected_hlen {
        return Err(DecodeError::HeaderLength {
            pdu_type: t,
            hlen: ch.hlen,
            expected: expected_hlen,
            header: header(),
        });
    }
    let full_hlen = usize::from(ch.hlen) + config.digests.header_len(t);
    let plan = if t.may_have_data_digest() {
        plan_data_pdu(config, ch, buf, full_hlen)?
    } else {
        plan_header_only(ch, buf, full_hlen)?
    };
    check_limits(config, &plan, buf)?;
    Ok(plan)
}

fn error_header(ch: CommonHeader, buf: &[u8]) -> ErrorHeader {
    let hd = if ch.flags.contains(PduFlags::HDGSTF) {
        DIGEST_LEN
    } else {
        0
    };
    let extent = (usize::from(ch.hlen) + hd).max(crate::tcp::CH_LEN);
    ErrorHeader::copy_from(buf.get(..extent.min(buf.len())).unwrap_or(buf))
}

//= NVMe/TCP 1.0 §3.3, Figure 10
//# Associated with each NVMe/TCP PDU type is a direction that specifies whether the NVMe/TCP PDU is
//# transferred from a host to a controller (H2C) or from a controller to a host (C2H). An NVMe/TCP
//# PDU that is transferred in a direction opposite from that with which it is associated is treated
//# as a fatal transport error (refer to section 3.5).
// A controller receives only ICReq, H2CTermReq, CapsuleCmd and H2CData; a host only ICResp,
// C2HTermReq, CapsuleResp, C2HData and R2T.
//= NVMe/TCP 1.0 §3.1
//# Once a TCP connection has been established, the host sends an Initialize Connection Request
//# (ICReq) PDU to the controller. When a controller receives an ICReq PDU, that controller responds
//# with an Initialize Connection Response (ICResp) PDU.
// ICReq/ICResp are exchanged once, first; any other PDU before them (except a TermReq), or a
// second IC PDU, is a PDU Sequence Error.
fn check_direction_and_sequence(
    role: Role,
    phase: Phase,
    ch: CommonHeader,
    buf: &[u8],
) -> Result<(), DecodeError> {
    let t = ch.pdu_type;
    let allowed = match role {
        Role::Target => t.is_host_to_controller(),
        Role::Host => t.is_controller_to_host(),
    };
    if !allowed {
        return Err(DecodeError::WrongDirection {
            pdu_type: t,
            header: error_header(ch, buf),
        });
    }
    let is_ic = t == PduType::IC_REQ || t == PduType::IC_RESP;
    let is_term = t == PduType::H2C_TERM_REQ || t == PduType::C2H_TERM_REQ;
    let in_sequence = match phase {
        Phase::AwaitingIc => is_ic || is_term,
        Phase::Established => !is_ic,
    };
    if !in_sequence {
        return Err(DecodeError::Sequence {
            pdu_type: t,
            header: error_header(ch, buf),
        });
    }
    Ok(())
}

//= NVMe/TCP 1.0 §3.5
//# The maximum H2CTermReq PDU data size shall not exceed 128 bytes. The controller shall ignore a
//# H2CTermReq PDU with a PDU length (PLEN) that exceeds 152 bytes (24-byte PDU Header plus 128-byte
//# PDU data) and shall terminate the connection immediately. Additionally, the controller shall
//# ignore a H2CTermReq PDU with PLEN less than 24 bytes and shall terminate the connection
//# immediately.
// A TermReq with an invalid length terminates the connection without a TermReq in response
// (the host side applies the same bounds to C2HTermReq).
//= NVMe/TCP 1.0 §3.6.2.4, Figure 22
//# FLAGS: Reserved
//# HLEN: Fixed length of 24 bytes (18h).
//# PDO: Reserved
//# PLEN: Total length of PDU (including PDU Header and DATA) in bytes. This value shall not exceed
//# a limit of 152 bytes.
// FLAGS must be 0, HLEN 24 and PDO 0.
fn check_term_req(ch: CommonHeader, buf: &[u8]) -> Result<Plan, DecodeError> {
    let plen = usize::try_from(ch.plen).unwrap_or(usize::MAX);
    if !(TERM_REQ_HLEN..=MAX_TERM_REQ_PLEN).contains(&plen) {
        return Err(DecodeError::TermReqLength { plen: ch.plen });
    }
    let t = ch.pdu_type;
    if ch.flags.0 != 0 {
        return Err(DecodeError::ReservedField {
            pdu_type: t,
            offset: crate::tcp::header::CH_FLAGS_OFFSET,
            header: error_header(ch, buf),
        });
    }
    if usize::from(ch.hlen) != TERM_REQ_HLEN {
        return Err(DecodeError::HeaderLength {
            pdu_type: t,
            hlen: ch.hlen,
            expected: 24,
            header: error_header(ch, buf),
        });
    }
    if ch.pdo != 0 {
        return Err(DecodeError::DataOffset {
            pdu_type: t,
            pdo: ch.pdo,
            header: error_header(ch, buf),
        });
    }
    Ok(Plan {
        ch,
        full_hlen: TERM_REQ_HLEN,
        data_offset: TERM_REQ_HLEN,
        data_len: plen - TERM_REQ_HLEN,
        ddgst_len: 0,
        plen,
    })
}

//= NVMe/TCP 1.0 §3.3.1.1
//# If the PDU Header Digest is enabled, then all the subsequent PDUs transferred in this connection
//# except H2CTermReq and C2HTermReq PDUs shall contain a HDGST field and have the HDGSTF flag set
//# to ‘1’ in the PDU Header FLAGS field. ... If PDU Header Digest is not enabled, then all
//# subsequent PDUs shall not contain a HDGST field and shall have the HDGSTF flag, if defined,
//# cleared to ‘0’ in the PDU Header FLAGS field.
// HDGSTF is set if and only if header digests were negotiated, on PDUs that may carry one.
//= NVMe/TCP 1.0 §3.3.1.1
//# If the PDU Data Digest is not enabled, then these PDUs shall not contain a DDGST field and shall
//# have the DDGSTF flag cleared to ‘0’ in the PDU Header FLAGS field.
// DDGSTF only if data digests were negotiated; bits a PDU type does not define are reserved.
//= NVMe/TCP 1.0 §3.3.2.1
//# Reception of a C2HData PDU with the SUCCESS flag set to ‘1’ and the LAST_PDU flag cleared to ‘0’
//# is treated as a fatal transport error with the Fatal Error Status field in the H2CTermReq PDU
//# set to “Invalid PDU Header Field” and the Additional Error Information field containing the
//# FLAGS field byte offset.
fn check_flags(config: &FramerConfig, ch: CommonHeader, buf: &[u8]) -> Result<(), DecodeError> {
    let t = ch.pdu_type;
    let valid = t.valid_flags();
    if ch.flags.0 & !valid.0 != 0 {
        return Err(DecodeError::ReservedField {
            pdu_type: t,
            offset: crate::tcp::header::CH_FLAGS_OFFSET,
            header: error_header(ch, buf),
        });
    }
    let hd_expected = config.digests.header && t.may_have_header_digest();
    let bad_hd = ch.flags.contains(PduFlags::HDGSTF) != hd_expected;
    let bad_dd = ch.flags.contains(PduFlags::DDGSTF) && !config.digests.data;
    let bad_success =
        ch.flags.contains(PduFlags::SUCCESS) && !ch.flags.contains(PduFlags::LAST_PDU);
    if bad_hd || bad_dd || bad_success {
        return Err(DecodeError::InvalidFlags {
            pdu_type: t,
            flags: ch.flags,
            header: error_header(ch, buf),
        });
    }
    Ok(())
}

/// ICReq, ICResp, CapsuleResp, R2T: PDO 0 and PLEN = HLEN (+ HDGST).
fn plan_header_only(ch: CommonHeader, buf: &[u8], full_hlen: usize) -> Result<Plan, DecodeError> {
    let t = ch.pdu_type;
    if ch.pdo != 0 {
        return Err(DecodeError::DataOffset {
            pdu_type: t,
            pdo: ch.pdo,
            header: error_header(ch, buf),
        });
    }
    if usize::try_from(ch.plen).ok() != Some(full_hlen) {
        return Err(DecodeError::PduLength {
            pdu_type: t,
            plen: ch.plen,
            header: error_header(ch, buf),
        });
    }
    Ok(Plan {
        ch,
        full_hlen,
        data_offset: 0,
        data_len: 0,
        ddgst_len: 0,
        plen: full_hlen,
    })
}

//= NVMe/TCP 1.0 §3.6.2.1, Figure 19
//# PDU Data Offset (PDO): PDU Data Offset from the start of the PDU in bytes.
//# PDU Length (PLEN): Total length of PDU (includes CH, PSH, HDGST, PAD, DATA, and DDGST) in bytes.
// PDO is 0 when there is no data; otherwise at least HLEN (+ HDGST).
//= NVMe/TCP 1.0 §3.6.2.6, Figure 24
//# PDO: Data offset within PDU. This value shall be a multiple of the data alignment specified by
//# the CPDA field in the ICResp PDU (refer to section 3.6.2.3) that was previously sent by the
//# controller on this TCP connection.
// The receiver checks PDO against its own alignment (CPDA for H2C PDUs, HPDA for C2H PDUs).
//= NVMe/TCP 1.0 §3.3.1.1
//# If the PDU Data Digest is enabled, then Command Capsule PDUs containing in-capsule data, H2CData
//# PDUs, and C2HData PDUs transferred in this connection shall contain a DDGST field and have the
//# DDGSTF flag set to ‘1’ in the PDU Header FLAGS field.
// Data without DDGSTF on a connection with data digests is an Invalid PDU Header Field.
fn plan_data_pdu(
    config: &FramerConfig,
    ch: CommonHeader,
    buf: &[u8],
    full_hlen: usize,
) -> Result<Plan, DecodeError> {
    let t = ch.pdu_type;
    let plen = usize::try_from(ch.plen).unwrap_or(usize::MAX);
    let pdo = usize::from(ch.pdo);
    let bad_pdo = || DecodeError::DataOffset {
        pdu_type: t,
        pdo: ch.pdo,
        header: error_header(ch, buf),
    };
    let bad_plen = || DecodeError::PduLength {
        pdu_type: t,
        plen: ch.plen,
        header: error_header(ch, buf),
    };
    if pdo == 0 {
        // No data: the same rules as a header-only PDU.
        return plan_header_only(ch, buf, full_hlen);
    }
    if pdo < full_hlen || !pdo.is_multiple_of(config.rx_pda.alignment_bytes()) {
        return Err(bad_pdo());
    }
    if plen < pdo {
        return Err(bad_plen());
    }
    let rest = plen - pdo;
    let ddgst_len = if ch.flags.contains(PduFlags::DDGSTF) && rest > 0 {
        DIGEST_LEN
    } else {
        0
    };
    if rest > 0 && rest <= ddgst_len {
        // A data digest with no data in front of it.
        return Err(bad_plen());
    }
    let data_len = rest - ddgst_len;
    if data_len > 0 && config.digests.data && ddgst_len == 0 {
        return Err(DecodeError::InvalidFlags {
            pdu_type: t,
            flags: ch.flags,
            header: error_header(ch, buf),
        });
    }
    Ok(Plan {
        ch,
        full_hlen,
        data_offset: pdo,
        data_len,
        ddgst_len,
        plen,
    })
}

//= NVMe/TCP 1.0 §3.3.2.2
//# Reception of a H2CData PDU with a data length which exceeds MAXH2CDATA is treated as a fatal
//# transport error with the Fatal Error Status field in the C2HTermReq PDU set to “Data Transfer
//# Limit Exceeded”.
//= NVMe/TCP 1.0 §3.3.1, Figure 11
//# The maximum amount of in-capsule data for Fabrics and Admin Commands is 8,192 bytes, causing
//# their maximum size to be 8,256 bytes (i.e., 64 bytes + 8,192 bytes). ... The maximum I/O Queue
//# Command Capsule size is specified by the I/O Queue Command Capsule Supported Size (IOCCSZ) field
//# in the Identify Controller data structure.
// More in-capsule data than the configured size is reported as Data Transfer Limit Exceeded too.
fn check_limits(config: &FramerConfig, plan: &Plan, buf: &[u8]) -> Result<(), DecodeError> {
    let t = plan.ch.pdu_type;
    let limit = match t {
        PduType::CAPSULE_CMD => Some(config.max_in_capsule_data),
        PduType::H2C_DATA | PduType::C2H_DATA => Some(config.max_data_len),
        _ => None,
    };
    let data_len = u64::try_from(plan.data_len).unwrap_or(u64::MAX);
    if let Some(limit) = limit.filter(|l| data_len > u64::from(*l)) {
        return Err(DecodeError::DataLimitExceeded {
            pdu_type: t,
            data_len,
            limit,
            header: error_header(plan.ch, buf),
        });
    }
    // The absolute ceiling catches what no negotiated limit covers.
    if plan.ch.plen > config.max_plen {
        return Err(DecodeError::PduLength {
            pdu_type: t,
            plen: plan.ch.plen,
            header: error_header(plan.ch, buf),
        });
    }
    Ok(())
}
