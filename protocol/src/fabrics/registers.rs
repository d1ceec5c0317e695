//! The controller properties a fabrics controller exposes: CAP, VS, CC and CSTS, as typed bit
//! fields over their raw values.

use crate::wire::{bits32, bits64, hi16, lo8, lo16, lo32};

//~ NVMe Base 2.0, Offset 0h: CAP: MQES (15:0, 0's based), CQR (16), AMS (18:17),
//~ TO (31:24, 500 ms units), DSTRD (35:32), NSSRS (36), CSS (44:37), BPS (45), CPS (47:46),
//~ MPSMIN (51:48), MPSMAX (55:52), PMRS (56), CMBS (57), NSSS (58), CRMS (60:59).
/// Controller Capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Cap(pub u64);

impl Cap {
    /// CSS bit 0: NVM command set.
    pub const CSS_NVM: u8 = 1 << 0;
    /// CSS bit 6: one or more I/O command sets (with CC.CSS = 110b).
    pub const CSS_IO_COMMAND_SETS: u8 = 1 << 6;
    /// CSS bit 7: no I/O command set (admin only, e.g. discovery controllers).
    pub const CSS_NO_IO: u8 = 1 << 7;

    //~ NVMe Base 2.0, Offset 0h: CAP, bits 60:59 CRMS (Controller Ready Modes Supported).
    //# Controller Ready With Media Support (CRWMS): ... Controllers that are compliant with
    //# NVM Express Base Specification, Revision 2.0 or later shall set this bit to '1'.
    /// CRMS.CRWMS (bit 59): the controller reports CRTO.CRWMT, the time to ready with media.
    pub const CRWMS: u64 = 1 << 59;
    /// CRMS.CRIMS (bit 60): Controller Ready Independent of Media (CC.CRIME) supported.
    pub const CRIMS: u64 = 1 << 60;

    /// Builds CAP from its fields that matter to a fabrics controller.
    pub fn new(mqes: u16, timeout_500ms: u8, css: u8, mpsmin: u8, mpsmax: u8) -> Self {
        Self(
            u64::from(mqes)
                | (1 << 16) // CQR: fabrics queues are physically contiguous
                | (u64::from(timeout_500ms) << 24)
                | (u64::from(css) << 37)
                | (u64::from(mpsmin & 0xf) << 48)
                | (u64::from(mpsmax & 0xf) << 52),
        )
    }

    /// CAP with the `bits` (CRWMS, CRIMS, ...) also set.
    pub const fn with(self, bits: u64) -> Self {
        Self(self.0 | bits)
    }

    /// Controller Ready With Media Support.
    pub fn crwms(self) -> bool {
        self.0 & Self::CRWMS != 0
    }

    /// Controller Ready Independent of Media Support.
    pub fn crims(self) -> bool {
        self.0 & Self::CRIMS != 0
    }

    /// Maximum Queue Entries Supported, 0's based.
    pub fn mqes(self) -> u16 {
        lo16(lo32(self.0))
    }

    /// Contiguous Queues Required.
    pub fn cqr(self) -> bool {
        bits64(self.0, 16, 1) != 0
    }

    /// Timeout for CSTS.RDY transitions, in 500 ms units.
    pub fn timeout(self) -> u8 {
        lo8(lo32(bits64(self.0, 24, 8)))
    }

    /// Doorbell Stride.
    pub fn dstrd(self) -> u8 {
        lo8(lo32(bits64(self.0, 32, 4)))
    }

    /// Command Sets Supported.
    pub fn css(self) -> u8 {
        lo8(lo32(bits64(self.0, 37, 8)))
    }

    /// Memory Page Size Minimum: 2^(12 + MPSMIN) bytes.
    pub fn mpsmin(self) -> u8 {
        lo8(lo32(bits64(self.0, 48, 4)))
    }

    /// Memory Page Size Maximum.
    pub fn mpsmax(self) -> u8 {
        lo8(lo32(bits64(self.0, 52, 4)))
    }
}

//~ NVMe Base 2.0, Offset 8h: VS: MJR (31:16), MNR (15:8), TER (7:0).
/// Version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Vs(pub u32);

impl Vs {
    /// NVMe 1.3.
    pub const V1_3: Self = Self::new(1, 3, 0);
    /// NVMe 1.4.
    pub const V1_4: Self = Self::new(1, 4, 0);
    /// NVMe 2.0.
    pub const V2_0: Self = Self::new(2, 0, 0);

