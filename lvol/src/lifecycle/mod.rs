//! Lifecycles: the state machines of the lvol and the lvstore as transition tables
//! ([`machine`], [`states`]), and the lvol's lifecycle core: its state, the open counts that
//! make delete answer Busy, and the per-I/O [`Drain`] that delete and unload close and wait
//! for before they free anything. Pure synchronisation over the `crate::sync` shim and the
//! drain word, so loom checks every interleaving of open, I/O, delete and drop (see
//! `loom_tests` below and the crate docs for the command).
//!
//! The I/O fast path touches only the drain's atomic word: entering is one `fetch_add` that is
//! undone once closed, so after `Lifecycle::begin` returns only I/Os that entered before it
//! are left, and `Lifecycle::drain` returns when they have finished.

pub mod machine;
pub mod states;

pub use machine::{Illegal, Machine, StateCell};
pub use states::{LvolEvent, LvolState, StoreEvent, StoreState};

use crate::drain::Drain;
use crate::sync::{Mutex, lock};

/// How a descriptor was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenKind {
    /// Exported as a namespace: blocks delete, at most one at a time.
    Export,
    /// An ordinary open: blocks delete.
    Blocking,
    /// An open that agreed to be force-closed by delete.
    Closable,
}

/// Why an open or a close transition was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The lvol is not live any more (the state it is in).
    Gone(LvolState),
    /// Exported or opened by someone who did not agree to be force-closed.
    Busy(&'static str),
}

#[derive(Debug)]
struct Control {
    state: LvolState,
    exported: bool,
    blocking_opens: u64,
    closable_opens: u64,
}

/// One lvol's lifecycle.
#[derive(Debug)]
pub(crate) struct Lifecycle {
    io: Drain,
    control: Mutex<Control>,
}

impl Lifecycle {
    pub(crate) fn new() -> Self {
        Self {
            io: Drain::new(),
            control: Mutex::new(Control {
                state: LvolState::INITIAL,
                exported: false,
                blocking_opens: 0,
                closable_opens: 0,
            }),
        }
    }

    /// Current state.
    pub(crate) fn state(&self) -> LvolState {
        lock(&self.control).state
    }

    /// Registers an open of `kind`.
    pub(crate) fn open(&self, kind: OpenKind) -> Result<(), Refusal> {
        let mut c = lock(&self.control);
        if c.state != LvolState::Live {
            return Err(Refusal::Gone(c.state));
        }
        match kind {
            OpenKind::Export if c.exported => return Err(Refusal::Busy("already exported")),
            OpenKind::Export => {
                c.exported = true;
                c.blocking_opens += 1;
            }
            OpenKind::Blocking => c.blocking_opens += 1,
            OpenKind::Closable => c.closable_opens += 1,
        }
        Ok(())
    }

    /// Undoes one [`Lifecycle::open`] of `kind`.
    pub(crate) fn close(&self, kind: OpenKind) {
        let mut c = lock(&self.control);
        match kind {
            OpenKind::Export => {
                c.exported = false;
                c.blocking_opens = c.blocking_opens.saturating_sub(1);
            }
            OpenKind::Blocking => c.blocking_opens = c.blocking_opens.saturating_sub(1),
            OpenKind::Closable => c.closable_opens = c.closable_opens.saturating_sub(1),
        }
    }

    /// Whether any open (of any kind) is registered.
    pub(crate) fn open_count(&self) -> u64 {
        let c = lock(&self.control);
        c.blocking_opens + c.closable_opens
    }

    /// Whether the lvol is exported.
    pub(crate) fn is_exported(&self) -> bool {
        lock(&self.control).exported
    }

    /// Checks that a close (delete or unload) could start now, without starting it.
    pub(crate) fn check_closable(&self) -> Result<(), Refusal> {
        let c = lock(&self.control);
        Self::closable(&c)
    }

    fn closable(c: &Control) -> Result<(), Refusal> {
        if c.state != LvolState::Live {
            return Err(Refusal::Gone(c.state));
        }
        if c.exported {
            return Err(Refusal::Busy("exported"));
        }
        if c.blocking_opens > 0 {
            return Err(Refusal::Busy("open"));
        }
        Ok(())
    }

