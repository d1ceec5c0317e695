//! Reads sent with `MSG_ZEROCOPY` (`--zero-copy-min`), in-process on loopback: every byte the
//! host reads back is what it wrote, while many large reads run at once on several queues (so
//! pooled buffers are recycled while earlier zero-copy sends may still be out), and the
//! kernel's completions are counted (`nvmf_get_stats`). Over loopback the kernel completes
//! zero-copy sends by copying them after all; the numbering, the lending and the completions
//! are those of a NIC.

// Test helpers fail the test by panicking; that is their job.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::time::{Duration, Instant};

use bytes::BytesMut;
use lamina_integration::fixtures::{TestTarget, pattern};
use lamina_integration::host::{Controller, HostError};

/// The transport's zero-copy completions so far: (sent without a copy, copied after all).
async fn zero_copy_counts(t: &TestTarget) -> (u64, u64) {
    let stats = t.rpc().await.call("nvmf_get_stats", None).await.unwrap();
    let tcp = &stats["poll_groups"][0]["transports"][0];
    let counts = &tcp["zero_copy_sends"];
    let get = |k: &str| {
        counts[k]
            .as_u64()
            .unwrap_or_else(|| panic!("no {k} in {tcp}"))
    };
    (get("zero_copy"), get("copied"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_copy_reads_return_what_was_written_and_are_counted() {
    let t = TestTarget::start_with(|a| a.zero_copy_min = Some(16 * 1024)).await;
    assert_eq!(zero_copy_counts(&t).await, (0, 0));
    let mut opts = t.options();
    opts.io_queues = 2;
    opts.io_queue_size = 32;
    let ctrl = Controller::connect(t.addr(), opts).await.unwrap();
    let ns = ctrl.namespace(1).await.unwrap();
    let sizes = [4096usize, 16 * 1024, 64 * 1024, 128 * 1024, 256 * 1024];
    // One 256 KiB slot per write, so every read has one known content.
    let slot = ns.blocks_of(256 * 1024).unwrap();
    let slots: Vec<(u64, usize)> = (0..96u64)
        .map(|i| (i * u64::from(slot), sizes[i as usize % sizes.len()]))
        .collect();
    let writes = slots.iter().enumerate().map(|(n, &(slba, size))| {
        let q = ctrl.io_queue(n % 2).unwrap().clone();
        let ns = ns.clone();
        async move { q.write(&ns, slba, pattern(slba, size), false).await }
    });
    futures::future::try_join_all(writes).await.unwrap();
    for round in 0..3 {
        let reads = slots.iter().enumerate().map(|(n, &(slba, size))| {
            let q = ctrl.io_queue((n + round) % 2).unwrap().clone();
            let ns = ns.clone();
            async move {
                let blocks = ns.blocks_of(size).unwrap();
                let got = q.read(&ns, slba, blocks, BytesMut::new()).await?;
                Ok::<_, HostError>((slba, size, got.freeze()))
            }
        });
        for (slba, size, got) in futures::future::try_join_all(reads).await.unwrap() {
            assert!(
                got == pattern(slba, size),
                "slba {slba} ({size} bytes) differs"
            );
        }
    }
    // Completions come from the kernel after the host has the data: wait for them.
    let until = Instant::now() + Duration::from_secs(10);
    let counts = loop {
        let c = zero_copy_counts(&t).await;
        if c.0 + c.1 > 0 || Instant::now() > until {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        counts.0 + counts.1 > 0,
        "no zero-copy send completed: {counts:?}"
    );
    ctrl.shutdown().await.unwrap();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_setting_nothing_is_sent_zero_copy() {
    let t = TestTarget::start().await;
    let ctrl = t.connect().await.unwrap();
    let ns = ctrl.namespace(1).await.unwrap();
    let q = ctrl.io_queue(0).unwrap();
    let data = pattern(7, 256 * 1024);
    q.write(&ns, 0, data.clone(), false).await.unwrap();
    let blocks = ns.blocks_of(data.len()).unwrap();
    let got = q.read(&ns, 0, blocks, BytesMut::new()).await.unwrap();
    assert!(got.freeze() == data);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(zero_copy_counts(&t).await, (0, 0));
    ctrl.shutdown().await.unwrap();
    t.stop().await;
}
