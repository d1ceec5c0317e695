//! A counting global allocator for the allocation tests (`integration/tests/perf_alloc.rs`,
//! `target/tests/alloc_io.rs`): it forwards everything to the system allocator and counts the
//! allocations made on the threads a test marks as tracked, per thread and in total.
//!
//! A test installs it with `#[global_allocator] static A: CountingAlloc = CountingAlloc;`,
//! marks threads with [`track_this_thread`] (for example in a runtime's `on_thread_start`),
//! and reads [`thread_count`] or [`total`] around the work it measures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

thread_local! {
    static TRACKED: Cell<bool> = const { Cell::new(false) };
    static THREAD_COUNT: Cell<u64> = const { Cell::new(0) };
}

/// Allocations made on tracked threads, all threads together.
static TOTAL: AtomicU64 = AtomicU64::new(0);

/// Starts or stops counting the allocations of the calling thread.
pub fn track_this_thread(on: bool) {
    TRACKED.with(|t| t.set(on));
}

/// Allocations counted on the calling thread so far.
pub fn thread_count() -> u64 {
    THREAD_COUNT.with(Cell::get)
}

/// Allocations counted on every tracked thread so far.
pub fn total() -> u64 {
    TOTAL.load(Ordering::Relaxed)
}

fn note() {
    // `try_with`: allocations during thread teardown, after the thread-locals are gone.
    if TRACKED.try_with(Cell::get).unwrap_or(false) {
        let _ = THREAD_COUNT.try_with(|c| c.set(c.get() + 1));
        TOTAL.fetch_add(1, Ordering::Relaxed);
    }
}

/// The counting allocator (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAlloc;

#[allow(unsafe_code)]
// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// caller's obligations are exactly the ones `System` needs; the counting touches only
// const-initialised thread-locals and an atomic, which never allocate.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
