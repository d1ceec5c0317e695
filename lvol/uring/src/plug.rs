//! Batched submission, as the block layer's plug: while a [`Plug`] is held on a thread, the
//! requests that thread makes are queued in their ring's submission queue without entering
//! the kernel, and dropping the plug submits each ring that queued something with one
//! `io_uring_enter`. A connection holds one while it decodes the commands of one read from
//! its socket, so a burst of N commands costs one system call (and, on a virtual disk, one
//! doorbell: the kernel plugs its block requests within one submission) instead of N.
//!
//! Bounded: after [`MAX_DEFERRED`] deferred requests a ring is submitted at once, so the first
//! command of a long burst does not wait for the whole burst to be decoded; and any submission
//! on the ring (the reaper's, after it reaps) takes the deferred requests along. Unplugged
//! threads submit every request at once. Plugs nest; the outermost one submits.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::Arc;

use super::{Shared, reaper};

/// Requests deferred on one thread after which they are submitted without waiting for the
/// plug to drop (the block layer's plug flushes at 32 too).
pub const MAX_DEFERRED: usize = 32;

#[derive(Default)]
struct Plugged {
    /// Plugs alive on this thread.
    depth: usize,
    /// Requests deferred since the last submission.
    deferred: usize,
    /// Rings with deferred requests (a handful at most: one per file a burst touched).
    rings: Vec<Arc<Shared>>,
}

thread_local! {
    static PLUGGED: RefCell<Plugged> = RefCell::new(Plugged::default());
}

/// Defers the submissions of this thread until it drops (see the module documentation).
/// Not `Send`: it must drop on the thread that made it.
#[derive(Debug)]
#[must_use = "the plug submits when it drops"]
pub struct Plug {
    _thread: PhantomData<*const ()>,
}

/// Starts deferring this thread's submissions until the returned plug drops.
pub fn plug() -> Plug {
    PLUGGED.with(|p| p.borrow_mut().depth += 1);
    Plug {
        _thread: PhantomData,
    }
}

impl Drop for Plug {
    fn drop(&mut self) {
        let outermost = PLUGGED.with(|p| {
            let mut p = p.borrow_mut();
            p.depth = p.depth.saturating_sub(1);
            p.depth == 0
        });
        if outermost {
            flush();
        }
    }
}

/// Submits every ring with deferred requests.
fn flush() {
    // Taken out of the thread-local first: submitting never re-enters it, but a panic in
    // between would leave it borrowed. The vector goes back to keep its capacity.
    let mut rings = PLUGGED.with(|p| {
        let mut p = p.borrow_mut();
        p.deferred = 0;
        std::mem::take(&mut p.rings)
    });
    for shared in rings.drain(..) {
        submit_now(&shared);
    }
    PLUGGED.with(|p| {
        let mut p = p.borrow_mut();
        if p.rings.is_empty() {
            p.rings = rings;
        }
    });
}

/// Submits what `shared` has queued; on failure the entries stay queued and the reaper
/// submits them.
fn submit_now(shared: &Shared) {
    if shared.ring.submitter().submit().is_err() {
        reaper::kick(shared);
    }
}

/// What [`submit_or_defer`] found to do.
enum Then {
    /// Not plugged: submit now.
    Submit,
    /// Deferred under the plug.
    Wait,
    /// Deferred, and the bound is reached: submit every ring now.
    Flush,
}

/// A request was queued on `shared`: submits it now, or, under a plug, when the plug drops.
pub(super) fn submit_or_defer(shared: &Arc<Shared>) {
    let then = PLUGGED.with(|p| {
        let mut p = p.borrow_mut();
        if p.depth == 0 {
            return Then::Submit;
        }
        if !p.rings.iter().any(|r| Arc::ptr_eq(r, shared)) {
            p.rings.push(shared.clone());
        }
        p.deferred += 1;
        if p.deferred >= MAX_DEFERRED {
            Then::Flush
        } else {
            Then::Wait
        }
    });
    match then {
        Then::Submit => submit_now(shared),
        Then::Wait => {}
        Then::Flush => flush(),
    }
}
