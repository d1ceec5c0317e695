//! CPU cost of the host side per I/O, without sockets: what `lamina-perf` spends on one
//! command besides system calls. Each iteration submits a command to a [`QueueCore`], sends
//! its capsule into a discarding writer, feeds the target's pre-encoded answer through a
//! [`PduReader`] and collects the completion. Also the `--verify` pattern cost and an HDR
//! histogram record.
//!
//! Run: `cargo bench -p lamina-integration --bench host_core`.

use std::hint::black_box;
use std::io::IoSlice;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lamina_integration::host::{Command, PduReader, QueueCore, QueueParams, Transfer};
use lamina_integration::perf::pattern::{Expect, check_block, fill_block};
use lamina_integration::perf::stats::ConnStats;
use lamina_integration::perf::workload::Op;
use lamina_protocol::nvme::{Cqe, IoOpcode, ReadWrite, Status};
use lamina_protocol::tcp::{C2hData, CapsuleResp, Digests, IcResp, Pda, R2t, TxParams};
use lamina_protocol::{Framer, FramerConfig, Pdu};

const QD: u16 = 32;

fn params(digests: Digests) -> QueueParams {
    QueueParams {
        qid: 1,
        queue_size: QD + 1,
        tx: TxParams {
            digests,
            peer_pda: Pda(0),
        },
        maxh2cdata: 128 * 1024,
        in_capsule_max: 8192,
        max_transfer: 1 << 20,
        sq_flow_control_disabled: true,
    }
}

fn reader(digests: Digests) -> PduReader {
    let mut b = BytesMut::new();
    IcResp {
        digests,
        maxh2cdata: 128 * 1024,
        ..IcResp::default()
    }
    .encode(&mut b);
    let mut r = PduReader::new(Framer::new(FramerConfig::host()), b);
    let _ = r.next_pdu();
    r.framer_mut().set_digests(digests);
    r
}

#[allow(clippy::unnecessary_wraps)] // the signature of a vectored write
fn discard(slices: &[IoSlice<'_>]) -> std::io::Result<usize> {
    Ok(slices.iter().map(|s| black_box(s.len())).sum())
}

fn encode(pdus: &[Pdu], digests: Digests) -> Vec<u8> {
    let mut b = BytesMut::new();
    let tx = TxParams {
        digests,
        peer_pda: Pda(0),
    };
    for p in pdus {
        p.encode(tx, &mut b).expect("benchmark fixture");
    }
    b.to_vec()
}

fn rw(opcode: IoOpcode, blocks: u16) -> lamina_protocol::nvme::Sqe {
    ReadWrite {
        opcode,
        nsid: 1,
        slba: 42,
        nlb: blocks - 1,
        ..ReadWrite::default()
    }
    .to_sqe()
}

/// What the target answers, per CID generation (the benchmark always reuses slot 0, whose
/// CID is `generation << 12`), encoded before the measurement.
type Answers = Vec<Vec<Vec<u8>>>;

fn answers(digests: Digests, make: impl Fn(u16) -> Vec<Pdu>) -> Answers {
    (0..16u16)
        .map(|generation| {
            make(generation << 12)
                .into_iter()
                .map(|p| encode(&[p], digests))
                .collect()
        })
        .collect()
}

/// One command round trip.
fn round_trip(
    core: &mut QueueCore,
    reader: &mut PduReader,
    cmd: Command,
    answers: &Answers,
    ready: &mut Vec<u16>,
) {
    let index = core.submit(cmd).expect("benchmark fixture");
    let cid = core.cid_of(index).expect("benchmark fixture");
    core.write_output(discard).expect("benchmark fixture");
    for part in &answers[usize::from(cid >> 12)] {
        reader.feed(part);
        reader.dispatch(core).expect("benchmark fixture");
        core.write_output(discard).expect("benchmark fixture");
    }
    core.drain_ready_into(ready);
    for i in ready.drain(..) {
        black_box(
            core.take(i, cid)
                .expect("benchmark fixture")
                .expect("benchmark fixture"),
        );
    }
}

fn bench_round_trips(c: &mut Criterion) {
    let mut g = c.benchmark_group("host_round_trip");
    g.throughput(Throughput::Elements(1));
    for (name, digests) in [("plain", Digests::NONE), ("digests", Digests::BOTH)] {
        let data = Bytes::from(vec![0x5a; 4096]);
        let read = answers(digests, |cid| {
            vec![Pdu::C2hData(C2hData {
                cccid: cid,
                datao: 0,
                last_pdu: true,
                success: true,
                data: data.clone(),
            })]
        });
        let resp = |cid| {
            Pdu::CapsuleResp(CapsuleResp {
                cqe: Cqe {
                    sqid: 1,
                    ..Cqe::new(cid, Status::SUCCESS)
                },
            })
        };
        let write = answers(digests, |cid| vec![resp(cid)]);
        let r2t = answers(digests, |cid| {
            let r2t = R2t {
                cccid: cid,
                ttag: 1,
                r2to: 0,
                r2tl: 128 * 1024,
            };
            vec![Pdu::R2t(r2t), resp(cid)]
        });
        let big = Bytes::from(vec![0xa5; 128 * 1024]);
        let cases: [(&str, IoOpcode, u16, Transfer, &Answers); 3] = [
            (
                "read_4k_success_flag",
                IoOpcode::READ,
                1,
                Transfer::Discard(4096),
                &read,
            ),
            (
                "write_4k_in_capsule",
                IoOpcode::WRITE,
                1,
                Transfer::ToController(data.clone()),
                &write,
            ),
            (
                "write_128k_r2t",
                IoOpcode::WRITE,
                32,
                Transfer::ToController(big),
                &r2t,
            ),
        ];
        for (case, opcode, blocks, transfer, answers) in cases {
            let mut core = QueueCore::new(params(digests));
            let mut r = reader(digests);
            let mut ready = Vec::with_capacity(64);
            g.bench_function(format!("{case}_{name}"), |b| {
                b.iter(|| {
                    let cmd = Command::with_transfer(rw(opcode, blocks), transfer.clone());
                    round_trip(&mut core, &mut r, cmd, answers, &mut ready);
                });
            });
        }
    }
    g.finish();
}

fn bench_verify_and_stats(c: &mut Criterion) {
    let mut g = c.benchmark_group("perf_support");
    let mut block = vec![0u8; 4096];
    g.throughput(Throughput::Bytes(4096));
    g.bench_function("fill_block_4k", |b| {
        b.iter(|| fill_block(black_box(&mut block), 7, 1, 3));
    });
    fill_block(&mut block, 7, 1, 3);
    g.bench_function("check_block_4k", |b| {
        b.iter(|| check_block(black_box(&block), 7, 1, Expect::Stamp(3)));
    });
    g.throughput(Throughput::Elements(1));
    let mut stats = ConnStats::new(1);
    let mut lat = 10_000u64;
    g.bench_function("histogram_record", |b| {
        b.iter(|| {
            lat = (lat * 31 + 7) % 1_000_000 + 1000;
            stats.record(Op::Read, black_box(lat), 4096);
        });
    });
    g.finish();
}

criterion_group!(benches, bench_round_trips, bench_verify_and_stats);
criterion_main!(benches);
