//! The framer: cuts a received byte stream into validated [`Pdu`]s, and the [`DecodeError`]
//! that reports every violation.
//!
//! Framing runs in three phases, each entered only when enough bytes are buffered:
//! 1. the 8-byte common header is checked against the PDU type, our role, the negotiated
//!    digests and alignment and the configured limits (`validate.rs`), so a hostile PLEN is
//!    refused before any of it is buffered;
//! 2. once HLEN (+ HDGST) bytes are in, the header digest is verified and the PSH parsed;
//! 3. once PLEN bytes are in, they are split off the buffer and frozen, the data becomes a
//!    `Bytes` view of them (no copy) and the data digest is verified.
//!
//! [`Framer::decode`] has the signature of `tokio_util::codec::Decoder::decode`, so the target
//! wraps it in a one-line `Decoder` impl without this crate depending on tokio:
//!
//! ```text
//! impl tokio_util::codec::Decoder for PduCodec {
//!     type Item = Pdu;
//!     type Error = ConnectionError; // From<DecodeError> + From<std::io::Error>
//!     fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Pdu>, Self::Error> {
//!         Ok(self.framer.decode(src)?)
//!     }
//! }
//! ```
//!
//! Note that `FramedRead` ends the stream after the first `Err`; a caller that wants to go on
//! after a (non-fatal) [`DecodeError::DataDigest`] drives the framer from its own read loop.

mod validate;

use bytes::{Bytes, BytesMut};

pub use crate::tcp::{DecodeError, ErrorHeader};
use validate::{Plan, check_common};

use crate::tcp::digest::crc32c;
use crate::tcp::{
    C2hData, CapsuleCmd, CapsuleResp, CommonHeader, DIGEST_LEN, Digests, H2cData, IcReq, IcResp,
    Pda, Pdu, PduType, R2t, TermReq,
};

/// Which end of the connection this framer decodes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The controller side: decodes host-to-controller PDUs (ICReq, H2CTermReq, CapsuleCmd,
    /// H2CData).
    Target,
    /// The host side: decodes controller-to-host PDUs (ICResp, C2HTermReq, CapsuleResp,
    /// C2HData, R2T).
    Host,
}

/// Limits and negotiated parameters the framer validates against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramerConfig {
    /// Our role.
    pub role: Role,
    /// Negotiated digests; none until the IC exchange completes.
    pub digests: Digests,
    /// The PDU data alignment we asked the peer for (our CPDA as a target, our HPDA as a host):
    /// PDO of every data PDU received must be a multiple of it.
    pub rx_pda: Pda,
    /// Most data bytes in one H2CData (target: the MAXH2CDATA we announced) or C2HData (host).
    pub max_data_len: u32,
    /// Most in-capsule data bytes in one CapsuleCmd (target only).
    pub max_in_capsule_data: u32,
    /// Absolute ceiling on PLEN, whatever the type. Keep it at least
    /// [`FramerConfig::plen_for_limits`] when raising the data limits.
    pub max_plen: u32,
}

impl FramerConfig {
    /// The largest PLEN the data limits allow: the biggest header (CapsuleCmd, 72 bytes),
    /// header digest, the most padding (128-byte alignment), the data and its digest.
    pub const fn plen_for_limits(&self) -> u32 {
        let data = if self.max_data_len > self.max_in_capsule_data {
            self.max_data_len
        } else {
            self.max_in_capsule_data
        };
        data.saturating_add(128 + 4 + 4)
    }

    /// Defaults for a controller: 128 KiB MAXH2CDATA, the 8 KiB in-capsule data the
    /// specification gives admin queues (NVMe-oF 1.1 §7.4.3), no digests, 4-byte alignment.
    pub const fn target() -> Self {
        Self {
            role: Role::Target,
            digests: Digests::NONE,
            rx_pda: Pda(0),
            max_data_len: 128 * 1024,
            //= NVMe/TCP 1.0 §3.3.1, Figure 11
            //# The maximum amount of in-capsule data for Fabrics and Admin Commands is
            //# 8,192 bytes ...
            //# 1. NVMe/TCP controllers must support in-capsule data for Fabrics and Admin Command
            //# Capsules.
            max_in_capsule_data: 8192,
            max_plen: 128 * 1024 + 256,
        }
    }

