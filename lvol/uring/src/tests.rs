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

/// Writes a block and reads it back through `u` on `rt` (a completion nobody reaps fails
/// after 10 s).
fn round_trip_on(rt: &tokio::runtime::Runtime, u: &UringFile, seed: u8) {
    rt.block_on(async {
        let data = Bytes::from(vec![seed; 4096]);
        let io = async {
            u.write_at(8192, data.clone()).await.unwrap();
            u.read_at(8192, BytesMut::new(), 4096).await
        };
        let (b, r) = tokio::time::timeout(std::time::Duration::from_secs(10), io)
            .await
            .expect("the completions were reaped");
        r.unwrap();
        assert_eq!(b, data);
    });
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_ring_made_off_any_runtime_is_reaped_by_a_thread() {
    let (_dir, f) = file(1 << 20);
    let Ok(u) = UringFile::new(f, 4) else { return };
    assert!(u.shared.events.is_none(), "no runtime: no eventfd");
    round_trip_on(&runtime(), &u, 3);
}

#[test]
fn a_ring_outlives_the_runtime_that_reaped_it() {
    let (_dir, f) = file(1 << 20);
    let first = runtime();
    let u = first.block_on(async { UringFile::new(f, 4) });
    let Ok(u) = u else { return };
    assert!(
        u.shared.events.is_some(),
        "made on a runtime: reaped through its eventfd"
    );
    round_trip_on(&first, &u, 5);
    // The runtime goes; its reaper task hands the ring to a thread, and another runtime's
    // tasks go on using the file.
    drop(first);
    round_trip_on(&runtime(), &u, 7);
}

/// Polls `fut` once with a waker that does nothing.
fn poll_once<F: Future>(fut: Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

/// How many of `futs` are ready now (each polled once; none may be polled again after).
fn done<F: Future>(futs: &mut [Pin<Box<F>>]) -> usize {
    futs.iter_mut()
        .map(|f| poll_once(f.as_mut()).is_ready())
        .filter(|&ready| ready)
        .count()
}

/// Under a plug, requests wait in the submission queue (no completion comes however long one
/// waits) and all go to the kernel when the plug drops; at [`MAX_DEFERRED`] they go at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plug_submits_its_requests_together_when_it_drops() {
    let (_dir, f) = file(1 << 20);
    for i in 0..40u64 {
        f.write_all_at(&[u8::try_from(i).unwrap(); 512], i * 512)
            .unwrap();
    }
    let Ok(u) = UringFile::new(f, 64) else { return };
    let reads = |n: u64| -> Vec<_> {
        (0..n)
            .map(|i| Box::pin(u.read_at(i * 512, BytesMut::new(), 512)))
            .collect()
    };

    let mut futs = reads(4);
    let batch = plug();
    assert_eq!(
        done(&mut futs),
        0,
        "nothing can complete before it is submitted"
    );
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(done(&mut futs), 0, "a plugged request reached the kernel");
    drop(batch);
    for (i, fut) in (0u64..).zip(futs) {
        let (buf, r) = fut.await;
        r.unwrap();
        assert!(buf.iter().all(|&b| u64::from(b) == i));
    }

    // One more than the bound: the first MAX_DEFERRED go when the last of them is queued.
    let over = u64::try_from(MAX_DEFERRED).unwrap() + 1;
    let mut futs = reads(over);
    let batch = plug();
    assert_eq!(done(&mut futs), 0);
    std::thread::sleep(std::time::Duration::from_millis(100));
    let mut outputs: Vec<_> = futs
        .iter_mut()
        .map(|f| match poll_once(f.as_mut()) {
            Poll::Ready(out) => Some(out),
            Poll::Pending => None,
        })
        .collect();
    assert!(
        outputs[..MAX_DEFERRED].iter().all(Option::is_some),
        "the first {MAX_DEFERRED} were submitted without waiting for the plug"
    );
    // (The last one may have gone too: the reaper submits whatever is queued after reaping.)
    drop(batch);
    if outputs[MAX_DEFERRED].is_none() {
        let last = futs.pop().unwrap();
        outputs[MAX_DEFERRED] = Some(last.await);
    }
    for (i, out) in (0u64..).zip(outputs) {
        let (buf, r) = out.unwrap();
        r.unwrap();
        assert!(buf.iter().all(|&b| u64::from(b) == i));
    }
}
