//! The lifecycles of an lvol and of an lvstore, as transition tables. The code moves an
//! object's state only through these tables ([`Machine::next`](super::Machine::next) or a
//! [`StateCell`](super::StateCell)), so a transition not listed here cannot happen: it is an
//! error where it is attempted. What each state means for callers:
//!
//! | lvol state | opens, I/O | listed | meaning |
//! |---|---|---|---|
//! | `Live` | yes | yes | published in the lvstore's maps |
//! | `Deleting` | refused (`Deleted`) | no | unpublished; its I/O draining, then its clusters freed |
//! | `Unloading` | refused (`Unloaded`) | no | its lvstore is closing: its I/O draining |
//! | `Deleted` | refused (`Deleted`) | no | gone from the metadata; final |
//! | `Unloaded` | refused (`Unloaded`) | no | its lvstore was unloaded or destroyed; final |
//!
//! A delete that is refused after it unpublished the lvol (its metadata operation could not be
//! applied) calls itself off: `Deleting` back to `Live`, republished under its name. An
//! lvstore close never calls off an lvol it began closing: it checks every lvol can close
//! before it starts.

crate::lifecycle! {
    /// Where an lvol is in its life.
    pub enum LvolState / LvolEvent ("lvol") {
        states {
            /// Published: opens and I/O are allowed.
            Live,
            /// Being deleted: unpublished, draining its I/O, then freeing its clusters.
            Deleting,
            /// Its lvstore is being unloaded or destroyed: draining its I/O.
            Unloading,
            /// Deleted: every access through an old handle gets `Deleted`.
            Deleted,
            /// Its lvstore was unloaded: every access gets `Unloaded`.
            Unloaded,
        }
        events {
            /// A delete passed its checks and unpublished the lvol.
            Delete,
            /// The lvstore's close reached this lvol.
            Unload,
            /// The delete was refused before anything changed: published again.
            CallOff,
            /// The delete removed the lvol from the metadata.
            Freed,
            /// The lvstore's metadata was checkpointed or wiped.
            Closed,
        }
        transitions {
            Live + Delete => Deleting,
            Live + Unload => Unloading,
            Deleting + CallOff => Live,
            Deleting + Freed => Deleted,
            Unloading + Closed => Unloaded,
        }
    }
}

crate::lifecycle! {
    /// Where an lvstore is in its life.
    pub enum StoreState / StoreEvent ("lvstore") {
        states {
            /// Loaded: lvols can be created, opened and deleted.
            Live,
            /// Unload or destroy in progress: new operations get `Unloaded`.
            Closing,
            /// Unloaded: its metadata was checkpointed; it can be loaded again.
            Unloaded,
            /// Destroyed: its metadata was wiped.
            Destroyed,
        }
        events {
            /// Unload or destroy began.
            Close,
            /// The close was refused (an lvol exported or open): live again.
            CallOff,
            /// Every operation on it finished and its metadata was checkpointed.
            Checkpointed,
            /// Every operation on it finished and its metadata was wiped.
            Wiped,
        }
        transitions {
            Live + Close => Closing,
            Closing + CallOff => Live,
            Closing + Checkpointed => Unloaded,
            Closing + Wiped => Destroyed,
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::super::Machine;
    use super::*;

    /// A deleted or unloaded lvol never comes back: no event leads out of either state, and
    /// the only way back to `Live` is calling off a delete.
    #[test]
    fn final_states_are_final() {
        for s in [LvolState::Deleted, LvolState::Unloaded] {
            assert!(s.is_terminal(), "{s:?}");
        }
        for s in [StoreState::Unloaded, StoreState::Destroyed] {
            assert!(s.is_terminal(), "{s:?}");
        }
        let back_to_live: Vec<_> = LvolState::TRANSITIONS
            .iter()
            .filter(|(from, _, to)| *to == LvolState::Live && *from != LvolState::Live)
            .collect();
        assert_eq!(
            back_to_live,
            [&(LvolState::Deleting, LvolEvent::CallOff, LvolState::Live)]
        );
    }

    /// Every state is reachable from the initial one.
    #[test]
    fn every_state_is_reachable() {
        fn reachable<M: Machine>() -> Vec<M> {
            let mut seen = vec![M::INITIAL];
            let mut i = 0;
            while i < seen.len() {
                for &(from, _, to) in M::TRANSITIONS {
                    if from == seen[i] && !seen.contains(&to) {
                        seen.push(to);
                    }
                }
                i += 1;
            }
            seen
        }
        assert_eq!(reachable::<LvolState>().len(), LvolState::STATES.len());
        assert_eq!(reachable::<StoreState>().len(), StoreState::STATES.len());
    }
}
