//! Tests of the file device: buffered, direct and io_uring round trips, sparse creation, growth.
use super::*;

/// A test of io_uring on a machine without it (seccomp in a container, an old kernel) would
/// pass on the thread-pool fallback and claim coverage it did not have: it says so instead,
/// on the process's stderr (the harness does not capture that) so the skip shows in any
/// `cargo test` log, and returns.
fn skip_without_uring(d: &FileDevice, test: &str) -> bool {
    use std::io::Write;
    if d.is_uring() {
        return false;
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: io_uring is unavailable here (the device fell back to the thread pool)"
    );
    true
}

async fn roundtrip(direct: bool, io_uring: bool, test: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dev.img");
    let opts = FileOptions {
        create_size_bytes: Some(4 << 20),
        direct_io: direct,
        io_uring,
        ..FileOptions::default()
    };
    let d = FileDevice::open(&path, &opts).unwrap();
    if io_uring && skip_without_uring(&d, test) {
        return;
    }
    assert_eq!(d.size_bytes(), 4 << 20);
    // Unaligned in memory on purpose: a slice one byte into a buffer.
    let backing = Bytes::from((0..4097u32).map(|i| (i % 253) as u8).collect::<Vec<_>>());
    let data = backing.slice(1..4097);
    d.write(8192, data.clone()).await.unwrap();
    d.flush().await.unwrap();
    let mut buf = BytesMut::from(&b"x"[..]);
    d.read(8192, 4096, &mut buf).await.unwrap();
    assert_eq!(&buf[1..], &data[..]);
    d.write_zeroes(8192, 512).await.unwrap();
    d.deallocate(8704, 512).await.unwrap();
    let mut buf = BytesMut::new();
    d.read(8192, 1024, &mut buf).await.unwrap();
    assert_eq!(&buf[..], &[0u8; 1024][..]);
    assert!(matches!(
        d.read(4 << 20, 512, &mut buf).await,
        Err(DeviceError::OutOfRange { .. })
    ));
    // Reopen without create: the data is still there.
    drop(d);
    let d = FileDevice::open(&path, &FileOptions::default()).unwrap();
    let mut buf = BytesMut::new();
    d.read(9216, 512, &mut buf).await.unwrap();
    assert_eq!(&buf[..], &data[1024..1536]);
}

#[tokio::test]
async fn buffered_roundtrip() {
    roundtrip(false, false, "buffered_roundtrip").await;
}

#[tokio::test]
async fn direct_roundtrip_or_fallback() {
    roundtrip(true, false, "direct_roundtrip_or_fallback").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uring_buffered_roundtrip() {
    roundtrip(false, true, "uring_buffered_roundtrip").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uring_direct_roundtrip() {
    roundtrip(true, true, "uring_direct_roundtrip").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uring_is_detected_and_can_be_refused() {
    let dir = tempfile::tempdir().unwrap();
    let opts = FileOptions {
        create_size_bytes: Some(1 << 20),
        ..FileOptions::default()
    };
    let d = FileDevice::open(dir.path().join("u.img"), &opts).unwrap();
    if skip_without_uring(&d, "uring_is_detected_and_can_be_refused") {
        return;
    }
    let off = FileOptions {
        io_uring: false,
        ..opts
    };
    let d = FileDevice::open(dir.path().join("u.img"), &off).unwrap();
    assert!(!d.is_uring());
}

#[tokio::test]
async fn missing_file_without_size_is_an_open_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = FileDevice::open(dir.path().join("nope"), &FileOptions::default()).unwrap_err();
    assert!(
        matches!(err, DeviceError::Io { op: DeviceOp::Open, errno, .. } if errno == libc::ENOENT)
    );
}

#[tokio::test]
async fn grown_file_is_seen_after_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.img");
    let opts = FileOptions {
        create_size_bytes: Some(1 << 20),
        ..FileOptions::default()
    };
    let d = FileDevice::open(&path, &opts).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(2 << 20)
        .unwrap();
    assert_eq!(d.refresh_size().unwrap(), 2 << 20);
}
