//! A host that sends commands and never reads its socket (issue 12 §2): the target stops
//! starting commands once a connection's output backs up, so the process grows by about the
//! output high-water mark and the queue's buffers, not by what the host asked for (512 MiB
//! of reads here; ~1.9 GB per connection was seen before). Every completion still arrives
//! once the host reads. Alone in its test binary, so the resident size measures this
//! connection only.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use lamina_integration::fixtures::TestTarget;
use lamina_integration::host::{Controller, RawHost};
use lamina_protocol::Pdu;
use lamina_protocol::nvme::{IoOpcode, ReadWrite, SglDescriptor, Status};
use lamina_protocol::tcp::{CapsuleCmd, IcReq, TxParams};

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_never_reads_costs_the_output_bound_not_what_it_asked_for() {
    const READS: u16 = 2048;
    let t = TestTarget::start().await;
    let mut opts = t.options();
    opts.io_queues = 0;
    let ctrl = Controller::connect(t.addr(), opts.clone()).await.unwrap();
    ctrl.request_io_queues(1).await.unwrap();
    let mut raw = RawHost::connect(t.addr()).await.unwrap();
    raw.handshake(IcReq::default()).await.unwrap();
    let cqe = raw
        .connect_queue(&opts, 1, 128, ctrl.cntlid())
        .await
        .unwrap();
    assert_eq!(cqe.status, Status::SUCCESS);
    let before = rss_bytes();
    let mut burst = BytesMut::new();
    for cid in 0..READS {
        let mut sqe = ReadWrite {
            opcode: IoOpcode::READ,
            cid,
            nsid: 1,
            slba: u64::from(cid % 512) * 64,
            nlb: 63,
            ..ReadWrite::default()
        }
        .to_sqe();
        sqe.dptr = SglDescriptor::transport(256 * 1024);
        Pdu::CapsuleCmd(CapsuleCmd {
            sqe,
            data: Bytes::new(),
        })
        .encode(TxParams::INITIAL, &mut burst)
        .unwrap();
    }
    raw.send_bytes(&burst).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let grown = rss_bytes().saturating_sub(before);
    eprintln!(
        "{READS} reads of 256 KiB never read: the process grew by {} MiB",
        grown >> 20
    );
    assert!(
        grown < 96 << 20,
        "one connection that never reads grew the process by {} MiB",
        grown >> 20
    );
    // Reading now: every command completes.
    raw.set_timeout(Duration::from_secs(20));
    let mut done = 0u32;
    while done < u32::from(READS) {
        match raw.recv_pdu().await.unwrap() {
            Pdu::C2hData(d) if d.success || d.last_pdu => done += u32::from(d.success),
            Pdu::CapsuleResp(r) => {
                assert_eq!(r.cqe.status, Status::SUCCESS);
                done += 1;
            }
            _ => {}
        }
    }
    t.stop().await;
}
