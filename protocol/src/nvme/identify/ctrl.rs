//! Identify Controller (CNS 01h): the 4096-byte structure with every field the Linux host
//! reads, including the fabrics fields IOCCSZ/IORCSZ/ICDOFF/FCATT/MSDBD.

use bytes::BytesMut;

use super::IDENTIFY_LEN;
use crate::nvme::strings::{Nqn, put_space_padded, read_space_padded};
use crate::wire::{Reader, StructDecodeError, Writer};

/// Byte offsets of the Identify Controller fields.
//~ NVMe Base 2.0, Identify Controller Data Structure figure; NVMe-oF 1.1 for
//~ bytes 1792..2047 (fabrics). Checked against Linux include/linux/nvme.h `struct
//~ nvme_id_ctrl` and SPDK `spdk_nvme_ctrlr_data`.
pub mod ctrl_offsets {
    /// PCI Vendor ID.
    pub const VID: usize = 0;
    /// PCI Subsystem Vendor ID.
    pub const SSVID: usize = 2;
    /// Serial Number (20 bytes ASCII).
    pub const SN: usize = 4;
    /// Model Number (40 bytes ASCII).
    pub const MN: usize = 24;
    /// Firmware Revision (8 bytes ASCII).
    pub const FR: usize = 64;
    /// Recommended Arbitration Burst.
    pub const RAB: usize = 72;
    /// IEEE OUI.
    pub const IEEE: usize = 73;
    /// Controller Multi-Path I/O and Namespace Sharing Capabilities.
    pub const CMIC: usize = 76;
    /// Maximum Data Transfer Size.
    pub const MDTS: usize = 77;
    /// Controller ID.
    pub const CNTLID: usize = 78;
    /// Version.
    pub const VER: usize = 80;
    /// RTD3 Resume Latency.
    pub const RTD3R: usize = 84;
    /// RTD3 Entry Latency.
    pub const RTD3E: usize = 88;
    /// Optional Asynchronous Events Supported.
    pub const OAES: usize = 92;
    /// Controller Attributes.
    pub const CTRATT: usize = 96;
    /// Read Recovery Levels Supported.
    pub const RRLS: usize = 100;
    /// Controller Type.
    pub const CNTRLTYPE: usize = 111;
    /// FRU GUID.
    pub const FGUID: usize = 112;
    /// Command Retry Delay Time 1..3.
    pub const CRDT1: usize = 128;
    /// Optional Admin Command Support.
    pub const OACS: usize = 256;
    /// Abort Command Limit.
    pub const ACL: usize = 258;
    /// Asynchronous Event Request Limit.
    pub const AERL: usize = 259;
    /// Firmware Updates.
    pub const FRMW: usize = 260;
    /// Log Page Attributes.
    pub const LPA: usize = 261;
    /// Error Log Page Entries.
    pub const ELPE: usize = 262;
    /// Number of Power States Support.
    pub const NPSS: usize = 263;
    /// Admin Vendor Specific Command Configuration.
    pub const AVSCC: usize = 264;
    /// Autonomous Power State Transition Attributes.
    pub const APSTA: usize = 265;
    /// Warning Composite Temperature Threshold.
    pub const WCTEMP: usize = 266;
    /// Critical Composite Temperature Threshold.
    pub const CCTEMP: usize = 268;
    /// Maximum Time for Firmware Activation.
    pub const MTFA: usize = 270;
    /// Host Memory Buffer Preferred Size.
    pub const HMPRE: usize = 272;
    /// Host Memory Buffer Minimum Size.
    pub const HMMIN: usize = 276;
    /// Total NVM Capacity.
    pub const TNVMCAP: usize = 280;
    /// Unallocated NVM Capacity.
    pub const UNVMCAP: usize = 296;
    /// Keep Alive Support (100 ms units).
    pub const KAS: usize = 320;
    /// Host Controlled Thermal Management Attributes.
    pub const HCTMA: usize = 322;
    /// Minimum Thermal Management Temperature.
    pub const MNTMT: usize = 324;
    /// Maximum Thermal Management Temperature.
    pub const MXTMT: usize = 326;
    /// Sanitize Capabilities.
    pub const SANICAP: usize = 328;
    /// ANA Transition Time.
    pub const ANATT: usize = 342;
    /// ANA Capabilities.
    pub const ANACAP: usize = 343;
    /// ANA Group Identifier Maximum.
    pub const ANAGRPMAX: usize = 344;
    /// Number of ANA Group Identifiers.
    pub const NANAGRPID: usize = 348;
    /// Submission Queue Entry Size.
    pub const SQES: usize = 512;
    /// Completion Queue Entry Size.
    pub const CQES: usize = 513;
    /// Maximum Outstanding Commands.
    pub const MAXCMD: usize = 514;
    /// Number of Namespaces.
    pub const NN: usize = 516;
    /// Optional NVM Command Support.
    pub const ONCS: usize = 520;
    /// Fused Operation Support.
    pub const FUSES: usize = 522;
    /// Format NVM Attributes.
    pub const FNA: usize = 524;
    /// Volatile Write Cache.
    pub const VWC: usize = 525;
    /// Atomic Write Unit Normal.
    pub const AWUN: usize = 526;
    /// Atomic Write Unit Power Fail.
    pub const AWUPF: usize = 528;
    /// I/O Command Set Vendor Specific Command Configuration.
    pub const ICSVSCC: usize = 530;
    /// Namespace Write Protection Capabilities.
    pub const NWPC: usize = 531;
    /// Atomic Compare & Write Unit.
    pub const ACWU: usize = 532;
    /// Optional Copy Formats Supported.
    pub const OCFS: usize = 534;
    /// SGL Support.
    pub const SGLS: usize = 536;
    /// Maximum Number of Allowed Namespaces.
    pub const MNAN: usize = 540;
    /// NVM Subsystem NVMe Qualified Name.
    pub const SUBNQN: usize = 768;
    /// I/O Queue Command Capsule Supported Size (16-byte units).
    pub const IOCCSZ: usize = 1792;
    /// I/O Queue Response Capsule Supported Size (16-byte units).
    pub const IORCSZ: usize = 1796;
    /// In Capsule Data Offset (16-byte units).
    pub const ICDOFF: usize = 1800;
    /// Fabrics Controller Attributes.
    pub const FCATT: usize = 1802;
    /// Maximum SGL Data Block Descriptors.
    pub const MSDBD: usize = 1803;
    /// Optional Fabric Commands Support.
    pub const OFCS: usize = 1804;
    /// Discovery Controller Type.
    pub const DCTYPE: usize = 1806;
    /// Power State Descriptors (32 × 32 bytes).
    pub const PSD: usize = 2048;
    /// Vendor Specific.
    pub const VS: usize = 3072;
}

