//! Hanging up in the middle of allocating writes (issue 20 §1). A host that sends writes into
//! unallocated clusters of a thin lvol (each one reserves a cluster, fills it and maps it) and
//! deallocates, then closes its connection at once, or breaks the protocol so the target ends
//! it, must leak nothing: once the target has settled, the lvstore's online check passes with
//! no cluster reserved or quarantined, free plus allocated clusters is the total, and after a
//! restart the lvstore loads and checks clean again. On the embedded default: a file-backed
//! lvstore (io_uring or the thread pool), whose writes are really in flight at the hang-up.
//! `LAMINA_HANGUP_ROUNDS` sets the number of hang-ups (default 2000).

// Test helpers fail the test by panicking; that is their job.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use lamina_integration::fixtures::TestTarget;
use lamina_integration::host::{Controller, RawHost};
use lamina_protocol::Pdu;
use lamina_protocol::nvme::{
    DatasetManagement, DsmRange, IoOpcode, ReadWrite, SglDescriptor, Status,
};
use lamina_protocol::tcp::{CapsuleCmd, IcReq};
use serde_json::{Value, json};

const CLUSTER: u64 = 4 << 20;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The capsules of one round: writes into random clusters and a deallocate of another.
fn round_pdus(rng: &mut Rng, clusters: u64, block: u64) -> BytesMut {
    let tx = lamina_protocol::tcp::TxParams::INITIAL;
    let mut out = BytesMut::new();
    for cid in 0..4u16 {
        let cluster = rng.next() % clusters;
        let slba = cluster * (CLUSTER / block) + rng.next() % (CLUSTER / 4096) * (4096 / block);
        let data = Bytes::from(vec![cid as u8 + 1; 4096]);
        let mut sqe = ReadWrite {
            opcode: IoOpcode::WRITE,
            cid: 10 + cid,
            nsid: 1,
            slba,
            nlb: (4096 / block - 1) as u16,
            ..ReadWrite::default()
        }
        .to_sqe();
        sqe.dptr = SglDescriptor::in_capsule(0, 4096);
        Pdu::CapsuleCmd(CapsuleCmd { sqe, data })
            .encode(tx, &mut out)
            .unwrap();
    }
    let gone = rng.next() % clusters;
    let mut range = BytesMut::new();
    DsmRange {
        context_attributes: 0,
        nlb: (CLUSTER / block) as u32,
        slba: gone * (CLUSTER / block),
    }
    .encode(&mut range);
    let sqe = DatasetManagement {
        cid: 30,
        nsid: 1,
        nr: 0,
        deallocate: true,
        dptr: SglDescriptor::in_capsule(0, 16),
        ..DatasetManagement::default()
    }
    .to_sqe();
    let data = range.freeze();
    Pdu::CapsuleCmd(CapsuleCmd { sqe, data })
        .encode(tx, &mut out)
        .unwrap();
    out
}

async fn check(t: &TestTarget) -> Value {
    let r = t
        .call("bdev_lvol_check_lvstore", json!({"lvs_name": "lvs0"}))
        .await
        .unwrap();
    r[0].clone()
}

/// Waits until nothing is reserved (the commands in flight at the hang-ups have finished).
async fn settled(t: &TestTarget) -> Value {
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        t.call("bdev_lvol_get_lvstores", json!({})).await.unwrap();
        let r = check(t).await;
        if r["reserved_clusters"] == 0 || Instant::now() > deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn assert_accounted(t: &TestTarget, what: &str) {
    let r = settled(t).await;
    assert_eq!(r["consistent"], true, "{what}: {r}");
    assert_eq!(
        r["reserved_clusters"], 0,
        "{what}: clusters left reserved: {r}"
    );
    let lvs = t.call("bdev_lvol_get_lvstores", json!({})).await.unwrap();
    let lvols = t.call("bdev_lvol_get_lvols", json!({})).await.unwrap();
    let allocated: u64 = lvols
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["num_allocated_clusters"].as_u64().unwrap())
        .sum();
    let total = lvs[0]["total_data_clusters"].as_u64().unwrap();
    let free = lvs[0]["free_clusters"].as_u64().unwrap();
    assert_eq!(free + allocated, total, "{what}: clusters leaked ({lvs})");
    assert_eq!(
        r["used_clusters"].as_u64().unwrap(),
        allocated,
        "{what}: {r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_up_mid_allocation_leaks_nothing_and_the_store_loads_again() {
    let rounds: u64 = std::env::var("LAMINA_HANGUP_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let t = TestTarget::start().await;
    let mut opts = t.options();
    opts.io_queues = 0;
    let ctrl = Controller::connect(t.addr(), opts.clone()).await.unwrap();
    let queues = ctrl.request_io_queues(16).await.unwrap();
    let ns = ctrl.namespace(1).await.unwrap();
    let clusters = ns.size_bytes() / CLUSTER;
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let started = Instant::now();
    let (mut refused, mut malformed) = (0u64, 0u64);
    for round in 0..rounds {
        let qid = (round % u64::from(queues)) as u16 + 1;
        let mut raw = loop {
            let mut raw = RawHost::connect(t.addr()).await.unwrap();
            raw.handshake(IcReq::default()).await.unwrap();
            let cqe = raw
                .connect_queue(&opts, qid, 32, ctrl.cntlid())
                .await
                .unwrap();
            if cqe.status == Status::SUCCESS {
                break raw;
            }
            // The queue's previous connection is still finishing its commands.
            refused += 1;
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        let mut burst = round_pdus(&mut rng, clusters, u64::from(ns.block_size));
        if round % 3 == 0 {
            // A PDU type no host may send: the target answers with a TermReq and ends the
            // connection itself, with the writes before it in flight.
            burst.extend_from_slice(&[0x7f, 0, 8, 0, 8, 0, 0, 0]);
            malformed += 1;
        }
        raw.send_bytes(&burst).await.unwrap();
        drop(raw);
    }
    eprintln!(
        "{rounds} hang-ups ({malformed} by a malformed PDU, {refused} reconnects refused while \
         the queue was still closing) in {:?}",
        started.elapsed()
    );
    assert_accounted(&t, "after the hang-ups").await;
    ctrl.close();
    let t = t.restart().await;
    assert_accounted(&t, "after a restart").await;
    let r = check(&t).await;
    assert!(
        r["used_clusters"].as_u64().unwrap() > 0,
        "the writes landed: {r}"
    );
    t.stop().await;
}
