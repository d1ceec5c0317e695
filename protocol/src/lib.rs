//! Sans-IO codec for NVMe over TCP.
//!
//! This crate owns every byte Lamina puts on or takes off the wire. It implements:
//!
//! - the NVMe/TCP Transport Specification 1.0 (with the NVMe-oF 1.1 §7.4 rules it inherited):
//!   the common header, all nine PDUs, header and data digests (CRC32C), PDU data alignment and
//!   padding, in-capsule data, the C2HData LAST_PDU and SUCCESS flags, and Fatal Error Status;
//! - the NVMe structures those PDUs carry, from the NVMe Base Specification 2.0, the NVM
//!   Command Set Specification 1.0 and NVMe over Fabrics 1.1: the SQE and typed command views,
//!   SGL descriptors, the CQE and its status codes, Identify data, log pages, features,
//!   asynchronous events, Fabrics Connect/Property/Disconnect/Authentication and the Discovery
//!   log page.
//!
//! Wire rules cite the TCP transport specification as s2n-quic cites RFCs: a
//! `//= NVMe/TCP 1.0 §<section>, Figure <n>` line, then the requirement quoted in `//#` lines,
//! then how the code applies it; tests that prove a rule name the same section.
//! `.ci/citations.py` lists every citation with its tests (and fails on a malformed one).
//! Rules from documents whose text is not at hand to quote (NVMe Base 2.0, NVMe-oF 1.1, the
//! Linux host) are marked `//~` with their source and a paraphrase.
//!
//! It contains no networking code, no runtime and no clocks: the target (`lamina-target`, a
//! tokio server) and Lamina's own initiator (`lamina-integration`) drive it with bytes.
//!
//! # Layering
//!
//! - `wire` (private): little-endian field access by offset, and the
//!   [`StructDecodeError`] of every structure decoder.
//! - [`nvme`] and [`fabrics`]: fixed layouts with named offsets; `encode` into a `BytesMut`,
//!   `decode` from bytes, typed views of an [`nvme::Sqe`] built with `TryFrom<&Sqe>`. Command
//!   faults found here become a CQE status; the connection lives on.
//! - [`tcp`]: one module per PDU, with PDO/PLEN arithmetic and digests. Each data PDU can
//!   also be encoded head-only ([`tcp::CapsuleCmd::encode_head`] and friends) so the payload
//!   `Bytes` goes to a vectored write without being copied.
//! - [`codec`]: the [`Framer`], an incremental decoder with the shape of
//!   `tokio_util::codec::Decoder::decode`, and [`DecodeError`], which carries the Fatal Error
//!   Status, the Fatal Error Information and the offending header for the TermReq that reports
//!   a transport fault before the connection is closed.
//! - [`target`]: the controller side of one queue, [`target::TargetQueue`]: bytes in, commands
//!   up to the controller, completions down, bytes out, time passed in. Every rule of the
//!   queue (ICReq, Connect first, CIDs in flight, SQ size and head, R2T/H2CData windows, data
//!   digest errors, C2HData SUCCESS) is decided there, and a broken one ends the queue with a
//!   typed [`target::QueueError`] and its TermReq. The target's connection task only moves
//!   bytes between its socket and this core.
//! - [`recycle`]: buffers lent out as `Bytes` and taken back once every view is dropped.
//!
//! Payloads of decoded PDUs are `Bytes` views of the receive buffer: no PDU data is copied.
//! Nothing here panics on peer input.
//!
//! In the path of one Read through Lamina's target, this crate is the first and the last
//! step: `TargetQueue::handle_input` frames the CapsuleCmd (limits, header digest), admits
//! its CID, advances the SQ head and checks the Transport SGL against MDTS; the server runs
//! the command; `TargetQueue::complete` encodes the C2HData head (the data stays the
//! backend's `Bytes`) and `poll_transmit` hands the segments to one vectored write. The
//! target crate's documentation has the whole path.
//!
//! # Example
//!
//! A controller frames an ICReq, then a Write command capsule with 512 bytes of in-capsule
//! data that arrives in two pieces with both digests on:
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use lamina_protocol::nvme::{IoOpcode, ReadWrite, SglDescriptor};
//! use lamina_protocol::tcp::{CapsuleCmd, Digests, IcReq, Pda, Pdu, TxParams};
//! use lamina_protocol::{Framer, FramerConfig};
//!
//! let mut framer = Framer::new(FramerConfig::target());
//!
//! // The host's ICReq asks for both digests.
//! let mut rx = BytesMut::new();
//! IcReq { digests: Digests::BOTH, ..IcReq::default() }.encode(&mut rx);
//! let Some(Pdu::IcReq(req)) = framer.decode(&mut rx)? else { unreachable!() };
//! // ... the target answers with an ICResp, then turns the digests on.
//! framer.set_digests(req.digests);
//!
//! // The host sends a Write with its data in the capsule.
//! let write = ReadWrite {
//!     opcode: IoOpcode::WRITE,
//!     cid: 1,
//!     nsid: 1,
//!     slba: 0,
//!     nlb: 0,
//!     dptr: SglDescriptor::in_capsule(0, 512),
//!     ..ReadWrite::default()
//! };
//! let pdu = Pdu::CapsuleCmd(CapsuleCmd { sqe: write.to_sqe(), data: Bytes::from(vec![0x5a; 512]) });
//! let mut wire = BytesMut::new();
//! pdu.encode(TxParams { digests: Digests::BOTH, peer_pda: Pda(0) }, &mut wire)?;
//!
//! // It arrives in two reads; the framer waits for the whole PDU.
//! let second = wire.split_off(100);
//! rx.extend_from_slice(&wire);
//! assert_eq!(framer.decode(&mut rx)?, None);
//! rx.extend_from_slice(&second);
//! let Some(Pdu::CapsuleCmd(cmd)) = framer.decode(&mut rx)? else { unreachable!() };
//! assert_eq!(ReadWrite::try_from(&cmd.sqe)?.block_count(), 1);
//! assert_eq!(cmd.data.len(), 512);
//! assert!(rx.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
pub mod fabrics;
pub mod nvme;
pub mod recycle;
pub mod target;
pub mod tcp;
mod wire;

pub use codec::{DecodeError, ErrorHeader, Framer, FramerConfig, Role};
pub use tcp::Pdu;
pub use wire::StructDecodeError;
