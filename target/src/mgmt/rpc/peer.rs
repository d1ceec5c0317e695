//! Who may drive the target over JSON-RPC: processes running as the target's own user, or
//! root. The RPC can open files and devices and export them, so any other local user reaching
//! it could read or write what the target can (the target often runs as root).
//!
//! The Unix socket is created mode 0600 and also checks its peer's credentials
//! (`SO_PEERCRED`). A loopback TCP listener (`--rpc-listen`) has no peer credentials, so the
//! client's socket is looked up in `/proc/net/tcp` (or `tcp6`), where the kernel lists the
//! user owning each socket of this network namespace: the connection is served only if that
//! user is allowed. SPDK's clients (`rpc.py`, `spdk-rpc`) need no change for either.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

/// Whether processes of `uid` may use the RPC.
pub fn allowed_uid(uid: u32) -> bool {
    uid == 0 || uid == rustix::process::geteuid().as_raw()
}

/// The user of the peer of a Unix socket.
pub fn unix_peer_uid(stream: &tokio::net::UnixStream) -> Result<u32, String> {
    stream
        .peer_cred()
        .map(|c| c.uid())
        .map_err(|e| format!("no peer credentials: {e}"))
}

/// The user owning the client end (`peer`) of a loopback TCP connection to `local`.
pub fn tcp_peer_uid(peer: SocketAddr, local: SocketAddr) -> Result<u32, String> {
    let table = match peer.ip() {
        IpAddr::V4(_) => "/proc/net/tcp",
        IpAddr::V6(_) => "/proc/net/tcp6",
    };
    let text = std::fs::read_to_string(table).map_err(|e| format!("{table}: {e}"))?;
    let (want_local, want_remote) = (hex_addr(peer), hex_addr(local));
    text.lines()
        .skip(1)
        .find_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (l, r, uid) = (f.get(1)?, f.get(2)?, f.get(7)?);
            (l.eq_ignore_ascii_case(&want_local) && r.eq_ignore_ascii_case(&want_remote))
                .then(|| uid.parse().ok())
                .flatten()
        })
        .ok_or_else(|| format!("the client socket {peer} is not in {table}"))
}

/// An address as `/proc/net/tcp{,6}` prints it: each 32-bit word of the address in host byte
/// order as 8 hex digits, then the port as 4.
fn hex_addr(a: SocketAddr) -> String {
    let words: Vec<u32> = match a.ip() {
        IpAddr::V4(ip) => vec![u32::from_ne_bytes(ip.octets())],
        IpAddr::V6(ip) => ip
            .octets()
            .chunks_exact(4)
            .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    };
    let mut s = String::with_capacity(words.len() * 8 + 5);
    for w in &words {
        let _ = write!(s, "{w:08X}");
    }
    let _ = write!(s, ":{:04X}", a.port());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_print_as_the_kernel_does() {
        // /proc/net/tcp on little-endian x86_64 prints 127.0.0.1:8080 as 0100007F:1F90.
        if cfg!(target_endian = "little") {
            assert_eq!(hex_addr("127.0.0.1:8080".parse().unwrap()), "0100007F:1F90");
            assert_eq!(
                hex_addr("[::1]:80".parse().unwrap()),
                "00000000000000000000000001000000:0050"
            );
        }
    }

    #[tokio::test]
    async fn the_owner_of_a_loopback_client_is_found() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = tokio::net::TcpStream::connect(l.local_addr().unwrap())
            .await
            .unwrap();
        let (s, peer) = l.accept().await.unwrap();
        let uid = tcp_peer_uid(peer, s.local_addr().unwrap()).unwrap();
        assert_eq!(uid, rustix::process::geteuid().as_raw());
        assert!(allowed_uid(uid));
        drop(c);
    }
}