use ctrl_offsets as o;

/// Size of one power state descriptor.
pub const PSD_LEN: usize = 32;

//~ NVMe Base 2.0, Power State Descriptor Data Structure figure.
/// One power state descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PowerStateDescriptor {
    /// Maximum Power (centiwatts, or 0.0001 W when MXPS is set).
    pub max_power: u16,
    /// Byte 3: MXPS (bit 0), NOPS (bit 1).
    pub flags: u8,
    /// Entry Latency (µs).
    pub entry_lat_us: u32,
    /// Exit Latency (µs).
    pub exit_lat_us: u32,
    /// Relative Read Throughput, Latency, Write Throughput, Latency.
    pub relative: [u8; 4],
    /// Idle Power.
    pub idle_power: u16,
    /// Idle Power Scale (byte 18).
    pub idle_scale: u8,
    /// Active Power.
    pub active_power: u16,
    /// Active Power Workload and Scale (byte 22).
    pub active_work_scale: u8,
}

impl PowerStateDescriptor {
    fn write(&self, w: &mut Writer<'_>, at: usize) {
        w.u16(at, self.max_power);
        w.u8(at + 3, self.flags);
        w.u32(at + 4, self.entry_lat_us);
        w.u32(at + 8, self.exit_lat_us);
        w.bytes(at + 12, &self.relative);
        w.u16(at + 16, self.idle_power);
        w.u8(at + 18, self.idle_scale);
        w.u16(at + 20, self.active_power);
        w.u8(at + 22, self.active_work_scale);
    }

