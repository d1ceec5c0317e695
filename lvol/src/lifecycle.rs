//! The lvol lifecycle core: the state (live, deleting, deleted, unloaded), the open counts that
//! make delete answer Busy, and the per-I/O in-flight guard that delete drains before it frees
//! anything. It is pure synchronisation over the [`crate::sync`] shim so loom can check every
//! interleaving of open, I/O, delete and drop (see `tests` below and `lvol/README` in the crate
//! docs for the command).
//!
//! The I/O fast path touches one atomic word: bit 63 is "closed", the low bits count I/Os in
//! flight. Entering is a CAS that fails once closed, so after `begin_close` returns, only I/Os
//! that entered before it are left and [`Lifecycle::is_drained`] turns true when they finish.

use crate::sync::{AtomicU64, Mutex, Ordering, lock};

const CLOSED: u64 = 1 << 63;

/// Where an lvol is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LifeState {
    /// Published: opens and I/O are allowed.
    Live,
    /// Being deleted: unpublished, draining or freeing.
    Deleting,
    /// Deleted: every access through an old handle gets `Deleted`.
    Deleted,
    /// Its lvstore was unloaded: every access gets `Unloaded`.
    Unloaded,
}

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
    Gone(LifeState),
    /// Exported or opened by someone who did not agree to be force-closed.
    Busy(&'static str),
}

#[derive(Debug)]
struct Control {
    state: LifeState,
    exported: bool,
    blocking_opens: u64,
    closable_opens: u64,
}

/// One lvol's lifecycle.
#[derive(Debug)]
pub(crate) struct Lifecycle {
    io: AtomicU64,
    control: Mutex<Control>,
}

impl Lifecycle {
    pub(crate) fn new() -> Self {
        Self {
            io: AtomicU64::new(0),
            control: Mutex::new(Control {
                state: LifeState::Live,
                exported: false,
                blocking_opens: 0,
                closable_opens: 0,
            }),
        }
    }

    /// Current state.
    pub(crate) fn state(&self) -> LifeState {
        lock(&self.control).state
    }

