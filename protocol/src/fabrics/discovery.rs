//! The Discovery log page (LID 70h): a 1024-byte header (GENCTR, NUMREC, RECFMT) followed by
//! 1024-byte entries, one per subsystem port a host may connect to.

use bytes::BytesMut;

use crate::nvme::strings::{Nqn, put_space_padded, read_space_padded};
use crate::wire::{Reader, StructDecodeError, Writer, open_enum};

//~ NVMe-oF 1.1, Discovery Log Page figure: GENCTR (0..8), NUMREC (8..16), RECFMT
//~ (16..18), reserved to 1024, then NUMREC entries of 1024 bytes.
/// Size of the header.
pub const DISCOVERY_HEADER_LEN: usize = 1024;
/// Size of one entry.
pub const DISCOVERY_ENTRY_LEN: usize = 1024;

/// Byte offsets of a Discovery Log Page Entry.
//~ NVMe-oF 1.1, Discovery Log Page Entry figure: TRTYPE (0), ADRFAM (1), SUBTYPE (2),
//~ TREQ (3), PORTID (4), CNTLID (6), ASQSZ (8), EFLAGS (10), TRSVCID (32..64), SUBNQN
//~ (256..512), TRADDR (512..768), TSAS (768..1024).
pub mod entry_offsets {
    /// Transport Type.
    pub const TRTYPE: usize = 0;
    /// Address Family.
    pub const ADRFAM: usize = 1;
    /// Subsystem Type.
    pub const SUBTYPE: usize = 2;
    /// Transport Requirements.
    pub const TREQ: usize = 3;
    /// Port ID.
    pub const PORTID: usize = 4;
    /// Controller ID.
    pub const CNTLID: usize = 6;
    /// Admin Max SQ Size.
    pub const ASQSZ: usize = 8;
    /// Entry Flags.
    pub const EFLAGS: usize = 10;
    /// Transport Service Identifier (32 bytes).
    pub const TRSVCID: usize = 32;
    /// Subsystem NQN.
    pub const SUBNQN: usize = 256;
    /// Transport Address (256 bytes).
    pub const TRADDR: usize = 512;
    /// Transport Specific Address Subtype (256 bytes).
    pub const TSAS: usize = 768;
}
use entry_offsets as o;

/// Size of TRSVCID.
pub const TRSVCID_LEN: usize = 32;
/// Size of TRADDR.
pub const TRADDR_LEN: usize = 256;

open_enum! {
    //~ NVMe-oF 1.1, Transport Type codes.
    /// Transport Type.
    pub struct TrType(u8) {
        /// RDMA.
        RDMA = 1,
        /// Fibre Channel.
        FC = 2,
        /// TCP.
        TCP = 3,
        /// Intra-host loopback.
        LOOP = 254,
    }
}

open_enum! {
    //~ NVMe-oF 1.1, Address Family codes.
    /// Address Family.
    pub struct AdrFam(u8) {
        /// IPv4.
        IPV4 = 1,
        /// IPv6.
        IPV6 = 2,
        /// InfiniBand.
        IB = 3,
        /// Fibre Channel.
        FC = 4,
        /// Intra-host.
        INTRA_HOST = 254,
    }
}

open_enum! {
    //~ NVMe-oF 1.1, Subsystem Type codes.
    /// Subsystem Type of an entry.
    pub struct SubType(u8) {
        /// A referral to another discovery service.
        REFERRAL = 1,
        /// An NVM subsystem with I/O controllers.
        NVME = 2,
        /// The discovery subsystem answering (current discovery subsystem).
        CURRENT_DISCOVERY = 3,
    }
}

/// Transport Requirements: secure channel (1:0) and SQ flow control disable (bit 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Treq(pub u8);

impl Treq {
    /// Secure channel not specified.
    pub const NOT_SPECIFIED: Self = Self(0);
    /// Secure channel required.
    pub const REQUIRED: Self = Self(1);
    /// Secure channel not required.
    pub const NOT_REQUIRED: Self = Self(2);
    /// SQ flow control disable supported (Linux NVMF_TREQ_DISABLE_SQFLOW).
    pub const DISABLE_SQFLOW: u8 = 1 << 2;
}

/// Entry Flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EFlags(pub u16);

impl EFlags {
    /// Duplicate Returned Information.
    pub const DUPRETINFO: u16 = 1 << 0;
    /// Explicit Persistent Connection Support for Discovery.
    pub const EPCSD: u16 = 1 << 1;
    /// No CDC Connectivity.
    pub const NCC: u16 = 1 << 2;
}

//= NVMe/TCP 1.0 §3.6.1.1, Figure 17
//# Security Type (SECTYPE): Specifies the type of security used by the NVMe/TCP port. If SECTYPE
//# is a value of 0h (No Security), then the host shall set up a normal TCP connection.
//# 00 No Security
//# 01 Transport Layer Security (TLS) version 1.2 (refer to NVMe-oF 1.1).
//# 02 Transport Layer Security (TLS) version 1.3 (refer to RFC 8446) or a subsequent version.
//# 255:01 Reserved
// SECTYPE is byte 0 of the TSAS; bytes 1..256 are reserved.
/// TCP security type in TSAS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SecType(pub u8);

impl SecType {
    /// No security.
    pub const NONE: Self = Self(0);
    /// TLS 1.2.
    pub const TLS12: Self = Self(1);
    /// TLS 1.3.
    pub const TLS13: Self = Self(2);
}