    /// Begins a close (`Delete` or `Unload`): refuses with Busy when exported or open by a
    /// blocking descriptor, otherwise moves the state through the table and closes the I/O
    /// drain so no new I/O can enter.
    pub(crate) fn begin(&self, event: LvolEvent) -> Result<(), Refusal> {
        let mut c = lock(&self.control);
        Self::closable(&c)?;
        c.state = c.state.next(event).map_err(|e| Refusal::Gone(e.from))?;
        // Under the control lock, so a concurrent open sees the new state first, then the
        // drain closed.
        self.io.close();
        Ok(())
    }

    /// Moves the state through the table (`CallOff`, `Freed`, `Closed`). Calling off reopens
    /// the I/O drain; the final events leave it closed.
    pub(crate) fn apply(&self, event: LvolEvent) -> Result<LvolState, Illegal<LvolState>> {
        let mut c = lock(&self.control);
        c.state = c.state.next(event)?;
        if c.state == LvolState::Live {
            self.io.reopen();
        } else {
            self.io.close();
        }
        Ok(c.state)
    }

    /// Takes the per-I/O entry; false once a close began. Each `true` needs one
    /// [`Lifecycle::exit_io`].
    pub(crate) fn enter_io(&self) -> bool {
        self.io.try_enter()
    }

    /// Releases a per-I/O entry (waking the drainer if it was the last).
    pub(crate) fn exit_io(&self) {
        self.io.leave();
    }

    /// Waits until no I/O is in flight; after `Lifecycle::begin`, none can start.
    pub(crate) async fn drain(&self) {
        self.io.wait_idle().await;
    }

    /// Whether no I/O is in flight.
    #[cfg(any(test, loom))]
    pub(crate) fn is_drained(&self) -> bool {
        self.io.in_flight() == 0
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn delete_refused_while_exported_or_open() {
        let l = Lifecycle::new();
        l.open(OpenKind::Export).unwrap();
        assert_eq!(
            l.open(OpenKind::Export),
            Err(Refusal::Busy("already exported"))
        );
        assert_eq!(l.begin(LvolEvent::Delete), Err(Refusal::Busy("exported")));
        l.close(OpenKind::Export);
        l.open(OpenKind::Blocking).unwrap();
        assert_eq!(l.begin(LvolEvent::Delete), Err(Refusal::Busy("open")));
        l.close(OpenKind::Blocking);
        l.open(OpenKind::Closable).unwrap();
        assert_eq!(l.begin(LvolEvent::Delete), Ok(()));
        assert_eq!(
            l.open(OpenKind::Blocking),
            Err(Refusal::Gone(LvolState::Deleting))
        );
    }

    #[tokio::test]
    async fn close_shuts_the_io_drain_and_drains() {
        let l = Lifecycle::new();
        assert!(l.enter_io());
        assert!(l.enter_io());
        l.begin(LvolEvent::Delete).unwrap();
        assert!(!l.enter_io());
        assert!(!l.is_drained());
        l.exit_io();
        l.exit_io();
        l.drain().await;
        assert_eq!(l.apply(LvolEvent::Freed), Ok(LvolState::Deleted));
        assert_eq!(l.state(), LvolState::Deleted);
        assert_eq!(
            l.begin(LvolEvent::Delete),
            Err(Refusal::Gone(LvolState::Deleted))
        );
        assert!(
            l.apply(LvolEvent::CallOff).is_err(),
            "a deleted lvol stays deleted"
        );
        assert!(!l.enter_io());
    }

    #[test]
    fn a_called_off_delete_admits_io_again() {
        let l = Lifecycle::new();
        l.begin(LvolEvent::Delete).unwrap();
        assert!(!l.enter_io());
        assert_eq!(l.apply(LvolEvent::CallOff), Ok(LvolState::Live));
        assert!(l.enter_io());
        l.exit_io();
        assert!(
            l.apply(LvolEvent::Closed).is_err(),
            "a live lvol cannot skip Unloading"
        );
        l.begin(LvolEvent::Unload).unwrap();
        assert_eq!(
            l.begin(LvolEvent::Delete),
            Err(Refusal::Gone(LvolState::Unloading))
        );
        assert_eq!(l.apply(LvolEvent::Closed), Ok(LvolState::Unloaded));
    }
}

/// Loom model checks of the lifecycle. Run with
/// `RUSTFLAGS="--cfg loom" cargo test -p lamina-lvol --release --lib loom`.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::sync::Ordering;
    use loom::sync::Arc;
    use loom::sync::atomic::AtomicBool;
    use loom::thread;