    /// Defaults for a host: C2HData up to 8 MiB (Linux nvmet sends a whole read in one PDU),
    /// no digests, 4-byte alignment.
    pub const fn host() -> Self {
        Self {
            role: Role::Host,
            digests: Digests::NONE,
            rx_pda: Pda(0),
            max_data_len: 8 * 1024 * 1024,
            max_in_capsule_data: 0,
            max_plen: 8 * 1024 * 1024 + 256,
        }
    }
}

/// Whether the ICReq/ICResp exchange has been seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    AwaitingIc,
    Established,
}

/// A PDU whose header is validated and parsed, waiting for its data.
#[derive(Debug, Clone)]
struct Pending {
    plan: Plan,
    /// The parsed PSH with empty data; `None` for a TermReq, parsed whole in phase 3.
    pdu: Option<Pdu>,
}

/// Incremental NVMe/TCP decoder for one connection.
#[derive(Debug, Clone)]
pub struct Framer {
    config: FramerConfig,
    phase: Phase,
    pending: Option<Pending>,
}

impl Framer {
    /// A framer for a new connection: it expects the ICReq (target) or ICResp (host) first.
    pub const fn new(config: FramerConfig) -> Self {
        Self {
            config,
            phase: Phase::AwaitingIc,
            pending: None,
        }
    }

    /// Current configuration.
    pub const fn config(&self) -> &FramerConfig {
        &self.config
    }

    /// Changes limits or negotiated parameters; takes effect from the next PDU header.
    pub fn config_mut(&mut self) -> &mut FramerConfig {
        &mut self.config
    }

    /// Turns on the digests negotiated in the IC exchange (call it after sending the ICResp, or
    /// after receiving it, and before decoding the next PDU).
    pub fn set_digests(&mut self, digests: Digests) {
        self.config.digests = digests;
    }

    /// Whether the ICReq/ICResp has been decoded.
    pub fn is_established(&self) -> bool {
        self.phase == Phase::Established
    }

    /// Decodes the next PDU from the front of `buf`.
    ///
    /// Returns `Ok(None)` when more bytes are needed (having reserved room for them), and
    /// `Ok(Some(pdu))` after removing exactly that PDU's bytes from `buf`. On a fatal error the
    /// buffer is left as it was and the connection must be terminated; on
    /// [`DecodeError::DataDigest`] the PDU's bytes have been consumed and decoding may go on.
    //= NVMe/TCP 1.0 §2, Figure 6
    //# As shown in Figure 5 and Figure 6, there is no requirement to align NVMe/TCP PDU Headers nor
    //# PDU payloads to TCP/IP packet boundaries.
    // A PDU may arrive in any number of pieces; `decode` waits for the rest.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Pdu>, DecodeError> {
        if self.pending.is_none() {
            let Some(pending) = self.decode_header(buf)? else {
                return Ok(None);
            };
            self.pending = Some(pending);
        }
        let plen = self.pending.as_ref().map_or(0, |p| p.plan.plen);
        if buf.len() < plen {
            buf.reserve(plen - buf.len());
            return Ok(None);
        }
        let Some(pending) = self.pending.take() else {
            return Ok(None);
        };
        let frame = buf.split_to(plen).freeze();
        let pdu = finish(pending, &frame)?;
        if matches!(pdu, Pdu::IcReq(_) | Pdu::IcResp(_)) {
            self.phase = Phase::Established;
        }
        Ok(Some(pdu))
    }

    /// Phases 1 and 2: validate the CH, then verify HDGST and parse the PSH.
    fn decode_header(&self, buf: &mut BytesMut) -> Result<Option<Pending>, DecodeError> {
        let Some(ch) = CommonHeader::parse(buf) else {
            return Ok(None);
        };
        let plan = check_common(&self.config, self.phase, ch, buf)?;
        if buf.len() < plan.full_hlen {
            buf.reserve(plan.plen.saturating_sub(buf.len()));
            return Ok(None);
        }
        let head = buf.get(..plan.full_hlen).unwrap_or_default();
        verify_header_digest(&plan, head)?;
        let hlen = usize::from(ch.hlen);
        let psh = head.get(..hlen).unwrap_or_default();
        let pdu = parse_psh(&plan, psh)?;
        Ok(Some(Pending { plan, pdu }))
    }
}