    fn read(r: &Reader<'_>, at: usize) -> Result<Self, StructDecodeError> {
        Ok(Self {
            max_power: r.u16(at)?,
            flags: r.u8(at + 3)?,
            entry_lat_us: r.u32(at + 4)?,
            exit_lat_us: r.u32(at + 8)?,
            relative: r.array(at + 12)?,
            idle_power: r.u16(at + 16)?,
            idle_scale: r.u8(at + 18)?,
            active_power: r.u16(at + 20)?,
            active_work_scale: r.u8(at + 22)?,
        })
    }
}

/// Identify Controller data structure. Fields not listed are reserved or unused by Lamina and
/// its hosts, and are encoded as zero.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdentifyController {
    /// PCI Vendor ID.
    pub vid: u16,
    /// PCI Subsystem Vendor ID.
    pub ssvid: u16,
    /// Serial Number (≤ 20 ASCII characters, space padded on the wire).
    pub serial_number: String,
    /// Model Number (≤ 40 ASCII characters).
    pub model_number: String,
    /// Firmware Revision (≤ 8 ASCII characters).
    pub firmware_revision: String,
    /// Recommended Arbitration Burst.
    pub rab: u8,
    /// IEEE OUI Identifier.
    pub ieee: [u8; 3],
    /// CMIC: bit 0 multi-port, bit 1 multi-controller, bit 3 ANA reporting.
    pub cmic: u8,
    /// Maximum Data Transfer Size as a power of two of the minimum page size; 0 = no limit.
    pub mdts: u8,
    /// Controller ID. The Linux host drops a controller whose CNTLID differs from Connect's.
    pub cntlid: u16,
    /// Version (same encoding as the VS property).
    pub ver: u32,
    /// RTD3 Resume Latency (µs).
    pub rtd3r: u32,
    /// RTD3 Entry Latency (µs).
    pub rtd3e: u32,
    /// Optional Asynchronous Events Supported. The Linux host arms only the AERs advertised
    /// here (bit 8 Namespace Attribute Notices, bit 11 ANA Change, bit 31 Discovery Log Page
    /// Change).
    pub oaes: u32,
    /// Controller Attributes (bit 0: 128-bit Host Identifier).
    pub ctratt: u32,
    /// Read Recovery Levels Supported.
    pub rrls: u16,
    /// Controller Type: 1 I/O, 2 discovery, 3 administrative.
    pub cntrltype: u8,
    /// FRU Globally Unique Identifier.
    pub fguid: [u8; 16],
    /// Command Retry Delay Times 1..3 (100 ms units).
    pub crdt: [u16; 3],
    /// Optional Admin Command Support.
    pub oacs: u16,
    /// Abort Command Limit (0's based).
    pub acl: u8,
    /// Asynchronous Event Request Limit (0's based).
    pub aerl: u8,
    /// Firmware Updates.
    pub frmw: u8,
    /// Log Page Attributes (bit 1 Commands Supported and Effects, bit 2 extended data).
    pub lpa: u8,
    /// Error Log Page Entries (0's based).
    pub elpe: u8,
    /// Number of Power States Support (0's based).
    pub npss: u8,
    /// Admin Vendor Specific Command Configuration.
    pub avscc: u8,
    /// Autonomous Power State Transition Attributes.
    pub apsta: u8,
    /// Warning Composite Temperature Threshold (K).
    pub wctemp: u16,
    /// Critical Composite Temperature Threshold (K).
    pub cctemp: u16,
    /// Maximum Time for Firmware Activation (100 ms units).
    pub mtfa: u16,
    /// Host Memory Buffer Preferred Size (PCIe only; 0 over fabrics).
    pub hmpre: u32,
    /// Host Memory Buffer Minimum Size.
    pub hmmin: u32,
    /// Total NVM Capacity (bytes).
    pub tnvmcap: u128,
    /// Unallocated NVM Capacity (bytes).
    pub unvmcap: u128,
    /// Keep Alive Support in 100 ms units. The Linux host refuses a fabrics controller with 0.
    pub kas: u16,
    /// Host Controlled Thermal Management Attributes.
    pub hctma: u16,
    /// Minimum Thermal Management Temperature (K).
    pub mntmt: u16,
    /// Maximum Thermal Management Temperature (K).
    pub mxtmt: u16,
    /// Sanitize Capabilities.
    pub sanicap: u32,
    /// ANA Transition Time (s).
    pub anatt: u8,
    /// ANA Capabilities.
    pub anacap: u8,
    /// ANA Group Identifier Maximum.
    pub anagrpmax: u32,
    /// Number of ANA Group Identifiers.
    pub nanagrpid: u32,
    /// Submission Queue Entry Size (max 7:4, required 3:0, log2 bytes).
    pub sqes: u8,
    /// Completion Queue Entry Size.
    pub cqes: u8,
    /// Maximum Outstanding Commands.
    pub maxcmd: u16,
    /// Number of Namespaces (highest valid NSID).
    pub nn: u32,
    /// Optional NVM Command Support (bit 0 Compare, 2 DSM, 3 Write Zeroes, 5 Reservations).
    pub oncs: u16,
    /// Fused Operation Support.
    pub fuses: u16,
    /// Format NVM Attributes.
    pub fna: u8,
    /// Volatile Write Cache (bit 0 present; bits 2:1 flush-all behaviour).
    pub vwc: u8,
    /// Atomic Write Unit Normal.
    pub awun: u16,
    /// Atomic Write Unit Power Fail.
    pub awupf: u16,
    /// I/O Command Set Vendor Specific Command Configuration.
    pub icsvscc: u8,
    /// Namespace Write Protection Capabilities.
    pub nwpc: u8,
    /// Atomic Compare & Write Unit.
    pub acwu: u16,
    /// Optional Copy Formats Supported.
    pub ocfs: u16,
    /// SGL Support (bits 1:0 SGLs supported, bit 2 Keyed, bit 20 Offset/in-capsule, ...).
    pub sgls: u32,
    /// Maximum Number of Allowed Namespaces.
    pub mnan: u32,
    /// NVM Subsystem NQN.
    pub subnqn: Option<Nqn>,
    /// I/O Queue Command Capsule Supported Size, 16-byte units (≥ 4).
    pub ioccsz: u32,
    /// I/O Queue Response Capsule Supported Size, 16-byte units (≥ 1).
    pub iorcsz: u32,
    /// In Capsule Data Offset, 16-byte units.
    pub icdoff: u16,
    /// Fabrics Controller Attributes (bit 0: static controller model).
    pub fcatt: u8,
    /// Maximum SGL Data Block Descriptors (0 = no limit).
    pub msdbd: u8,
    /// Optional Fabric Commands Support.
    pub ofcs: u16,
    /// Discovery Controller Type.
    pub dctype: u8,
    /// Power State Descriptors 0..31.
    pub psd: [PowerStateDescriptor; 32],
}

