//! Codec throughput: decode (framing, header validation, digests, zero-copy payload) and encode
//! (whole PDU into a buffer, and the split head-only form used for vectored writes) of a 4 KiB
//! Write capsule with in-capsule data, a 4 KiB C2HData and a 128 KiB H2CData, with and without
//! data digest.
//!
//! Run: `cargo bench -p lamina-protocol --bench codec`.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use lamina_protocol::nvme::{IoOpcode, ReadWrite, SglDescriptor};
use lamina_protocol::tcp::{
    C2hData, CapsuleCmd, DataTrailer, Digests, H2cData, IcReq, IcResp, Pda, Pdu, TxParams,
};
use lamina_protocol::{Framer, FramerConfig, Role};

struct Case {
    name: &'static str,
    role: Role,
    pdu: Pdu,
}

fn cases() -> Vec<Case> {
    let payload = |len: usize| {
        Bytes::from(
            (0..len)
                .map(|i| u8::try_from(i * 7 % 251).unwrap_or(0))
                .collect::<Vec<_>>(),
        )
    };
    let write = ReadWrite {
        opcode: IoOpcode::WRITE,
        cid: 1,
        nsid: 1,
        slba: 8,
        nlb: 7,
        dptr: SglDescriptor::in_capsule(0, 4096),
        ..ReadWrite::default()
    };
    vec![
        Case {
            name: "write_capsule_4k",
            role: Role::Target,
            pdu: Pdu::CapsuleCmd(CapsuleCmd {
                sqe: write.to_sqe(),
                data: payload(4096),
            }),
        },
        Case {
            name: "c2h_data_4k",
            role: Role::Host,
            pdu: Pdu::C2hData(C2hData {
                cccid: 1,
                datao: 0,
                last_pdu: true,
                success: true,
                data: payload(4096),
            }),
        },
        Case {
            name: "h2c_data_128k",
            role: Role::Target,
            pdu: Pdu::H2cData(H2cData {
                cccid: 1,
                ttag: 1,
                datao: 0,
                last_pdu: true,
                data: payload(128 * 1024),
            }),
        },
    ]
}

fn framer(role: Role, digests: Digests) -> Framer {
    let mut config = match role {
        Role::Target => FramerConfig::target(),
        Role::Host => FramerConfig::host(),
    };
    config.max_in_capsule_data = 8192;
    config.max_data_len = 128 * 1024;
    let mut f = Framer::new(config);
    let mut ic = BytesMut::new();
    match role {
        Role::Target => IcReq::default().encode(&mut ic),
        Role::Host => IcResp::default().encode(&mut ic),
    }
    f.decode(&mut ic).expect("IC").expect("IC");
    f.set_digests(digests);
    f
}

fn data_len(pdu: &Pdu) -> usize {
    match pdu {
        Pdu::CapsuleCmd(p) => p.data.len(),
        Pdu::H2cData(p) => p.data.len(),
        Pdu::C2hData(p) => p.data.len(),
        _ => 0,
    }
}

fn encode_head(pdu: &Pdu, tx: TxParams, dst: &mut BytesMut) -> DataTrailer {
    match pdu {
        Pdu::CapsuleCmd(p) => p.encode_head(tx, dst),
        Pdu::H2cData(p) => p.encode_head(tx, dst),
        Pdu::C2hData(p) => p.encode_head(tx, dst),
        _ => unreachable!("data PDUs only"),
    }
    .expect("encodes")
}

fn bench(c: &mut Criterion) {
    for case in cases() {
        for (label, digests) in [
            ("plain", Digests::NONE),
            (
                "ddgst",
                Digests {
                    header: false,
                    data: true,
                },
            ),
        ] {
            let tx = TxParams {
                digests,
                peer_pda: Pda(0),
            };
            let mut wire = BytesMut::new();
            case.pdu.encode(tx, &mut wire).expect("encodes");
            let mut group = c.benchmark_group(format!("{}/{label}", case.name));
            group.throughput(Throughput::Bytes(data_len(&case.pdu) as u64));

            let mut f = framer(case.role, digests);
            group.bench_function("decode", |b| {
                b.iter_batched_ref(
                    || wire.clone(),
                    |buf| black_box(f.decode(buf).expect("valid").expect("whole")),
                    BatchSize::SmallInput,
                );
            });
            let mut out = BytesMut::with_capacity(wire.len());
            group.bench_function("encode", |b| {
                b.iter(|| {
                    out.clear();
                    case.pdu.encode(tx, &mut out).expect("encodes");
                    black_box(out.len())
                });
            });
            group.bench_function("encode_head", |b| {
                b.iter(|| {
                    out.clear();
                    black_box(encode_head(&case.pdu, tx, &mut out))
                });
            });
            group.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
