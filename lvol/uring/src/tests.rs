//! The ring against a real file: a write, read and sync round trip, more requests than slots,
//! short and failed reads at the end of the file, and a request dropped while in flight.

use super::*;
use std::os::unix::fs::FileExt;

fn file(len: u64) -> (tempfile::TempDir, File) {
    let dir = tempfile::tempdir().unwrap();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.path().join("f"))
        .unwrap();
    f.set_len(len).unwrap();
    (dir, f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_read_sync_roundtrip() {
    let (_dir, f) = file(1 << 20);
    let Ok(u) = UringFile::new(f, 8) else {
        eprintln!("io_uring unavailable here: nothing to test");
        return;
    };
    let data = Bytes::from((0..8192u32).map(|i| (i % 251) as u8).collect::<Vec<_>>());
    u.write_at(4096, data.clone()).await.unwrap();
    u.sync_data().await.unwrap();
    let (buf, r) = u.read_at(4096, BytesMut::from(&b"xy"[..]), 8192).await;
    r.unwrap();
    assert_eq!(&buf[..2], b"xy");
    assert_eq!(&buf[2..], &data[..]);
    let mut plain = vec![0u8; 8192];
    u.file().read_exact_at(&mut plain, 4096).unwrap();
    assert_eq!(&plain[..], &data[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_requests_share_few_slots() {
    let (_dir, f) = file(1 << 20);
    let Ok(u) = UringFile::new(f, 2) else { return };
    let u = Arc::new(u);
    let mut tasks = Vec::new();
    for i in 0..64u64 {
        let u = u.clone();
        tasks.push(tokio::spawn(async move {
            let data = Bytes::from(vec![u8::try_from(i).unwrap(); 512]);
            u.write_at(i * 512, data).await.unwrap();
            let (back, result) = u.read_at(i * 512, BytesMut::new(), 512).await;
            result.unwrap();
            assert!(back.iter().all(|&x| u64::from(x) == i));
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn a_read_straddling_the_end_is_continued_then_fails_cleanly() {
    let (_dir, f) = file(8192);
    let Ok(u) = UringFile::new(f, 4) else { return };
    // The first 2 KiB come back short; the continuation hits the end of the file.
    let (b, r) = u.read_at(6144, BytesMut::from(&b"ab"[..]), 4096).await;
    assert_eq!(r.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    assert_eq!(&b[..], b"ab", "a failed read leaves the buffer as it was");
    // Data written at the end of the file and read in two parts is whole.
    u.write_at(4096, Bytes::from(vec![7u8; 4096]))
        .await
        .unwrap();
    let (b, r) = u.read_at(4096, BytesMut::new(), 4096).await;
    r.unwrap();
    assert!(b.len() == 4096 && b.iter().all(|&x| x == 7));
}

#[tokio::test]
async fn read_past_the_end_fails_and_keeps_the_buffer() {
    let (_dir, f) = file(4096);
    let Ok(u) = UringFile::new(f, 4) else { return };
    let (b, r) = u.read_at(4096, BytesMut::from(&b"keep"[..]), 512).await;
    assert_eq!(r.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    assert_eq!(&b[..], b"keep");
}

#[tokio::test]
async fn a_dropped_request_is_abandoned_safely() {
    let (_dir, f) = file(1 << 20);
    let Ok(u) = UringFile::new(f, 1) else { return };
    let data = Bytes::from(vec![9u8; 4096]);
    {
        let fut = u.write_at(0, data.clone());
        futures_poll_once(fut).await;
    }
    // The slot comes back once the abandoned write completes.
    let (b, r) = u.read_at(0, BytesMut::new(), 4096).await;
    r.unwrap();
    assert_eq!(b.len(), 4096);
}

async fn futures_poll_once<F: Future>(f: F) {
    let mut f = std::pin::pin!(f);
    std::future::poll_fn(|cx| {
        let _ = f.as_mut().poll(cx);
        Poll::Ready(())
    })
    .await;
}