    /// From major, minor and tertiary numbers.
    pub const fn new(major: u16, minor: u8, tertiary: u8) -> Self {
        Self(((major as u32) << 16) | ((minor as u32) << 8) | tertiary as u32)
    }

    /// Major version.
    pub fn major(self) -> u16 {
        hi16(self.0)
    }

    /// Minor version.
    pub fn minor(self) -> u8 {
        lo8(self.0 >> 8)
    }

    /// Tertiary version.
    pub fn tertiary(self) -> u8 {
        lo8(self.0)
    }
}

/// CC.SHN / CSTS shutdown notification values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShutdownNotification {
    /// 00b: no notification.
    None,
    /// 01b: normal shutdown.
    Normal,
    /// 10b: abrupt shutdown.
    Abrupt,
    /// 11b: reserved.
    Reserved,
}

//~ NVMe Base 2.0, Offset 14h: CC: EN (0), CSS (6:4), MPS (10:7), AMS (13:11),
//~ SHN (15:14), IOSQES (19:16), IOCQES (23:20), CRIME (24).
/// Controller Configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Cc(pub u32);

impl Cc {
    //~ NVMe Base 2.0, Offset 14h: CC.CSS (6:4): 000b NVM Command Set, 110b All
    //~ Supported I/O Command Sets (CAP.CSS bit 6), 111b Admin Command Set only (CAP.CSS
    //~ bit 7); all other values are reserved.
    /// CSS 000b: the NVM Command Set.
    pub const CSS_NVM: u8 = 0b000;
    /// CSS 110b: all supported I/O Command Sets (needs CAP.CSS bit 6).
    pub const CSS_ALL_IO: u8 = 0b110;
    /// CSS 111b: Admin Command Set only (needs CAP.CSS bit 7).
    pub const CSS_ADMIN_ONLY: u8 = 0b111;
    /// CRIME (bit 24): Controller Ready Independent of Media Enable.
    pub const CRIME: u32 = 1 << 24;

    /// Enable.
    pub fn enabled(self) -> bool {
        self.0 & 1 != 0
    }

    /// I/O Command Set Selected.
    pub fn css(self) -> u8 {
        lo8(bits32(self.0, 4, 3))
    }

    /// Memory Page Size: 2^(12 + MPS).
    pub fn mps(self) -> u8 {
        lo8(bits32(self.0, 7, 4))
    }

    /// Arbitration Mechanism Selected.
    pub fn ams(self) -> u8 {
        lo8(bits32(self.0, 11, 3))
    }

    /// Shutdown Notification.
    pub fn shn(self) -> ShutdownNotification {
        match bits32(self.0, 14, 2) {
            0 => ShutdownNotification::None,
            1 => ShutdownNotification::Normal,
            2 => ShutdownNotification::Abrupt,
            _ => ShutdownNotification::Reserved,
        }
    }

    /// Controller Ready Independent of Media Enable.
    pub fn crime(self) -> bool {
        self.0 & Self::CRIME != 0
    }

    /// I/O Submission Queue Entry Size (log2; 6 = 64 bytes).
    pub fn iosqes(self) -> u8 {
        lo8(bits32(self.0, 16, 4))
    }

    /// I/O Completion Queue Entry Size (log2; 4 = 16 bytes).
    pub fn iocqes(self) -> u8 {
        lo8(bits32(self.0, 20, 4))
    }

    /// What the Linux host writes to enable a controller: EN, IOSQES 6, IOCQES 4, MPS and CSS.
    pub fn enable(css: u8, mps: u8) -> Self {
        Self(1 | (u32::from(css & 7) << 4) | (u32::from(mps & 0xf) << 7) | (6 << 16) | (4 << 20))
    }
}

//~ NVMe Base 2.0, Offset 68h: CRTO: CRWMT (15:0), CRIMT (31:16),
//~ both in 500 ms units.
//# Controller Ready With Media Timeout (CRWMT): This field indicates the expected maximum
//# time that the host should wait for the controller to become ready after CC.EN is set to
//# '1' if CC.CRIME is cleared to '0'.
/// Controller Ready Timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Crto(pub u32);

