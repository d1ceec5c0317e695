//! The NVMe/TCP transport: listeners that accept connections and the per-connection task.
//!
//! [`listen_port`] binds an address; [`accept_loop`] spawns one [`connection::serve`] task per
//! accepted connection that [`admission`] admits (caps in total and per source, with idle
//! handshakes evicted first, and a deadline to Connect), so a connection flood cannot exhaust
//! the process or lock out well-behaved hosts. Each connection is one queue (admin or I/O) of
//! one controller.
//!
//! # Runtime layout
//!
//! By default a connection's task runs on the runtime that accepted it: the `lamina` binary's
//! multi-thread runtime, one worker per CPU the process may use. Each connection is a single
//! task that owns its socket and polls its own commands (see [`slots`]), so a command never
//! changes threads between its PDU arriving and its completion leaving, and work stealing
//! only moves whole connections between idle and busy workers. With the `per-core` connection
//! runtime setting (`--conn-runtime`, see `crate::settings`) connections are dealt round-robin
//! to one current-thread runtime per CPU instead (no work stealing at all).
//! `integration/PERFORMANCE.md` has the measurements behind the default.

pub mod accept;
pub mod admission;
pub mod busy_poll;
pub mod connection;
pub mod pool;
pub mod queue;
pub mod slots;
pub mod tls;
pub mod zero_copy;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::options::SockOptions;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use crate::plane::DataPlane;
use crate::plane::ports::Port;
use crate::settings::ConnRuntime;
use admission::Ticket;

/// The network shell's state: the data plane it serves, and what only the shell uses.
#[derive(Debug)]
pub struct Network {
    /// What hosts reach.
    pub plane: Arc<DataPlane>,
    /// NVMe/TCP connection limits and who holds a place.
    pub admission: Arc<admission::Admission>,
    /// Socket options of accepted connections (`sock_impl_set_options`).
    pub sock_options: parking_lot::RwLock<crate::options::SockImpls>,
}

impl Network {
    /// The shell of `plane`, with the default connection limits and socket options.
    pub fn new(plane: Arc<DataPlane>) -> Self {
        Self {
            plane,
            admission: admission::Admission::new(admission::ConnectionLimits::default()),
            sock_options: parking_lot::RwLock::new(crate::options::SockImpls::default()),
        }
    }
}

impl std::ops::Deref for Network {
    type Target = DataPlane;

    fn deref(&self) -> &DataPlane {
        &self.plane
    }
}

/// Listens on `addr` unless a port is already there, and runs its accept loop; returns the
/// port. A `secure` port serves TLS connections only, a clear one clear-text only: asking for
/// the other kind on an address already listening is an error.
pub async fn listen_port(
    net: &Arc<Network>,
    addr: SocketAddr,
    secure: bool,
) -> std::io::Result<Port> {
    let kind = |secure| {
        if secure {
            "a secure channel (TLS)"
        } else {
            "clear text"
        }
    };
    let same_kind = |p: Port| {
        if p.secure == secure {
            Ok(p)
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!(
                    "{} already listens with {}, not {} (secure_channel)",
                    p.addr,
                    kind(p.secure),
                    kind(secure)
                ),
            ))
        }
    };
    if let Some(p) = net.ports.get(addr) {
        return same_kind(p);
    }
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let Some(port) = net.ports.insert(bound, secure) else {
        return net
            .ports
            .get(bound)
            .ok_or_else(|| std::io::ErrorKind::AddrInUse.into())
            .and_then(same_kind);
    };
    tracing::info!(addr = %bound, portid = port.id, secure, "NVMe/TCP listener up");
    let (n, c) = (net.clone(), net.cancel.child_token());
    net.tracker.spawn(accept_loop(listener, n, c, secure));
    Ok(port)
}

/// The per-core connection runtimes, started on first use when the settings ask for them.
fn per_core_runtimes(layout: ConnRuntime) -> Option<&'static [Handle]> {
    static RUNTIMES: OnceLock<Option<Vec<Handle>>> = OnceLock::new();
    if layout != ConnRuntime::PerCore {
        return None;
    }
    RUNTIMES.get_or_init(start_per_core).as_deref()
}

