//! The memory behind the RAM device's chunks. A chunk is 2 MiB, the size of one transparent
//! huge page on x86-64 and arm64, so that a written chunk is one TLB entry rather than 512:
//! reads from a RAM device are copies out of it, by the target or by the kernel's TCP send,
//! and with 4 KiB pages those copies spend much of their time walking page tables.
//!
//! Getting a huge page costs the kernel work (zeroing 2 MiB, and direct compaction when free
//! memory is fragmented: measured stalls of seconds under load when the first write to a
//! chunk faulted it in on a connection's thread). So huge chunks are made ahead of need by one
//! background thread, the *reserve*: an anonymous mapping advised `MADV_HUGEPAGE`, its
//! 2 MiB-aligned window written once so the kernel faults it in there. A write that needs a new
//! chunk takes one from the reserve at once; if the reserve is empty it takes zeroed heap
//! memory instead (small pages, faulted as written) and never waits. Where the kernel offers
//! no huge pages (`transparent_hugepage` set to `never`) the reserve's chunks are ordinary
//! pages, still faulted off the I/O path.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use memmap2::{MmapMut, MmapOptions};
use parking_lot::{Condvar, Mutex};

/// Bytes per chunk: one huge page.
pub(super) const CHUNK_BYTES: usize = 2 << 20;

/// Chunks the reserve keeps ready (16 MiB): enough to absorb a burst of first writes while the
/// thread makes more (it faults a huge chunk in well under a millisecond when memory is free).
const RESERVE_CHUNKS: usize = 8;

/// How long the reserve rests after the kernel refused a mapping before it tries again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

const PAGE: usize = 4096;

/// One chunk's memory: a window of an anonymous mapping, or heap memory.
pub(super) enum ChunkMem {
    /// `map[start..start + CHUNK_BYTES]`, aligned to `CHUNK_BYTES` and faulted in.
    Mapped { map: MmapMut, start: usize },
    /// Zeroed heap memory, used when the reserve had nothing ready.
    Heap(Box<[u8]>),
}

impl fmt::Debug for ChunkMem {
    // Never dump the memory itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Mapped { .. } => "ChunkMem::Mapped",
            Self::Heap(_) => "ChunkMem::Heap",
        })
    }
}

impl ChunkMem {
    /// The chunk's `CHUNK_BYTES` bytes.
    pub(super) fn bytes(&self) -> &[u8] {
        match self {
            Self::Mapped { map, start } => map.get(*start..*start + CHUNK_BYTES).unwrap_or(&[]),
            Self::Heap(b) => b,
        }
    }

    /// The chunk's `CHUNK_BYTES` bytes, writable.
    pub(super) fn bytes_mut(&mut self) -> &mut [u8] {
        match self {
            Self::Mapped { map, start } => {
                map.get_mut(*start..*start + CHUNK_BYTES).unwrap_or(&mut [])
            }
            Self::Heap(b) => b,
        }
    }

    /// Whether this chunk came from the reserve (tests).
    #[cfg(test)]
    pub(super) fn is_mapped(&self) -> bool {
        matches!(self, Self::Mapped { .. })
    }

    /// A zeroed chunk from the heap, at once.
    fn heap() -> Self {
        Self::Heap(vec![0u8; CHUNK_BYTES].into_boxed_slice())
    }

    /// A zeroed chunk in a mapping advised for huge pages, faulted in now (slow: the reserve
    /// thread's job). Twice the chunk is mapped so that an aligned window fits wherever the
    /// kernel places it; the rest of the mapping is never touched and costs no memory.
    pub(super) fn mapped() -> std::io::Result<Self> {
        let mut map = MmapOptions::new().len(2 * CHUNK_BYTES).map_anon()?;
        // Best effort: without it (no THP in this kernel) the chunk is still faulted here.
        #[cfg(target_os = "linux")]
        let _ = map.advise(memmap2::Advice::HugePage);
        let addr = map.as_ptr().addr();
        let start = addr.next_multiple_of(CHUNK_BYTES) - addr;
        if let Some(window) = map.get_mut(start..start + CHUNK_BYTES) {
            // A write (not a read, which would map the shared zero page) faults each page in;
            // with a huge page the first write maps all 2 MiB and the rest are plain stores.
            for page in window.chunks_mut(PAGE) {
                if let Some(b) = page.first_mut() {
                    *b = 0;
                }
            }
        }
        Ok(Self::Mapped { map, start })
    }
}

/// Chunks made ahead of need, and the thread that makes them.
struct Reserve {
    ready: Mutex<Vec<ChunkMem>>,
    wanted: Condvar,
}

impl Reserve {
    fn run(&self) {
        loop {
            {
                let mut ready = self.ready.lock();
                while ready.len() >= RESERVE_CHUNKS {
                    self.wanted.wait(&mut ready);
                }
            }
            match ChunkMem::mapped() {
                Ok(chunk) => self.ready.lock().push(chunk),
                Err(e) => {
                    tracing::warn!(error = %e, "RAM device reserve: no huge chunk mapped");
                    std::thread::sleep(RETRY_AFTER);
                }
            }
        }
    }
}

/// The process's reserve, its thread started on first use; `None` if the thread could not be
/// started (every chunk then comes from the heap).
fn reserve() -> Option<&'static Reserve> {
    static RESERVE: OnceLock<Option<&'static Reserve>> = OnceLock::new();
    *RESERVE.get_or_init(|| {
        let r: &'static Reserve = Box::leak(Box::new(Reserve {
            ready: Mutex::new(Vec::with_capacity(RESERVE_CHUNKS)),
            wanted: Condvar::new(),
        }));
        match std::thread::Builder::new()
            .name("lamina-ram-reserve".into())
            .spawn(move || r.run())
        {
            Ok(_) => Some(r),
            Err(e) => {
                tracing::warn!(error = %e, "RAM device reserve thread not started");
                None
            }
        }
    })
}

/// A zeroed chunk for a first write, without waiting: a faulted-in huge chunk from the reserve
/// when one is ready, else heap memory. Either way the reserve is asked to make another.
pub(super) fn take() -> ChunkMem {
    let Some(r) = reserve() else {
        return ChunkMem::heap();
    };
    let chunk = r.ready.lock().pop();
    r.wanted.notify_one();
    chunk.unwrap_or_else(ChunkMem::heap)
}

/// Waits (tests) until the reserve has a chunk ready, or a second passes.
#[cfg(test)]
pub(super) fn wait_ready() -> bool {
    let Some(r) = reserve() else { return false };
    for _ in 0..1000 {
        if !r.ready.lock().is_empty() {
            return true;
        }
        r.wanted.notify_one();
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}
