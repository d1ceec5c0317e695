//! A small in-process NVMe/TCP target for testing the host before Lamina's target exists (and
//! for injecting faults a real target never makes). It serves one subsystem with one RAM
//! namespace: IC exchange, Connect (admin and I/O), Property Get/Set with the CC/CSTS state
//! machines, Identify, Get/Set Features, Get Log Page, Keep Alive with KATO enforcement,
//! Asynchronous Event Requests, and Read/Write/Flush/Write Zeroes/DSM/Compare with in-capsule
//! data, R2T/H2CData and C2HData (with SUCCESS when the host disabled SQ flow control).
//!
//! The wire side of every connection is Lamina's sans-IO queue core
//! (`lamina_protocol::target::TargetQueue`), configured with the mock's chunk sizes; the mock
//! adds its own command set and the faults. It processes the commands of one connection in
//! order; it is not Lamina's target.

mod admin;
mod conn;
mod io;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Subsystem NQN the mock serves.
pub const MOCK_NQN: &str = "nqn.2026-11.io.lamina:mock";

/// A misbehaviour to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    /// None: a well-behaved target.
    #[default]
    None,
    /// C2HData of I/O reads starts at DATAO 512 instead of 0.
    BadDatao,
    /// Reads on I/O queues are never answered.
    IgnoreReads,
    /// Identify Controller reports a CNTLID other than Connect's.
    WrongCntlid,
    /// After this many I/O commands on a connection, send a C2HTermReq and close.
    TermAfter(u32),
    /// Every 100th I/O read returns one byte flipped.
    CorruptReads,
}

/// Knobs of the mock.
#[derive(Debug, Clone, Copy)]
pub struct MockConfig {
    /// MAXH2CDATA announced.
    pub maxh2cdata: u32,
    /// Most bytes per R2T.
    pub r2t_chunk: u32,
    /// Most bytes per C2HData PDU.
    pub c2h_chunk: u32,
    /// IOCCSZ (16-byte units).
    pub ioccsz: u32,
    /// MDTS (power of two of 4 KiB, 0: none).
    pub mdts: u8,
    /// CAP.MQES (0's based).
    pub mqes: u16,
    /// I/O queues the controller grants.
    pub max_io_queues: u16,
    /// Namespace size in 4 KiB blocks.
    pub blocks: u64,
    /// Injected fault.
    pub fault: Fault,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            maxh2cdata: 32 * 1024,
            r2t_chunk: 64 * 1024,
            c2h_chunk: 16 * 1024,
            ioccsz: (8192 + 64) / 16,
            mdts: 8,
            mqes: 127,
            max_io_queues: 8,
            blocks: 4096,
            fault: Fault::None,
        }
    }
}

/// Event for a controller's admin connection.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CtrlEvent {
    /// Complete an outstanding AER with this DW0.
    Aen(u32),
}

#[derive(Debug, Default)]
pub(crate) struct CtrlState {
    pub(crate) cc: u32,
    pub(crate) csts: u32,
    pub(crate) kato_ms: u32,
    pub(crate) aec: u32,
    pub(crate) events: Option<mpsc::UnboundedSender<CtrlEvent>>,
}

/// State shared by all connections.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: MockConfig,
    pub(crate) data: Mutex<Vec<u8>>,
    pub(crate) next_cntlid: AtomicU16,
    pub(crate) controllers: Mutex<HashMap<u16, CtrlState>>,
    pub(crate) keep_alives: AtomicU64,
    pub(crate) io_commands: AtomicU64,
}

impl Shared {
    pub(crate) fn with_ctrl<R>(
        &self,
        cntlid: u16,
        f: impl FnOnce(&mut CtrlState) -> R,
    ) -> Option<R> {
        let mut map = self
            .controllers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get_mut(&cntlid).map(f)
    }
}

/// A running mock target on 127.0.0.1.
#[derive(Debug)]
pub struct MockTarget {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl MockTarget {
    /// Starts a target with `config` on an ephemeral port.
    pub async fn start(config: MockConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let size = usize::try_from(config.blocks * 4096).expect("size");
        let shared = Arc::new(Shared {
            config,
            data: Mutex::new(vec![0; size]),
            next_cntlid: AtomicU16::new(1),
            controllers: Mutex::new(HashMap::new()),
            keep_alives: AtomicU64::new(0),
            io_commands: AtomicU64::new(0),
        });
        let s = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = Arc::clone(&s);
                tokio::spawn(async move {
                    let _ = conn::serve(stream, s).await;
                });
            }
        });
        Self { addr, shared, task }
    }

    /// Listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Keep Alive commands received.
    pub fn keep_alives(&self) -> u64 {
        self.shared.keep_alives.load(Ordering::Relaxed)
    }

    /// I/O commands executed.
    pub fn io_commands(&self) -> u64 {
        self.shared.io_commands.load(Ordering::Relaxed)
    }

    /// Reports a Namespace Attribute Changed event to every controller that enabled it.
    pub fn notify_ns_changed(&self) {
        let map = self
            .shared
            .controllers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for ctrl in map.values() {
            if let Some(tx) = &ctrl.events {
                let _ = tx.send(CtrlEvent::Aen(
                    lamina_protocol::nvme::AsyncEvent::NS_CHANGED.to_dw0(),
                ));
            }
        }
    }

    /// A copy of `len` bytes of the namespace at byte `offset`.
    pub fn peek(&self, offset: usize, len: usize) -> Vec<u8> {
        let data = self
            .shared
            .data
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        data.get(offset..offset + len)
            .map(<[u8]>::to_vec)
            .unwrap_or_default()
    }
}

impl Drop for MockTarget {
    fn drop(&mut self) {
        self.task.abort();
    }
}