impl Crto {
    /// Builds CRTO from its two timeouts in 500 ms units.
    pub fn new(crwmt_500ms: u16, crimt_500ms: u16) -> Self {
        Self(u32::from(crwmt_500ms) | (u32::from(crimt_500ms) << 16))
    }

    /// Controller Ready With Media Timeout, 500 ms units.
    pub fn crwmt(self) -> u16 {
        lo16(self.0)
    }

    /// Controller Ready Independent of Media Timeout, 500 ms units.
    pub fn crimt(self) -> u16 {
        hi16(self.0)
    }
}

/// CSTS.SHST values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShutdownStatus {
    /// 00b: normal operation.
    Normal,
    /// 01b: shutdown processing occurring.
    Occurring,
    /// 10b: shutdown processing complete.
    Complete,
    /// 11b: reserved.
    Reserved,
}

//~ NVMe Base 2.0, Offset 1Ch: CSTS: RDY (0), CFS (1), SHST (3:2), NSSRO (4), PP (5),
//~ ST (6).
/// Controller Status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Csts(pub u32);

impl Csts {
    /// Ready.
    pub const RDY: u32 = 1 << 0;
    /// Controller Fatal Status.
    pub const CFS: u32 = 1 << 1;

    /// Builds CSTS.
    pub fn new(ready: bool, fatal: bool, shst: ShutdownStatus) -> Self {
        let shst = match shst {
            ShutdownStatus::Normal => 0,
            ShutdownStatus::Occurring => 1,
            ShutdownStatus::Complete => 2,
            ShutdownStatus::Reserved => 3,
        };
        Self(u32::from(ready) | (u32::from(fatal) << 1) | (shst << 2))
    }

    /// Ready.
    pub fn ready(self) -> bool {
        self.0 & Self::RDY != 0
    }

    /// Controller Fatal Status.
    pub fn fatal(self) -> bool {
        self.0 & Self::CFS != 0
    }

    /// Shutdown Status.
    pub fn shst(self) -> ShutdownStatus {
        match bits32(self.0, 2, 2) {
            0 => ShutdownStatus::Normal,
            1 => ShutdownStatus::Occurring,
            2 => ShutdownStatus::Complete,
            _ => ShutdownStatus::Reserved,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_fields() {
        let cap = Cap::new(127, 30, Cap::CSS_NVM, 0, 0);
        assert_eq!(cap.mqes(), 127);
        assert!(cap.cqr());
        assert_eq!(cap.timeout(), 30);
        assert_eq!(cap.css(), 1);
        assert_eq!(cap.0, 0x0000_0020_1e01_007f);
        // NVM and "one or more I/O command sets" (CSS bits 0 and 6), CRWMS: bits 37, 43, 59.
        let cap = Cap::new(127, 15, Cap::CSS_NVM | Cap::CSS_IO_COMMAND_SETS, 0, 0).with(Cap::CRWMS);
        assert_eq!(cap.0, 0x0800_0820_0f01_007f);
        assert_eq!(cap.css(), 0x41);
        assert!(cap.crwms() && !cap.crims());
    }

    #[test]
    fn crto_and_css_values() {
        let crto = Crto::new(15, 0);
        assert_eq!((crto.0, crto.crwmt(), crto.crimt()), (15, 15, 0));
        assert_eq!(Crto(0x0002_0003).crimt(), 2);
        let cc = Cc::enable(Cc::CSS_ALL_IO, 0);
        assert_eq!((cc.css(), cc.0 & 0x70), (6, 0x60));
        assert!(!cc.crime() && Cc(Cc::CRIME).crime());
        assert_eq!(Vs::V2_0.0, 0x0002_0000);
    }

    #[test]
    fn vs_cc_csts() {
        assert_eq!(Vs::V1_3.0, 0x0001_0300);
        assert_eq!((Vs::V1_4.major(), Vs::V1_4.minor()), (1, 4));
        let cc = Cc::enable(0, 0);
        assert!(cc.enabled());
        assert_eq!((cc.iosqes(), cc.iocqes()), (6, 4));
        assert_eq!(Cc(2 << 14).shn(), ShutdownNotification::Abrupt);
        let csts = Csts::new(true, false, ShutdownStatus::Complete);
        assert_eq!(csts.0, 0b1001);
        assert_eq!(csts.shst(), ShutdownStatus::Complete);
    }
}
