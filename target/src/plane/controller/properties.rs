//! Controller properties over Fabrics Property Get/Set: CAP, VS, CC and CSTS, with the enable,
//! reset and shutdown state machines the host polls.
//!
//! - CAP advertises the NVM command set and "one or more I/O command sets" (CSS bits 0 and 6)
//!   and CRWMS, so CRTO is readable; VS is 2.0.
//! - CC.EN 0→1: the configuration is checked (4 KiB pages, round-robin arbitration, CSS 000b
//!   (NVM) or 110b (all supported I/O command sets), 64/16-byte queue entries when set); a bad
//!   one sets CSTS.CFS, as Linux nvmet does, otherwise CSTS.RDY becomes 1 at once. Discovery
//!   controllers report and check the same, as nvmet's do.
//! - CC.EN 1→0 (controller reset): CSTS.RDY goes to 0, every I/O queue is closed, the features
//!   return to their defaults.
//! - CC.SHN normal or abrupt: CSTS.SHST goes to "occurring", every namespace of the subsystem is
//!   flushed, then "complete". The flush runs inside the Property Set command, while the host
//!   polls CSTS with Property Get commands that complete concurrently.

use lamina_protocol::fabrics::{
    Cap, Cc, Crto, Csts, Property, PropertySize, ShutdownNotification, ShutdownStatus, Vs,
};
use lamina_protocol::nvme::{Status, StatusCode};

use super::Controller;
use super::lifecycle::ControllerEvent;

/// CAP.TO: how long the host waits for CSTS.RDY, in 500 ms units (7.5 s, as Linux nvmet).
pub const CAP_TIMEOUT_500MS: u8 = 15;

/// The NVMe version the controllers report: 2.0, whose mandatory admin commands, log pages,
/// features, Identify structures and properties for an NVMe over Fabrics controller they serve
/// (the advertised-equals-served test walks them on both controller types).
pub const VERSION: Vs = Vs::V2_0;

/// The I/O command sets CAP.CSS advertises: NVM, and the selection of I/O command sets by
/// CC.CSS 110b with the I/O Command Set data structure (Identify CNS 1Ch).
pub const CAP_CSS: u8 = Cap::CSS_NVM | Cap::CSS_IO_COMMAND_SETS;

impl Controller {
    /// CAP for a controller whose I/O queues may hold `max_queue_depth` entries.
    pub fn cap(max_queue_depth: u16) -> Cap {
        //~ NVMe Base 2.0, Offset 0h: CAP.CRMS.CRWMS
        //# Controllers that are compliant with NVM Express Base Specification, Revision 2.0
        //# or later shall set this bit to '1'.
        Cap::new(
            max_queue_depth.saturating_sub(1),
            CAP_TIMEOUT_500MS,
            CAP_CSS,
            0,
            0,
        )
        .with(Cap::CRWMS)
    }

    /// CRTO: ready with media within CAP.TO; CRIMS is not supported, so CRIMT is 0.
    pub fn crto() -> Crto {
        Crto::new(u16::from(CAP_TIMEOUT_500MS), 0)
    }

    /// Property Get.
    pub fn property_get(
        &self,
        offset: Property,
        size: PropertySize,
        max_queue_depth: u16,
    ) -> Result<u64, Status> {
        let invalid = Status::dnr(StatusCode::INVALID_FIELD);
        if offset.size() != Some(size) {
            return Err(invalid);
        }
        let (cc, csts) = self.registers();
        match offset {
            Property::CAP => Ok(Self::cap(max_queue_depth).0),
            Property::VS => Ok(u64::from(VERSION.0)),
            Property::CC => Ok(u64::from(cc.0)),
            Property::CSTS => Ok(u64::from(csts.0)),
            Property::CRTO => Ok(u64::from(Self::crto().0)),
            _ => Err(invalid),
        }
    }

