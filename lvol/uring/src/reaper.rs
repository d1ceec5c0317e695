//! Who reaps a ring's completions, and where.
//!
//! Created on a tokio runtime, the ring signals an eventfd on every completion and a task on
//! that runtime watches it: a completion wakes the runtime's reactor once, and the reaping and
//! the task waiting for the result run on the runtime's own thread. (A completion thread
//! blocked in `io_uring_enter` would cost two wake-ups per I/O: the kernel waking that thread,
//! and that thread waking the runtime.) Without a runtime, or when the eventfd cannot be set
//! up, a thread does it. If the runtime shuts down while operations are in flight, the task
//! hands the ring to a thread, which reaps until they have all completed: no buffer is ever
//! freed under the kernel, and there is only ever one reaper (the completion queue's single
//! consumer).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::Arc;

use io_uring::{IoUring, types};
use tokio::io::unix::AsyncFd;

use super::{EXIT, Shared, complete, fail_all};

/// The eventfd for a ring created on a tokio runtime, registered with the ring; `None` off a
/// runtime or when the kernel refuses it (the thread reaps then).
pub(super) fn events_for(ring: &IoUring) -> Option<File> {
    tokio::runtime::Handle::try_current().ok()?;
    // SAFETY: eventfd takes no pointers; a non-negative result is a new descriptor we own.
    #[allow(unsafe_code)]
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` is a fresh descriptor owned by nothing else.
    #[allow(unsafe_code)]
    let events = unsafe { File::from_raw_fd(fd) };
    ring.submitter().register_eventfd(events.as_raw_fd()).ok()?;
    Some(events)
}

/// Starts reaping `shared`'s completions: a task on the current runtime when the ring has an
/// eventfd, else a thread.
pub(super) fn start(shared: &Arc<Shared>) -> io::Result<()> {
    if let Some(events) = &shared.events {
        // Registered with the current runtime's reactor (the target's runtimes all have I/O
        // enabled; `events_for` returned `None` off a runtime).
        if let Ok(watch) = events.try_clone() {
            // SAFETY: the `File` owns its descriptor, keeps it open until the `AsyncFd` drops
            // it, and always returns that same descriptor.
            #[allow(unsafe_code)]
            if let Ok(watch) = unsafe { AsyncFd::register(watch) } {
                tokio::spawn(on_runtime(shared.clone(), watch));
                return Ok(());
            }
        }
        let _ = shared.ring.submitter().unregister_eventfd();
    }
    spawn_thread(shared.clone())
}

/// Wakes the runtime reaper so it submits what is queued (a submission that failed with
/// `EAGAIN` or `EBUSY`); the thread retries on its own every second.
pub(super) fn kick(shared: &Shared) {
    if let Some(mut events) = shared.events.as_ref() {
        let _ = events.write(&1u64.to_ne_bytes());
    }
}

fn spawn_thread(shared: Arc<Shared>) -> io::Result<()> {
    std::thread::Builder::new()
        .name("lamina-uring".into())
        .spawn(move || on_thread(&shared))
        .map(drop)
}

/// Every operation has completed and the file was dropped: the reaper's work is over.
fn finished(shared: &Shared) -> bool {
    let st = shared.state.lock();
    st.closing && st.in_flight == 0
}

/// Hands every completion waiting in the queue to its slot and wakes the waiting tasks.
#[allow(unsafe_code)]
fn drain(shared: &Shared) {
    // SAFETY: there is one reaper per ring at a time (the task hands over to the thread only
    // once it has stopped), and the reaper is the completion queue's only consumer.
    let cq = unsafe { shared.ring.completion_shared() };
    for cqe in cq {
        if cqe.user_data() == EXIT {
            continue;
        }
        let index = usize::try_from(cqe.user_data()).unwrap_or(usize::MAX);
        if let Some(waker) = complete(shared, index, cqe.result()) {
            waker.wake();
        }
    }
}

/// The thread: waits in `io_uring_enter` for completions (submitting what is queued).
fn on_thread(shared: &Shared) {
    // Wakes up now and then even when idle, to submit an entry whose own submission failed
    // (EAGAIN, EBUSY); the wait is a sleep, not a poll.
    let ts = types::Timespec::new().sec(1);
    let args = types::SubmitArgs::new().timespec(&ts);
    loop {
        match shared.ring.submitter().submit_with_args(1, &args) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e)
                if e.raw_os_error() == Some(libc::EBUSY)
                    || e.raw_os_error() == Some(libc::ETIME)
                    || e.raw_os_error() == Some(libc::EAGAIN) => {}
            Err(_) => {
                fail_all(shared);
                return;
            }
        }
        drain(shared);
        if finished(shared) {
            return;
        }
    }
}

/// Gives the ring to a thread if the runtime task stops (its runtime shutting down) while
/// operations are still in flight.
struct Handoff(Option<Arc<Shared>>);

impl Drop for Handoff {
    fn drop(&mut self) {
        if let Some(shared) = self.0.take()
            && !finished(&shared)
            && spawn_thread(shared.clone()).is_err()
        {
            // No thread either: fail what waits (the ring and its buffers stay alive in
            // `shared` for as long as a future holds the file).
            fail_all(&shared);
        }
    }
}

/// The runtime task: reaps whenever the ring signals its eventfd.
async fn on_runtime(shared: Arc<Shared>, watch: AsyncFd<File>) {
    let mut handoff = Handoff(Some(shared.clone()));
    loop {
        let Ok(mut ready) = watch.readable().await else {
            // The reactor failed us: the thread takes over.
            return;
        };
        // Reset the count, then reap: a completion posted after the read signals again.
        let _ = ready.try_io(|events| {
            let mut count = [0u8; 8];
            while events.get_ref().read(&mut count).is_ok() {}
            Err::<(), _>(io::ErrorKind::WouldBlock.into())
        });
        drain(&shared);
        // What is queued: continuations of short reads and writes pushed by `drain`, and
        // entries whose own submission failed.
        let submitted = shared.ring.submitter().submit();
        if finished(&shared) {
            handoff.0 = None;
            return;
        }
        if let Err(e) = submitted
            && matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EBUSY))
        {
            // Try again after the runtime has run something else.
            kick(&shared);
            tokio::task::yield_now().await;
        }
    }
}
