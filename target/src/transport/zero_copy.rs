//! Linux `MSG_ZEROCOPY` on a connection's socket: large C2HData payloads go to the socket
//! without being copied into it. The kernel then reads the pages themselves until the data
//! is acknowledged, and reports each send's completion on the socket's error queue; until
//! then the queue's core keeps the payload (see `lamina_protocol::target::Sent`). The system
//! calls are here, each with what makes it sound; [`super::connection`] decides when to use
//! them.
//!
//! The kernel numbers the zero-copy sends of a socket from 0, one per `sendmsg` that took
//! bytes, and reports ranges of those numbers. A send over loopback (or to a device that
//! cannot do scatter-gather) is copied later by the kernel instead, and reported as such.

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, BorrowedFd};

/// `SO_ZEROCOPY` (asm-generic/socket.h; the same on x86 and arm).
const SO_ZEROCOPY: libc::c_int = 60;
/// `SO_EE_ORIGIN_ZEROCOPY` (linux/errqueue.h).
const SO_EE_ORIGIN_ZEROCOPY: u8 = 5;
/// `SO_EE_CODE_ZEROCOPY_COPIED`: the kernel copied the data after all.
const SO_EE_CODE_ZEROCOPY_COPIED: u8 = 1;
/// The size of a `c_int` socket option (4 bytes).
const C_INT_LEN: libc::socklen_t = 4;
/// Room for one `IP_RECVERR` control message (a `sock_extended_err` and the offender's
/// address), with margin.
const CONTROL_SPACE: usize = 128;

/// Zero-copy sends that completed: numbers `first..=last` (wrapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completed {
    /// The first send completed.
    pub first: u32,
    /// The last send completed.
    pub last: u32,
    /// Whether the kernel copied the data anyway (loopback, or a device without
    /// scatter-gather).
    pub copied: bool,
}

/// Lets `fd` take `MSG_ZEROCOPY` sends (Linux 4.14 and later).
pub fn enable(fd: BorrowedFd<'_>) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `fd` is an open socket for the call's duration; the option value points at a
    // live `c_int` whose size is passed with it.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_ZEROCOPY,
            std::ptr::from_ref(&on).cast(),
            C_INT_LEN,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sends `iov` with `MSG_ZEROCOPY`, without blocking. The bytes it took (the count returned)
/// must stay unchanged until their send's completion is read.
pub fn send(fd: BorrowedFd<'_>, iov: &[IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: an all-zero `msghdr` is valid (no name, no control data).
    #[allow(unsafe_code)]
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // `IoSlice` is ABI-compatible with `iovec` on Unix (std guarantees it); sendmsg only
    // reads through the pointer.
    msg.msg_iov = iov.as_ptr().cast_mut().cast();
    msg.msg_iovlen = iov.len();
    let flags = libc::MSG_ZEROCOPY | libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    // SAFETY: `msg` points at `iov.len()` valid slices that outlive the call; the kernel
    // pins the pages it keeps, so the memory stays valid to it whatever happens later.
    #[allow(unsafe_code)]
    let n = unsafe { libc::sendmsg(fd.as_raw_fd(), &raw const msg, flags) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Reads one message from `fd`'s error queue without blocking: `Ok(Some)` for a zero-copy
/// completion, `Ok(None)` for anything else (skipped), `WouldBlock` when the queue is empty.
pub fn completed(fd: BorrowedFd<'_>) -> io::Result<Option<Completed>> {
    let mut control = [0u64; CONTROL_SPACE / 8];
    // SAFETY: an all-zero `msghdr` is valid.
    #[allow(unsafe_code)]
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = CONTROL_SPACE;
    // SAFETY: `msg` has no data buffers and an aligned control buffer of the length given,
    // both live across the call.
    #[allow(unsafe_code)]
    let n = unsafe {
        libc::recvmsg(
            fd.as_raw_fd(),
            &raw mut msg,
            libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `msg` was filled by recvmsg; CMSG_FIRSTHDR and CMSG_NXTHDR stay within
    // `msg_controllen`, which the kernel set to what it wrote.
    #[allow(unsafe_code)]
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&raw const msg) };
    while !cmsg.is_null() {
        // SAFETY: a non-null header from CMSG_FIRSTHDR/NXTHDR lies within the buffer.
        #[allow(unsafe_code)]
        let header = unsafe { &*cmsg };
        let recverr = matches!(
            (header.cmsg_level, header.cmsg_type),
            (libc::SOL_IP, libc::IP_RECVERR) | (libc::SOL_IPV6, libc::IPV6_RECVERR)
        );
        let len = std::mem::size_of::<libc::sock_extended_err>();
        if recverr && header.cmsg_len >= cmsg_len(len) {
            // SAFETY: the message is at least as long as a `sock_extended_err`, which the
            // kernel wrote at CMSG_DATA; it may be unaligned, hence read_unaligned.
            #[allow(unsafe_code)]
            let err: libc::sock_extended_err =
                unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast()) };
            if err.ee_errno == 0 && err.ee_origin == SO_EE_ORIGIN_ZEROCOPY {
                return Ok(Some(Completed {
                    first: err.ee_info,
                    last: err.ee_data,
                    copied: err.ee_code & SO_EE_CODE_ZEROCOPY_COPIED != 0,
                }));
            }
        }
        // SAFETY: as above.
        #[allow(unsafe_code)]
        let next = unsafe { libc::CMSG_NXTHDR(&raw const msg, cmsg) };
        cmsg = next;
    }
    Ok(None)
}

/// `CMSG_LEN(len)`.
fn cmsg_len(len: usize) -> usize {
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    // SAFETY: CMSG_LEN is arithmetic on its argument.
    #[allow(unsafe_code)]
    let total = unsafe { libc::CMSG_LEN(len) };
    total as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsFd;

    /// Over loopback the kernel completes zero-copy sends by copying; the numbering and the
    /// reporting are the same as on a NIC.
    #[test]
    fn sends_are_reported_complete_in_number_order() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let tx = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut rx, _) = listener.accept().unwrap();
        if enable(tx.as_fd()).is_err() {
            eprintln!("SO_ZEROCOPY not supported here: nothing to test");
            return;
        }
        let payload = vec![0xa5u8; 64 * 1024];
        let mut sent = 0;
        for _ in 0..3 {
            sent += send(tx.as_fd(), &[IoSlice::new(&payload)]).unwrap();
        }
        let mut got = vec![0u8; sent];
        rx.read_exact(&mut got).unwrap();
        assert!(got.iter().all(|&b| b == 0xa5));
        let mut done = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while done.last().map(|c: &Completed| c.last) != Some(2) {
            assert!(
                std::time::Instant::now() < deadline,
                "completions: {done:?}"
            );
            match completed(tx.as_fd()) {
                Ok(Some(c)) => done.push(c),
                Ok(None) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(done.first().map(|c| c.first), Some(0));
        let covered: u32 = done.iter().map(|c| c.last - c.first + 1).sum();
        assert_eq!(covered, 3, "{done:?}");
        let e = completed(tx.as_fd()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }
}
