//! A controller's lifecycle as a transition table (see `lamina_lvol::lifecycle`), kept beside
//! the CC/CSTS registers the host sees: the table says which register writes and teardown
//! steps are legal in which state, and the registers say what the host reads.
//!
//! | state | entered when | commands |
//! |---|---|---|
//! | `Connecting` | admin Connect; or CC.EN cleared (controller reset) | Fabrics only |
//! | `Enabled` | CC.EN set with a valid CC (CSTS.RDY) | all |
//! | `Failed` | CC.EN set with an invalid CC (CSTS.CFS): the host must reset it | Fabrics only |
//! | `ShuttingDown` | CC.SHN set: namespaces being flushed (CSTS.SHST in progress) | as before |
//! | `ShutDown` | the flush finished (CSTS.SHST complete) | as before |
//! | `TearingDown` | keep-alive expiry, admin queue gone, Disconnect: every queue closing | none |
//! | `Gone` | every queue finished its commands: unregistered (the reconnect fence opens) | none |
//!
//! Teardown is legal from every state but the last two, and nothing leads back from them:
//! a torn-down controller never serves a command again, and a host that reconnects gets a new
//! controller.

lamina_lvol::lifecycle! {
    /// Where a controller is in its life.
    pub enum ControllerState / ControllerEvent ("controller") {
        states {
            /// Admin queue connected; CC.EN clear.
            Connecting,
            /// CC.EN set, ready.
            Enabled,
            /// CC.EN set with an invalid configuration: controller fatal status.
            Failed,
            /// Shutdown notification received; flushing.
            ShuttingDown,
            /// Shutdown processing complete.
            ShutDown,
            /// Torn down; its queues finishing.
            TearingDown,
            /// Released: no queue of it runs any more.
            Gone,
        }
        events {
            /// CC.EN 0 → 1 with a valid CC.
            Enable,
            /// CC.EN 0 → 1 with an invalid CC.
            EnableInvalid,
            /// CC.EN 1 → 0.
            Reset,
            /// CC.SHN set.
            Shutdown,
            /// The shutdown's flush finished.
            ShutdownDone,
            /// Keep-alive expiry, admin queue loss or Disconnect.
            TearDown,
            /// Its last queue finished.
            Release,
        }
        transitions {
            Connecting + Enable => Enabled,
            Connecting + EnableInvalid => Failed,
            Enabled + Reset => Connecting,
            Failed + Reset => Connecting,
            ShuttingDown + Reset => Connecting,
            ShutDown + Reset => Connecting,
            Connecting + Shutdown => ShuttingDown,
            Enabled + Shutdown => ShuttingDown,
            Failed + Shutdown => ShuttingDown,
            ShutDown + Shutdown => ShuttingDown,
            ShuttingDown + ShutdownDone => ShutDown,
            Connecting + TearDown => TearingDown,
            Enabled + TearDown => TearingDown,
            Failed + TearDown => TearingDown,
            ShuttingDown + TearDown => TearingDown,
            ShutDown + TearDown => TearingDown,
            TearingDown + Release => Gone,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lamina_lvol::lifecycle::Machine;

    #[test]
    fn teardown_is_final_and_reachable_from_every_live_state() {
        for &s in ControllerState::STATES {
            let torn = s.next(ControllerEvent::TearDown);
            match s {
                ControllerState::TearingDown | ControllerState::Gone => assert!(torn.is_err()),
                _ => assert_eq!(torn, Ok(ControllerState::TearingDown), "{s:?}"),
            }
        }
        assert!(ControllerState::Gone.is_terminal());
        for &(from, _, to) in ControllerState::TRANSITIONS {
            if from == ControllerState::TearingDown {
                assert_eq!(
                    to,
                    ControllerState::Gone,
                    "nothing leads back from teardown"
                );
            }
        }
    }
}