    /// Registers an open of `kind`.
    pub(crate) fn open(&self, kind: OpenKind) -> Result<(), Refusal> {
        let mut c = lock(&self.control);
        if c.state != LifeState::Live {
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
        if c.state != LifeState::Live {
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

    /// Step (b) of deletion: refuses with Busy when exported or open by a blocking descriptor,
    /// otherwise moves to `Deleting` and closes the I/O gate so no new I/O can enter.
    pub(crate) fn begin_close(&self) -> Result<(), Refusal> {
        let mut c = lock(&self.control);
        Self::closable(&c)?;
        c.state = LifeState::Deleting;
        // Under the control lock so a concurrent open sees Deleting first, then the gate shut.
        self.io.fetch_or(CLOSED, Ordering::SeqCst);
        Ok(())
    }

    /// Undoes [`Lifecycle::begin_close`] of a delete that changed nothing (its metadata
    /// operation was refused): live again, I/O admitted again.
    pub(crate) fn abort_close(&self) {
        let mut c = lock(&self.control);
        if c.state == LifeState::Deleting {
            c.state = LifeState::Live;
            self.io.fetch_and(!CLOSED, Ordering::SeqCst);
        }
    }

    /// Final state after a close (`Deleted` or `Unloaded`).
    pub(crate) fn finish(&self, state: LifeState) {
        let mut c = lock(&self.control);
        c.state = state;
        self.io.fetch_or(CLOSED, Ordering::SeqCst);
    }

    /// Takes the per-I/O guard; fails once a close began.
    pub(crate) fn enter_io(&self) -> bool {
        let mut cur = self.io.load(Ordering::SeqCst);
        loop {
            if cur & CLOSED != 0 {
                return false;
            }
            match self
                .io
                .compare_exchange_weak(cur, cur + 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Releases a per-I/O guard; true when this was the last I/O of a closing lvol (so the
    /// drainer must be woken).
    pub(crate) fn exit_io(&self) -> bool {
        let prev = self.io.fetch_sub(1, Ordering::SeqCst);
        prev == (CLOSED | 1)
    }

    /// Whether no I/O is in flight.
    pub(crate) fn is_drained(&self) -> bool {
        self.io.load(Ordering::SeqCst) & !CLOSED == 0
    }

    /// I/Os in flight now.
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> u64 {
        self.io.load(Ordering::SeqCst) & !CLOSED
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
        assert_eq!(l.begin_close(), Err(Refusal::Busy("exported")));
        l.close(OpenKind::Export);
        l.open(OpenKind::Blocking).unwrap();
        assert_eq!(l.begin_close(), Err(Refusal::Busy("open")));
        l.close(OpenKind::Blocking);
        l.open(OpenKind::Closable).unwrap();
        assert_eq!(l.begin_close(), Ok(()));
        assert_eq!(
            l.open(OpenKind::Blocking),
            Err(Refusal::Gone(LifeState::Deleting))
        );
    }

    #[test]
    fn close_shuts_the_io_gate_and_drains() {
        let l = Lifecycle::new();
        assert!(l.enter_io());
        assert!(l.enter_io());
        l.begin_close().unwrap();
        assert!(!l.enter_io());
        assert!(!l.is_drained());
        assert!(!l.exit_io());
        assert!(l.exit_io());
        assert!(l.is_drained());
        assert_eq!(l.in_flight(), 0);
        l.finish(LifeState::Deleted);
        assert_eq!(l.state(), LifeState::Deleted);
        assert_eq!(l.begin_close(), Err(Refusal::Gone(LifeState::Deleted)));
    }
}

/// Loom model checks of the lifecycle. Run with
/// `RUSTFLAGS="--cfg loom" cargo test -p lamina-lvol --release --lib loom`.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
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
            life.begin_close().unwrap();
            while !life.is_drained() {
                thread::yield_now();
            }
            freed.store(true, Ordering::SeqCst);
            life.finish(LifeState::Deleted);
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
            let deleted = life.begin_close().is_ok();
            let opened = opener.join().unwrap();
            assert!(opened ^ deleted, "open={opened} delete={deleted}");
        });
    }

    /// A registry model (a map behind a mutex, like one DashMap shard): a listing snapshots
    /// handles and reads properties; delete unpublishes then drains; the last handle dropped
    /// frees memory (loom checks no Arc leaks). A listed entry is always complete.
    #[test]
    fn loom_listing_races_delete_and_last_drop() {
        struct Entry {
            life: Lifecycle,
            size: AtomicU64,
        }
        loom::model(|| {
            let map: Arc<Mutex<Vec<Arc<Entry>>>> = Arc::new(Mutex::new(Vec::new()));
            let entry = Arc::new(Entry {
                life: Lifecycle::new(),
                size: AtomicU64::new(7),
            });
            lock(&map).push(entry.clone());
            let lister = {
                let map = map.clone();
                thread::spawn(move || {
                    let snapshot: Vec<Arc<Entry>> = lock(&map).clone();
                    for e in snapshot {
                        if e.life.state() == LifeState::Live
                            || e.life.state() == LifeState::Deleting
                        {
                            assert_eq!(e.size.load(Ordering::SeqCst), 7);
                        }
                    }
                })
            };
            let io = {
                let e = entry.clone();
                thread::spawn(move || {
                    if e.life.enter_io() {
                        assert_eq!(e.size.load(Ordering::SeqCst), 7);
                        e.life.exit_io();
                    }
                })
            };
            // Delete: unpublish, close, drain, then the entry's memory goes with the last Arc.
            lock(&map).clear();
            entry.life.begin_close().unwrap();
            while !entry.life.is_drained() {
                thread::yield_now();
            }
            entry.life.finish(LifeState::Deleted);
            drop(entry);
            lister.join().unwrap();
            io.join().unwrap();
        });
    }
}
