//! Lifecycle state machines as data: a [`Machine`] is an enum of states, an enum of events and
//! a table of the legal `(from, event, to)` transitions; [`Machine::next`] looks the table up
//! and answers an illegal transition with [`Illegal`] (an error the caller reports or turns
//! into a refusal), never a panic. The [`lifecycle!`](crate::lifecycle!) macro writes the two
//! enums, the table and the impl from one declaration, so the table the code runs on is the
//! table a reader sees. [`StateCell`] keeps a machine's state in one atomic byte and moves it
//! only through the table.
//!
//! Used for the lvol and the lvstore here, and for namespaces and controllers in the target.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};

/// A state machine: states are `Self`, events are [`Machine::Event`].
pub trait Machine: Copy + Eq + fmt::Debug + Send + Sync + 'static {
    /// What can happen to the object.
    type Event: Copy + Eq + fmt::Debug + Send + Sync + 'static;
    /// The object's name, for errors ("lvol", "namespace").
    const NAME: &'static str;
    /// The state a new object starts in.
    const INITIAL: Self;
    /// Every legal transition: `(from, event, to)`.
    const TRANSITIONS: &'static [(Self, Self::Event, Self)];
    /// Every state, in declaration order: a state's index is its place here.
    const STATES: &'static [Self];

    /// The state `event` leads to from `self`, or why it cannot happen.
    fn next(self, event: Self::Event) -> Result<Self, Illegal<Self>> {
        Self::TRANSITIONS
            .iter()
            .find(|(from, on, _)| *from == self && *on == event)
            .map(|&(_, _, to)| to)
            .ok_or(Illegal { from: self, event })
    }

    /// Whether no event leads anywhere from this state.
    fn is_terminal(self) -> bool {
        !Self::TRANSITIONS.iter().any(|(from, _, _)| *from == self)
    }

    /// This state's index in [`Machine::STATES`].
    fn index(self) -> u8 {
        Self::STATES
            .iter()
            .position(|s| *s == self)
            .and_then(|i| u8::try_from(i).ok())
            .unwrap_or(u8::MAX)
    }
}

/// An event that the transition table does not allow in the current state.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Illegal<M: Machine> {
    /// The state the object was in.
    pub from: M,
    /// The event that was refused.
    pub event: M::Event,
}

impl<M: Machine> fmt::Debug for Illegal<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl<M: Machine> fmt::Display for Illegal<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {:?} is not allowed while {:?}",
            M::NAME,
            self.event,
            self.from
        )
    }
}

impl<M: Machine> std::error::Error for Illegal<M> {}

/// A machine's current state in one atomic byte, changed only through the transition table.
#[derive(Debug)]
pub struct StateCell<M: Machine> {
    index: AtomicU8,
    _machine: std::marker::PhantomData<M>,
}

impl<M: Machine> Default for StateCell<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M: Machine> StateCell<M> {
    /// In the machine's initial state.
    pub fn new() -> Self {
        Self {
            index: AtomicU8::new(M::INITIAL.index()),
            _machine: std::marker::PhantomData,
        }
    }

    /// The current state.
    pub fn get(&self) -> M {
        let i = usize::from(self.index.load(Ordering::SeqCst));
        M::STATES.get(i).copied().unwrap_or(M::INITIAL)
    }

    /// Applies `event` atomically: the new state, or why the table refuses it (nothing
    /// changes then). Two racing events are ordered; the second sees the first's result.
    pub fn apply(&self, event: M::Event) -> Result<M, Illegal<M>> {
        let mut cur = self.index.load(Ordering::SeqCst);
        loop {
            let from = M::STATES
                .get(usize::from(cur))
                .copied()
                .unwrap_or(M::INITIAL);
            let to = from.next(event)?;
            match self.index.compare_exchange_weak(
                cur,
                to.index(),
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return Ok(to),
                Err(actual) => cur = actual,
            }
        }
    }
}

/// Declares a lifecycle: the state enum, the event enum and the transition table, and
/// implements [`Machine`] for the state enum. The first state listed is the initial one.
///
/// ```
/// lamina_lvol::lifecycle! {
///     /// A door.
///     pub enum Door / DoorEvent ("door") {
///         states { Closed, Open, Gone }
///         events { Push, Pull, Remove }
///         transitions {
///             Closed + Push => Open,
///             Open + Pull => Closed,
///             Closed + Remove => Gone,
///         }
///     }
/// }
/// use lamina_lvol::lifecycle::Machine;
/// assert_eq!(Door::Closed.next(DoorEvent::Push), Ok(Door::Open));
/// assert!(Door::Open.next(DoorEvent::Remove).is_err());
/// assert!(Door::Gone.is_terminal());
/// ```
#[macro_export]
macro_rules! lifecycle {
    (
        $(#[$meta:meta])*
        $vis:vis enum $state:ident / $event:ident ($name:literal) {
            states { $( $(#[$smeta:meta])* $s:ident ),+ $(,)? }
            events { $( $(#[$emeta:meta])* $e:ident ),+ $(,)? }
            transitions { $( $from:ident + $on:ident => $to:ident ),+ $(,)? }
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $state {
            $( $(#[$smeta])* $s, )+
        }

        #[doc = concat!("What can happen to a ", $name, ": the events of [`", stringify!($state), "`]'s table.")]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $event {
            $( $(#[$emeta])* $e, )+
        }

        impl $crate::lifecycle::Machine for $state {
            type Event = $event;
            const NAME: &'static str = $name;
            const INITIAL: Self = [$( $state::$s ),+][0];
            const TRANSITIONS: &'static [(Self, $event, Self)] =
                &[$( ($state::$from, $event::$on, $state::$to) ),+];
            const STATES: &'static [Self] = &[$( $state::$s ),+];
        }
    };
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    crate::lifecycle! {
        /// A test machine.
        enum Lamp / LampEvent ("lamp") {
            states { Off, On, Broken }
            events { Switch, Smash }
            transitions {
                Off + Switch => On,
                On + Switch => Off,
                Off + Smash => Broken,
                On + Smash => Broken,
            }
        }
    }

    #[test]
    fn the_table_decides() {
        assert_eq!(Lamp::INITIAL, Lamp::Off);
        assert_eq!(Lamp::Off.next(LampEvent::Switch), Ok(Lamp::On));
        let e = Lamp::Broken.next(LampEvent::Switch).unwrap_err();
        assert_eq!(e.from, Lamp::Broken);
        assert_eq!(e.to_string(), "lamp: Switch is not allowed while Broken");
        assert!(Lamp::Broken.is_terminal());
        assert!(!Lamp::On.is_terminal());
    }

    #[test]
    fn the_cell_moves_only_through_the_table() {
        let c = StateCell::<Lamp>::new();
        assert_eq!(c.get(), Lamp::Off);
        assert_eq!(c.apply(LampEvent::Switch), Ok(Lamp::On));
        assert_eq!(c.apply(LampEvent::Smash), Ok(Lamp::Broken));
        assert!(c.apply(LampEvent::Switch).is_err());
        assert_eq!(c.get(), Lamp::Broken, "a refused event changes nothing");
    }

    #[test]
    fn racing_events_are_ordered() {
        let c = std::sync::Arc::new(StateCell::<Lamp>::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || c.apply(LampEvent::Smash).is_ok())
            })
            .collect();
        let won = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|w| *w)
            .count();
        assert_eq!(won, 1, "exactly one smash wins; the others see Broken");
    }
}