/// One current-thread runtime per usable CPU (see `crate::cores`), each on its own thread
/// pinned to its CPU, running forever.
fn start_per_core() -> Option<Vec<Handle>> {
    // The CPU set (`--cores`, or the affinity given), cut to the parallelism a cgroup quota
    // allows.
    let limit = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mut cpus = crate::cores::allowed();
    cpus.truncate(limit.max(1));
    // No affinity readable: one runtime, unpinned.
    let slots: Vec<Option<usize>> = if cpus.is_empty() {
        vec![None]
    } else {
        cpus.iter().copied().map(Some).collect()
    };
    let mut handles = Vec::with_capacity(slots.len());
    for (i, cpu) in slots.into_iter().enumerate() {
        let (tx, rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name(format!("lamina-conn-{i}"))
            .spawn(move || {
                if let Some(cpu) = cpu
                    && let Err(e) = crate::cores::pin_current_thread(cpu)
                {
                    tracing::warn!(cpu, error = %e, "cannot pin a connection runtime to its CPU");
                }
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                let _ = tx.send(rt.handle().clone());
                rt.block_on(std::future::pending::<()>());
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the per-core runtimes: using the shared one");
            return None;
        }
        handles.push(rx.recv().ok()?);
    }
    tracing::info!(
        runtimes = handles.len(),
        cpus = %crate::cores::CoreList::describe(&cpus),
        "connections run on per-core current-thread runtimes, one pinned to each CPU"
    );
    Some(handles)
}

/// Runs one connection's task: on the accepting runtime, or moved to a per-core runtime.
fn spawn_connection(
    stream: TcpStream,
    target: &Arc<Network>,
    ticket: Ticket,
    next: &mut usize,
    secure: bool,
) {
    set_socket_options(
        &stream,
        target.options().sock_priority,
        target.sock_options.read().posix,
    );
    let t = target.clone();
    let Some(rts) = per_core_runtimes(target.settings.conn_runtime) else {
        target
            .tracker
            .spawn(connection::serve_guarded(stream, t, ticket, secure));
        return;
    };
    // A socket belongs to the reactor that registered it: hand it over as a std socket.
    let Ok(std_stream) = stream.into_std() else {
        return;
    };
    let Some(rt) = rts.get(*next % rts.len()) else {
        return;
    };
    *next = next.wrapping_add(1);
    rt.spawn(target.tracker.track_future(async move {
        if let Ok(stream) = TcpStream::from_std(std_stream) {
            connection::serve_guarded(stream, t, ticket, secure).await;
        }
    }));
}

/// Sets what the configuration asks of an accepted connection: `SO_PRIORITY` (the transport's
/// `sock_priority`; 0 leaves the default), `SO_RCVBUF`/`SO_SNDBUF` and `TCP_QUICKACK` (the posix
/// socket options; 0 sizes leave the kernel's autotuning). A failure (priorities above 6 need
/// `CAP_NET_ADMIN`) is logged and the connection served anyway, as SPDK does.
fn set_socket_options(stream: &TcpStream, priority: u32, sock: SockOptions) {
    let s = socket2::SockRef::from(stream);
    let results = [
        (
            "priority",
            (priority != 0).then(|| s.set_priority(priority)),
        ),
        (
            "recv_buf_size",
            (sock.recv_buf_size != 0).then(|| s.set_recv_buffer_size(sock.recv_buf_size as usize)),
        ),
        (
            "send_buf_size",
            (sock.send_buf_size != 0).then(|| s.set_send_buffer_size(sock.send_buf_size as usize)),
        ),
        (
            "quickack",
            sock.enable_quickack.then(|| s.set_tcp_quickack(true)),
        ),
    ];
    for (what, result) in results {
        if let Some(Err(e)) = result {
            tracing::warn!(option = what, error = %e, "cannot set a socket option of the connection");
        }
    }
}

/// Accepts connections until `cancel` fires; each is admitted or closed at once.
pub async fn accept_loop(
    listener: TcpListener,
    target: Arc<Network>,
    cancel: CancellationToken,
    secure: bool,
) {
    let mut next = 0usize;
    // Not before start-up ends (see `crate::plane::ports`): connections wait in the accept queue.
    tokio::select! {
        () = cancel.cancelled() => return,
        () = target.ports.opened() => {}
    }
    crate::transport::accept::accept_loop(
        &cancel,
        "nvme-tcp",
        Duration::from_millis(100),
        || listener.accept(),
        |(stream, peer)| match target.admission.admit(peer.ip(), &cancel) {
            Ok(ticket) => spawn_connection(stream, &target, ticket, &mut next, secure),
            Err(why) => {
                tracing::debug!(%peer, reason = why.label(), "connection refused: limit reached");
                drop(stream);
            }
        },
    )
    .await;
}