impl IdentifyController {
    /// Size on the wire.
    pub const SIZE: usize = IDENTIFY_LEN;

    /// Bytes `encode` appends.
    pub const fn encoded_len(&self) -> usize {
        Self::SIZE
    }

    /// Appends the 4096-byte structure to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        let mut w = Writer::append(dst, Self::SIZE);
        self.encode_identity(&mut w);
        self.encode_capabilities(&mut w);
        self.encode_nvm_and_fabrics(&mut w);
        for (i, psd) in self.psd.iter().enumerate() {
            psd.write(&mut w, o::PSD + i * PSD_LEN);
        }
    }

    fn encode_identity(&self, w: &mut Writer<'_>) {
        w.u16(o::VID, self.vid);
        w.u16(o::SSVID, self.ssvid);
        put_space_padded(w, o::SN, 20, &self.serial_number);
        put_space_padded(w, o::MN, 40, &self.model_number);
        put_space_padded(w, o::FR, 8, &self.firmware_revision);
        w.u8(o::RAB, self.rab);
        w.bytes(o::IEEE, &self.ieee);
        w.u8(o::CMIC, self.cmic);
        w.u8(o::MDTS, self.mdts);
        w.u16(o::CNTLID, self.cntlid);
        w.u32(o::VER, self.ver);
        w.u32(o::RTD3R, self.rtd3r);
        w.u32(o::RTD3E, self.rtd3e);
        w.u32(o::OAES, self.oaes);
        w.u32(o::CTRATT, self.ctratt);
        w.u16(o::RRLS, self.rrls);
        w.u8(o::CNTRLTYPE, self.cntrltype);
        w.bytes(o::FGUID, &self.fguid);
        for (i, crdt) in self.crdt.iter().enumerate() {
            w.u16(o::CRDT1 + 2 * i, *crdt);
        }
    }

    fn encode_capabilities(&self, w: &mut Writer<'_>) {
        w.u16(o::OACS, self.oacs);
        w.u8(o::ACL, self.acl);
        w.u8(o::AERL, self.aerl);
        w.u8(o::FRMW, self.frmw);
        w.u8(o::LPA, self.lpa);
        w.u8(o::ELPE, self.elpe);
        w.u8(o::NPSS, self.npss);
        w.u8(o::AVSCC, self.avscc);
        w.u8(o::APSTA, self.apsta);
        w.u16(o::WCTEMP, self.wctemp);
        w.u16(o::CCTEMP, self.cctemp);
        w.u16(o::MTFA, self.mtfa);
        w.u32(o::HMPRE, self.hmpre);
        w.u32(o::HMMIN, self.hmmin);
        w.u128(o::TNVMCAP, self.tnvmcap);
        w.u128(o::UNVMCAP, self.unvmcap);
        w.u16(o::KAS, self.kas);
        w.u16(o::HCTMA, self.hctma);
        w.u16(o::MNTMT, self.mntmt);
        w.u16(o::MXTMT, self.mxtmt);
        w.u32(o::SANICAP, self.sanicap);
        w.u8(o::ANATT, self.anatt);
        w.u8(o::ANACAP, self.anacap);
        w.u32(o::ANAGRPMAX, self.anagrpmax);
        w.u32(o::NANAGRPID, self.nanagrpid);
    }

    fn encode_nvm_and_fabrics(&self, w: &mut Writer<'_>) {
        w.u8(o::SQES, self.sqes);
        w.u8(o::CQES, self.cqes);
        w.u16(o::MAXCMD, self.maxcmd);
        w.u32(o::NN, self.nn);
        w.u16(o::ONCS, self.oncs);
        w.u16(o::FUSES, self.fuses);
        w.u8(o::FNA, self.fna);
        w.u8(o::VWC, self.vwc);
        w.u16(o::AWUN, self.awun);
        w.u16(o::AWUPF, self.awupf);
        w.u8(o::ICSVSCC, self.icsvscc);
        w.u8(o::NWPC, self.nwpc);
        w.u16(o::ACWU, self.acwu);
        w.u16(o::OCFS, self.ocfs);
        w.u32(o::SGLS, self.sgls);
        w.u32(o::MNAN, self.mnan);
        if let Some(nqn) = &self.subnqn {
            w.bytes(o::SUBNQN, &nqn.to_field());
        }
        w.u32(o::IOCCSZ, self.ioccsz);
        w.u32(o::IORCSZ, self.iorcsz);
        w.u16(o::ICDOFF, self.icdoff);
        w.u8(o::FCATT, self.fcatt);
        w.u8(o::MSDBD, self.msdbd);
        w.u16(o::OFCS, self.ofcs);
        w.u8(o::DCTYPE, self.dctype);
    }

    /// Parses the structure from the first 4096 bytes of `src`. An all-zero SUBNQN decodes as
    /// `None`; any other invalid SUBNQN is an error.
    pub fn decode(src: &[u8]) -> Result<Self, StructDecodeError> {
        let r = Reader::new(src, "Identify Controller", Self::SIZE)?;
        let mut id = Self::decode_identity(&r)?;
        id.decode_capabilities(&r)?;
        id.decode_nvm_and_fabrics(&r)?;
        for (i, psd) in id.psd.iter_mut().enumerate() {
            *psd = PowerStateDescriptor::read(&r, o::PSD + i * PSD_LEN)?;
        }
        Ok(id)
    }

    fn decode_identity(r: &Reader<'_>) -> Result<Self, StructDecodeError> {
        Ok(Self {
            vid: r.u16(o::VID)?,
            ssvid: r.u16(o::SSVID)?,
            serial_number: read_space_padded(r, o::SN, 20)?,
            model_number: read_space_padded(r, o::MN, 40)?,
            firmware_revision: read_space_padded(r, o::FR, 8)?,
            rab: r.u8(o::RAB)?,
            ieee: r.array(o::IEEE)?,
            cmic: r.u8(o::CMIC)?,
            mdts: r.u8(o::MDTS)?,
            cntlid: r.u16(o::CNTLID)?,
            ver: r.u32(o::VER)?,
            rtd3r: r.u32(o::RTD3R)?,
            rtd3e: r.u32(o::RTD3E)?,
            oaes: r.u32(o::OAES)?,
            ctratt: r.u32(o::CTRATT)?,
            rrls: r.u16(o::RRLS)?,
            cntrltype: r.u8(o::CNTRLTYPE)?,
            fguid: r.array(o::FGUID)?,
            crdt: [r.u16(o::CRDT1)?, r.u16(o::CRDT1 + 2)?, r.u16(o::CRDT1 + 4)?],
            ..Self::default()
        })
    }

    fn decode_capabilities(&mut self, r: &Reader<'_>) -> Result<(), StructDecodeError> {
        self.oacs = r.u16(o::OACS)?;
        self.acl = r.u8(o::ACL)?;
        self.aerl = r.u8(o::AERL)?;
        self.frmw = r.u8(o::FRMW)?;
        self.lpa = r.u8(o::LPA)?;
        self.elpe = r.u8(o::ELPE)?;
        self.npss = r.u8(o::NPSS)?;
        self.avscc = r.u8(o::AVSCC)?;
        self.apsta = r.u8(o::APSTA)?;
        self.wctemp = r.u16(o::WCTEMP)?;
        self.cctemp = r.u16(o::CCTEMP)?;
        self.mtfa = r.u16(o::MTFA)?;
        self.hmpre = r.u32(o::HMPRE)?;
        self.hmmin = r.u32(o::HMMIN)?;
        self.tnvmcap = r.u128(o::TNVMCAP)?;
        self.unvmcap = r.u128(o::UNVMCAP)?;
        self.kas = r.u16(o::KAS)?;
        self.hctma = r.u16(o::HCTMA)?;
        self.mntmt = r.u16(o::MNTMT)?;
        self.mxtmt = r.u16(o::MXTMT)?;
        self.sanicap = r.u32(o::SANICAP)?;
        self.anatt = r.u8(o::ANATT)?;
        self.anacap = r.u8(o::ANACAP)?;
        self.anagrpmax = r.u32(o::ANAGRPMAX)?;
        self.nanagrpid = r.u32(o::NANAGRPID)?;
        Ok(())
    }

    fn decode_nvm_and_fabrics(&mut self, r: &Reader<'_>) -> Result<(), StructDecodeError> {
        self.sqes = r.u8(o::SQES)?;
        self.cqes = r.u8(o::CQES)?;
        self.maxcmd = r.u16(o::MAXCMD)?;
        self.nn = r.u32(o::NN)?;
        self.oncs = r.u16(o::ONCS)?;
        self.fuses = r.u16(o::FUSES)?;
        self.fna = r.u8(o::FNA)?;
        self.vwc = r.u8(o::VWC)?;
        self.awun = r.u16(o::AWUN)?;
        self.awupf = r.u16(o::AWUPF)?;
        self.icsvscc = r.u8(o::ICSVSCC)?;
        self.nwpc = r.u8(o::NWPC)?;
        self.acwu = r.u16(o::ACWU)?;
        self.ocfs = r.u16(o::OCFS)?;
        self.sgls = r.u32(o::SGLS)?;
        self.mnan = r.u32(o::MNAN)?;
        self.subnqn = if r.u8(o::SUBNQN)? == 0 {
            None
        } else {
            Some(Nqn::read(r, o::SUBNQN, "SUBNQN")?)
        };
        self.ioccsz = r.u32(o::IOCCSZ)?;
        self.iorcsz = r.u32(o::IORCSZ)?;
        self.icdoff = r.u16(o::ICDOFF)?;
        self.fcatt = r.u8(o::FCATT)?;
        self.msdbd = r.u8(o::MSDBD)?;
        self.ofcs = r.u16(o::OFCS)?;
        self.dctype = r.u8(o::DCTYPE)?;
        Ok(())
    }
}