//= NVMe/TCP 1.0 §3.3.1.1
//# If the PDU Header Digest is enabled, the header digest is contained within the HDGST field
//# of the PDU and protects the PDU Header.
// HDGST is the CRC32C of the CH and PSH (HLEN bytes).
//= NVMe/TCP 1.0 §3.5
//# ... when a controller detects a PDU Header digest error, the controller shall treat the
//# error as a fatal transport error with the Fatal Error Status field set to “Header Digest
//# Error”.
fn verify_header_digest(plan: &Plan, head: &[u8]) -> Result<(), DecodeError> {
    let hlen = usize::from(plan.ch.hlen);
    if plan.full_hlen == hlen {
        return Ok(());
    }
    let covered = head.get(..hlen).unwrap_or_default();
    let received = read_digest(head, hlen);
    let computed = crc32c(covered);
    if received != computed {
        return Err(DecodeError::HeaderDigest {
            pdu_type: plan.ch.pdu_type,
            received,
            computed,
            header: ErrorHeader::copy_from(head),
        });
    }
    Ok(())
}

fn read_digest(buf: &[u8], at: usize) -> u32 {
    buf.get(at..at + DIGEST_LEN)
        .and_then(|s| <[u8; DIGEST_LEN]>::try_from(s).ok())
        .map_or(0, u32::from_le_bytes)
}

fn parse_psh(plan: &Plan, psh: &[u8]) -> Result<Option<Pdu>, DecodeError> {
    let flags = plan.ch.flags;
    let pdu = match plan.ch.pdu_type {
        PduType::IC_REQ => Pdu::IcReq(IcReq::decode(psh)?),
        PduType::IC_RESP => Pdu::IcResp(IcResp::decode(psh)?),
        PduType::CAPSULE_CMD => Pdu::CapsuleCmd(CapsuleCmd::decode_psh(psh)?),
        PduType::CAPSULE_RESP => Pdu::CapsuleResp(CapsuleResp::decode_psh(psh)?),
        PduType::H2C_DATA => Pdu::H2cData(H2cData::decode_psh(psh, flags, plan.data_len)?),
        PduType::C2H_DATA => Pdu::C2hData(C2hData::decode_psh(psh, flags, plan.data_len)?),
        PduType::R2T => Pdu::R2t(R2t::decode_psh(psh)?),
        // TermReq is parsed whole once its data is in; validate.rs rejected everything else.
        _ => return Ok(None),
    };
    Ok(Some(pdu))
}

/// Phase 3: attach the data (a view of `frame`) and verify the data digest.
fn finish(pending: Pending, frame: &Bytes) -> Result<Pdu, DecodeError> {
    let plan = pending.plan;
    let Some(mut pdu) = pending.pdu else {
        let term = TermReq::decode(frame).unwrap_or_default();
        return Ok(match plan.ch.pdu_type {
            PduType::H2C_TERM_REQ => Pdu::H2cTermReq(term),
            _ => Pdu::C2hTermReq(term),
        });
    };
    if plan.data_len == 0 {
        return Ok(pdu);
    }
    let end = plan.data_offset + plan.data_len;
    let data = frame.slice(plan.data_offset..end.min(frame.len()));
    let command_id = match &mut pdu {
        Pdu::CapsuleCmd(p) => {
            p.data = data.clone();
            p.sqe.cid
        }
        Pdu::H2cData(p) => {
            p.data = data.clone();
            p.cccid
        }
        Pdu::C2hData(p) => {
            p.data = data.clone();
            p.cccid
        }
        _ => return Ok(pdu),
    };
    verify_data_digest(&plan, frame, &data, command_id)?;
    Ok(pdu)
}

//= NVMe/TCP 1.0 §3.3.1.1
//# If data digest is enabled, the data digest is contained
//# within the DDGST field of the PDU and protects the PDU Data.
// DDGST is the CRC32C of the PDU data (not the padding before it).
//= NVMe/TCP 1.0 §3.5
//# A PDU data digest error impacts the integrity of PDU data but does not impact the TCP byte
//# stream synchronization. A PDU data digest error detected by the host or the controller is
//# treated as a non-fatal transport error.
// Reported per command (DecodeError::DataDigest); the stream goes on.
fn verify_data_digest(
    plan: &Plan,
    frame: &Bytes,
    data: &[u8],
    command_id: u16,
) -> Result<(), DecodeError> {
    if plan.ddgst_len == 0 {
        return Ok(());
    }
    let received = read_digest(frame, plan.data_offset + plan.data_len);
    let computed = crc32c(data);
    if received != computed {
        return Err(DecodeError::DataDigest {
            pdu_type: plan.ch.pdu_type,
            command_id,
            received,
            computed,
        });
    }
    Ok(())
}