    /// I/O racing delete: an I/O either enters before the close (and delete waits for it) or is
    /// refused; the "freed" flag is never observed by an I/O that entered.
    #[test]
    fn loom_io_never_sees_freed_state() {
        loom::model(|| {
            let life = Arc::new(Lifecycle::new());
            let freed = Arc::new(AtomicBool::new(false));
            let io = {
                let (life, freed) = (life.clone(), freed.clone());
                thread::spawn(move || {
                    if life.enter_io() {
                        assert!(!freed.load(Ordering::SeqCst), "I/O ran on freed clusters");
                        life.exit_io();
                    }
                })
            };
            life.begin(LvolEvent::Delete).unwrap();
            while !life.is_drained() {
                thread::yield_now();
            }
            freed.store(true, Ordering::SeqCst);
            life.apply(LvolEvent::Freed).unwrap();
            io.join().unwrap();
            assert!(!life.enter_io());
        });
    }

    /// Open racing delete: exactly one wins; a successful open makes delete Busy.
    #[test]
    fn loom_open_and_delete_are_exclusive() {
        loom::model(|| {
            let life = Arc::new(Lifecycle::new());
            let opener = {
                let life = life.clone();
                thread::spawn(move || life.open(OpenKind::Export).is_ok())
            };
            let deleted = life.begin(LvolEvent::Delete).is_ok();
            let opened = opener.join().unwrap();
            assert!(opened ^ deleted, "open={opened} delete={deleted}");
        });
    }

    /// Delete racing an lvstore close on the same lvol: exactly one of them begins; the
    /// other is refused with the state the winner set (close then leaves that lvol to the
    /// delete, which it waits for as detached work).
    #[test]
    fn loom_delete_and_unload_are_exclusive() {
        loom::model(|| {
            let life = Arc::new(Lifecycle::new());
            let unloader = {
                let life = life.clone();
                thread::spawn(move || life.begin(LvolEvent::Unload))
            };
            let deleted = life.begin(LvolEvent::Delete);
            let unloaded = unloader.join().unwrap();
            match (deleted, unloaded) {
                (Ok(()), Err(Refusal::Gone(LvolState::Deleting)))
                | (Err(Refusal::Gone(LvolState::Unloading)), Ok(())) => {}
                other => panic!("both or neither began: {other:?}"),
            }
        });
    }

    /// The registry protocol against the SPDK crash this project exists for: a listing takes
    /// the metadata lock and reads each published lvol's blob; delete unpublishes under that
    /// lock, closes and drains the I/O, and only then frees the blob, under the lock again; an
    /// I/O reads the blob inside its entry. Neither a listing nor an I/O ever reads a freed
    /// blob, and the last handle dropped frees the entry (loom checks no `Arc` leaks).
    #[test]
    fn loom_listing_and_io_never_read_a_freed_blob() {
        struct Entry {
            life: Lifecycle,
            blob: Mutex<Option<u64>>,
        }
        loom::model(|| {
            let meta: Arc<Mutex<Vec<Arc<Entry>>>> = Arc::new(Mutex::new(Vec::new()));
            let entry = Arc::new(Entry {
                life: Lifecycle::new(),
                blob: Mutex::new(Some(7)),
            });
            lock(&meta).push(entry.clone());
            let lister = {
                let meta = meta.clone();
                thread::spawn(move || {
                    let listed = lock(&meta);
                    for e in listed.iter() {
                        assert_eq!(*lock(&e.blob), Some(7), "a listing read a freed blob");
                    }
                })
            };
            let io = {
                let e = entry.clone();
                thread::spawn(move || {
                    if e.life.enter_io() {
                        assert_eq!(*lock(&e.blob), Some(7), "an I/O read a freed blob");
                        e.life.exit_io();
                    }
                })
            };
            {
                let mut m = lock(&meta);
                m.retain(|e| !Arc::ptr_eq(e, &entry));
                entry.life.begin(LvolEvent::Delete).unwrap();
            }
            while !entry.life.is_drained() {
                thread::yield_now();
            }
            {
                let _m = lock(&meta);
                *lock(&entry.blob) = None;
                entry.life.apply(LvolEvent::Freed).unwrap();
            }
            drop(entry);
            lister.join().unwrap();
            io.join().unwrap();
        });
    }
}