    /// Property Set. Only CC is writable over Fabrics.
    pub async fn property_set(
        &self,
        offset: Property,
        size: PropertySize,
        value: u64,
    ) -> Result<(), Status> {
        let invalid = Status::dnr(StatusCode::INVALID_FIELD);
        if offset != Property::CC || size != PropertySize::Four {
            return Err(invalid);
        }
        //~ NVMe Base 2.0, Offset 14h: CC.CRIME is read-only 0 when CAP.CRMS.CRIMS is 0.
        let new = Cc(u32::try_from(value & 0xffff_ffff).map_err(|_| invalid)? & !Cc::CRIME);
        let shutdown = self.write_cc(new)?;
        if shutdown {
            self.shut_down().await;
        }
        Ok(())
    }

    /// Applies a CC write; returns whether a shutdown must now run. A write the controller's
    /// lifecycle does not allow now (a controller being torn down) is refused with Command
    /// Sequence Error, registers unchanged.
    fn write_cc(&self, new: Cc) -> Result<bool, Status> {
        let mut regs = self.regs.lock();
        let (old, mut csts) = *regs;
        let mut reset = false;
        let shutdown = matches!(
            new.shn(),
            ShutdownNotification::Normal | ShutdownNotification::Abrupt
        ) && !matches!(
            old.shn(),
            ShutdownNotification::Normal | ShutdownNotification::Abrupt
        );
        let valid = cc_is_valid(new);
        let events = [
            (new.enabled() && !old.enabled() && valid).then_some(ControllerEvent::Enable),
            (new.enabled() && !old.enabled() && !valid).then_some(ControllerEvent::EnableInvalid),
            (!new.enabled() && old.enabled()).then_some(ControllerEvent::Reset),
            shutdown.then_some(ControllerEvent::Shutdown),
        ];
        for event in events.into_iter().flatten() {
            if let Err(e) = self.transition(event) {
                tracing::warn!(cntlid = self.cntlid, error = %e, "CC write refused");
                return Err(Status::new(StatusCode::COMMAND_SEQUENCE_ERROR));
            }
        }
        if new.enabled() && !old.enabled() {
            tracing::debug!(
                cntlid = self.cntlid,
                cc = format_args!("{:#010x}", new.0),
                css = new.css(),
                valid,
                "controller enable"
            );
            csts = if valid {
                Csts::new(true, false, ShutdownStatus::Normal)
            } else {
                Csts(Csts::CFS)
            };
        } else if !new.enabled() && old.enabled() {
            csts = Csts::new(false, false, ShutdownStatus::Normal);
            reset = true;
        }
        if shutdown {
            csts = Csts((csts.0 & !(0b11 << 2)) | (1 << 2));
        }
        self.store_registers(&mut regs, new, csts);
        drop(regs);
        if reset {
            self.reset();
        }
        Ok(shutdown)
    }

    /// Controller reset: I/O queues go, features return to their defaults.
    fn reset(&self) {
        tracing::info!(cntlid = self.cntlid, "controller reset by the host");
        self.close_io_queues();
        let max = self.max_io_queues;
        self.update_features(|f| *f = super::Features::defaults(max));
        self.set_error_recovery(None, 0);
    }

    /// Flushes every namespace, then reports the shutdown complete.
    async fn shut_down(&self) {
        tracing::info!(
            cntlid = self.cntlid,
            "controller shutdown requested by the host"
        );
        for ns in self.subsystem.namespaces() {
            let Some(_guard) = ns.enter() else { continue };
            if let Err(e) = ns.backend().flush().await {
                tracing::warn!(cntlid = self.cntlid, nsid = ns.nsid(), error = %e,
                    "flush during controller shutdown failed");
            }
        }
        let mut regs = self.regs.lock();
        let (cc, csts) = *regs;
        self.store_registers(&mut regs, cc, Csts((csts.0 & !(0b11 << 2)) | (2 << 2)));
        // A reset or teardown during the flush moved the lifecycle on: nothing to complete.
        if let Err(e) = self.transition(ControllerEvent::ShutdownDone) {
            tracing::debug!(cntlid = self.cntlid, error = %e, "shutdown finished after a reset");
        }
    }
}

/// Checks CC at enable time: 4 KiB pages, round-robin, a command set selection CAP.CSS
/// allows, and the NVM queue entry sizes when the host set them (64-byte SQEs, 16-byte CQEs).
fn cc_is_valid(cc: Cc) -> bool {
    let entries_ok =
        (cc.iosqes() == 0 && cc.iocqes() == 0) || (cc.iosqes() == 6 && cc.iocqes() == 4);
    cc.mps() == 0 && cc.ams() == 0 && css_is_supported(cc.css()) && entries_ok
}