/// One Discovery Log Page Entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryLogEntry {
    /// Transport Type.
    pub trtype: TrType,
    /// Address Family.
    pub adrfam: AdrFam,
    /// Subsystem Type.
    pub subtype: SubType,
    /// Transport Requirements.
    pub treq: Treq,
    /// NVM subsystem port.
    pub portid: u16,
    /// Controller ID: FFFFh for the dynamic controller model.
    pub cntlid: u16,
    /// Admin Max SQ Size.
    pub asqsz: u16,
    /// Entry Flags.
    pub eflags: EFlags,
    /// Transport Service Identifier (TCP: the port number as text), ≤ 32 bytes.
    pub trsvcid: String,
    /// Subsystem NQN.
    pub subnqn: Nqn,
    /// Transport Address (TCP: the IP address as text), ≤ 256 bytes.
    pub traddr: String,
    /// TCP security type (TSAS byte 0).
    pub sectype: SecType,
}

impl DiscoveryLogEntry {
    /// Bytes `encode` appends.
    pub const fn encoded_len(&self) -> usize {
        DISCOVERY_ENTRY_LEN
    }

    /// Appends the 1024-byte entry. TRSVCID and TRADDR are space padded, as SPDK does and as
    /// nvme-cli strips.
    pub fn encode(&self, dst: &mut BytesMut) {
        let mut w = Writer::append(dst, DISCOVERY_ENTRY_LEN);
        w.bytes(
            o::TRTYPE,
            &[self.trtype.0, self.adrfam.0, self.subtype.0, self.treq.0],
        );
        w.u16(o::PORTID, self.portid);
        w.u16(o::CNTLID, self.cntlid);
        w.u16(o::ASQSZ, self.asqsz);
        w.u16(o::EFLAGS, self.eflags.0);
        put_space_padded(&mut w, o::TRSVCID, TRSVCID_LEN, &self.trsvcid);
        w.bytes(o::SUBNQN, &self.subnqn.to_field());
        put_space_padded(&mut w, o::TRADDR, TRADDR_LEN, &self.traddr);
        w.u8(o::TSAS, self.sectype.0);
    }

    /// Parses an entry; TRSVCID and TRADDR may be padded with spaces or NULs.
    pub fn decode(src: &[u8]) -> Result<Self, StructDecodeError> {
        let r = Reader::new(src, "Discovery log entry", DISCOVERY_ENTRY_LEN)?;
        Ok(Self {
            trtype: TrType(r.u8(o::TRTYPE)?),
            adrfam: AdrFam(r.u8(o::ADRFAM)?),
            subtype: SubType(r.u8(o::SUBTYPE)?),
            treq: Treq(r.u8(o::TREQ)?),
            portid: r.u16(o::PORTID)?,
            cntlid: r.u16(o::CNTLID)?,
            asqsz: r.u16(o::ASQSZ)?,
            eflags: EFlags(r.u16(o::EFLAGS)?),
            trsvcid: read_space_padded(&r, o::TRSVCID, TRSVCID_LEN)?,
            subnqn: Nqn::read(&r, o::SUBNQN, "SUBNQN")?,
            traddr: read_space_padded(&r, o::TRADDR, TRADDR_LEN)?,
            sectype: SecType(r.u8(o::TSAS)?),
        })
    }
}

/// The Discovery log page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiscoveryLogPage {
    /// Generation Counter: changes whenever the page changes.
    pub genctr: u64,
    /// Number of Records: the total, even when fewer entries were transferred.
    pub numrec: u64,
    /// Record Format (0).
    pub recfmt: u16,
    /// Entries transferred.
    pub entries: Vec<DiscoveryLogEntry>,
}

impl DiscoveryLogPage {
    /// A page holding `entries`, with NUMREC set to their count.
    pub fn new(genctr: u64, entries: Vec<DiscoveryLogEntry>) -> Self {
        let numrec = u64::try_from(entries.len()).unwrap_or(u64::MAX);
        Self {
            genctr,
            numrec,
            recfmt: 0,
            entries,
        }
    }

    /// Bytes `encode` appends.
    pub fn encoded_len(&self) -> usize {
        DISCOVERY_HEADER_LEN + DISCOVERY_ENTRY_LEN * self.entries.len()
    }

    /// Appends the header and the entries. The controller then serves the byte range the Get
    /// Log Page asks for (LPO, NUMD) out of it.
    pub fn encode(&self, dst: &mut BytesMut) {
        let mut w = Writer::append(dst, DISCOVERY_HEADER_LEN);
        w.u64(0, self.genctr);
        w.u64(8, self.numrec);
        w.u16(16, self.recfmt);
        for e in &self.entries {
            e.encode(dst);
        }
    }

    /// Parses a page. Only the entries present in `src` are decoded (at most NUMREC), since a
    /// host reads the header first and the entries in a second Get Log Page.
    pub fn decode(src: &[u8]) -> Result<Self, StructDecodeError> {
        let r = Reader::new(src, "Discovery log header", 18)?;
        let numrec = r.u64(8)?;
        let present = src.len().saturating_sub(DISCOVERY_HEADER_LEN) / DISCOVERY_ENTRY_LEN;
        let count = usize::try_from(numrec).map_or(present, |n| n.min(present));
        let entries = src
            .get(DISCOVERY_HEADER_LEN..)
            .unwrap_or_default()
            .chunks_exact(DISCOVERY_ENTRY_LEN)
            .take(count)
            .map(DiscoveryLogEntry::decode)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            genctr: r.u64(0)?,
            numrec,
            recfmt: r.u16(16)?,
            entries,
        })
    }
}