//~ NVMe Base 2.0, Offset 14h: CC.CSS: 000b selects the NVM Command Set when CAP.CSS bit 0 is
//~ set; 110b selects all supported I/O Command Sets when CAP.CSS bit 6 is set; 111b (Admin
//~ only) needs CAP.CSS bit 7, which is not set; other values are reserved. Like nvmet
//~ (nvmet_css_supported), anything else fails the enable with CSTS.CFS.
fn css_is_supported(css: u8) -> bool {
    match css {
        Cc::CSS_NVM => CAP_CSS & Cap::CSS_NVM != 0,
        Cc::CSS_ALL_IO => CAP_CSS & Cap::CSS_IO_COMMAND_SETS != 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plane::controller::{Controller, HostIdentity, NewController};
    use crate::plane::subsystem::{Subsystem, SubsystemConfig};
    use std::sync::Arc;
    use tokio_util::sync::CancellationToken;

    fn ctrl() -> Arc<Controller> {
        let sub = Arc::new(Subsystem::new(SubsystemConfig {
            nqn: "nqn.test".into(),
            serial_number: "s".into(),
            model_number: "m".into(),
            allow_any_host: true,
            max_namespaces: 1,
            cntlids: 1..=crate::plane::controller::registry::MAX_CNTLID,
        }));
        Controller::new(NewController {
            cntlid: 1,
            subsystem: sub,
            host: HostIdentity {
                hostnqn: "h".into(),
                hostid: [0; 16],
                peer: "127.0.0.1:1".parse().unwrap(),
                local: "127.0.0.1:4420".parse().unwrap(),
            },
            kato_ms: 0,
            sq_flow_control_disabled: false,
            max_io_queues: 4,
            parent: CancellationToken::new(),
        })
        .0
    }

    #[tokio::test]
    async fn enable_then_shutdown() {
        let c = ctrl();
        let csts = |c: &Controller| {
            Csts(
                u32::try_from(
                    c.property_get(Property::CSTS, PropertySize::Four, 128)
                        .unwrap(),
                )
                .unwrap(),
            )
        };
        assert!(!csts(&c).ready());
        c.property_set(
            Property::CC,
            PropertySize::Four,
            u64::from(Cc::enable(0, 0).0),
        )
        .await
        .unwrap();
        assert!(csts(&c).ready());
        assert!(c.is_ready());
        let shn = Cc::enable(0, 0).0 | (1 << 14);
        c.property_set(Property::CC, PropertySize::Four, u64::from(shn))
            .await
            .unwrap();
        assert_eq!(csts(&c).shst(), ShutdownStatus::Complete);
    }

    /// The ready flag the I/O path reads without a lock agrees with CC and CSTS after every
    /// register write: enable, reset, an invalid enable (CFS), shutdown.
    #[tokio::test]
    async fn the_ready_flag_follows_the_registers() {
        let c = ctrl();
        let agrees = |c: &Controller| {
            let (cc, csts) = c.registers();
            c.is_ready() == (cc.enabled() && csts.ready())
        };
        assert!(!c.is_ready() && agrees(&c));
        for cc in [
            Cc::enable(0, 0).0,
            0,
            Cc::enable(0, 1).0,
            0,
            Cc::enable(0, 0).0,
            Cc::enable(0, 0).0 | (1 << 14),
        ] {
            c.property_set(Property::CC, PropertySize::Four, u64::from(cc))
                .await
                .unwrap();
            assert!(agrees(&c), "after CC {cc:#x}");
        }
        assert!(c.is_ready(), "shut down but still enabled and ready");
        c.update_features(|f| f.volatile_write_cache = false);
        assert!(!c.volatile_write_cache());
        c.update_features(|f| f.volatile_write_cache = true);
        assert!(c.volatile_write_cache());
    }

    /// The lifecycle follows the register writes, and a torn-down controller refuses them.
    #[tokio::test]
    async fn the_lifecycle_follows_cc_and_teardown_is_final() {
        use crate::plane::controller::lifecycle::ControllerState as S;
        let c = ctrl();
        let set = |cc: u32| c.property_set(Property::CC, PropertySize::Four, u64::from(cc));
        assert_eq!(c.state(), S::Connecting);
        set(Cc::enable(0, 0).0).await.unwrap();
        assert_eq!(c.state(), S::Enabled);
        set(0).await.unwrap();
        assert_eq!(c.state(), S::Connecting, "CC.EN cleared: reset");
        set(Cc::enable(0, 1).0).await.unwrap();
        assert_eq!(c.state(), S::Failed, "8 KiB pages: controller fatal");
        set(0).await.unwrap();
        set(Cc::enable(0, 0).0).await.unwrap();
        set(Cc::enable(0, 0).0 | (1 << 14)).await.unwrap();
        assert_eq!(c.state(), S::ShutDown);
        c.tear_down();
        c.tear_down();
        assert_eq!(c.state(), S::TearingDown, "teardown is idempotent");
        let before = c.registers();
        assert_eq!(
            set(0).await,
            Err(Status::new(StatusCode::COMMAND_SEQUENCE_ERROR)),
            "a torn-down controller takes no register write"
        );
        assert_eq!(c.registers(), before);
        c.release();
        assert_eq!(c.state(), S::Gone);
    }

    #[tokio::test]
    async fn bad_configuration_sets_cfs_and_reset_clears_ready() {
        let c = ctrl();
        let bad = Cc::enable(0, 1).0; // 8 KiB pages
        c.property_set(Property::CC, PropertySize::Four, u64::from(bad))
            .await
            .unwrap();
        let (_, csts) = c.registers();
        assert!(csts.fatal());
        assert!(!csts.ready());

        let c = ctrl();
        c.property_set(
            Property::CC,
            PropertySize::Four,
            u64::from(Cc::enable(0, 0).0),
        )
        .await
        .unwrap();
        let (_, token) = c.add_io_queue(1).unwrap();
        c.property_set(Property::CC, PropertySize::Four, 0)
            .await
            .unwrap();
        assert!(!c.registers().1.ready());
        assert!(token.is_cancelled(), "reset closes I/O queues");
    }

    #[tokio::test]
    async fn css_000b_and_110b_enable_and_others_are_fatal() {
        for (css, ok) in [
            (0, true),
            (6, true),
            (1, false),
            (2, false),
            (5, false),
            (7, false),
        ] {
            let c = ctrl();
            c.property_set(
                Property::CC,
                PropertySize::Four,
                u64::from(Cc::enable(css, 0).0),
            )
            .await
            .unwrap();
            let (cc, csts) = c.registers();
            assert_eq!((csts.ready(), csts.fatal()), (ok, !ok), "CSS {css:03b}");
            assert_eq!(cc.css(), css);
        }
        // CRIME is read-only 0 without CRIMS.
        let c = ctrl();
        let cc = Cc::enable(6, 0).0 | Cc::CRIME;
        c.property_set(Property::CC, PropertySize::Four, u64::from(cc))
            .await
            .unwrap();
        assert!(!c.registers().0.crime() && c.is_ready());
    }

    #[test]
    fn gets_check_offset_and_size() {
        let c = ctrl();
        let cap = c
            .property_get(Property::CAP, PropertySize::Eight, 128)
            .unwrap();
        assert_eq!(Cap(cap).mqes(), 127);
        assert_eq!(Cap(cap).timeout(), CAP_TIMEOUT_500MS);
        assert_eq!(
            c.property_get(Property::VS, PropertySize::Four, 128)
                .unwrap(),
            0x20000
        );
        assert_eq!(Cap(cap).css(), 0x41, "NVM and I/O command set selection");
        assert!(Cap(cap).crwms());
        assert_eq!(
            c.property_get(Property::CRTO, PropertySize::Four, 128)
                .unwrap(),
            u64::from(CAP_TIMEOUT_500MS)
        );
        assert!(
            c.property_get(Property::CAP, PropertySize::Four, 128)
                .is_err()
        );
        assert!(
            c.property_get(Property::AQA, PropertySize::Four, 128)
                .is_err()
        );
    }
}
