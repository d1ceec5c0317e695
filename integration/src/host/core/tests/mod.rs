//! The core and the reader fed from byte vectors: what a target sends is encoded with the
//! protocol crate, delivered whole, merged or one byte at a time, and what the core sends is
//! decoded with a target-side framer. The well-behaved flows are here; what the host does
//! when the target breaks the protocol is in `violations.rs`.

mod violations;

use bytes::{Bytes, BytesMut};
use lamina_protocol::nvme::{Cqe, IoOpcode, ReadWrite, SglDescriptor, Status, StatusCode};
use lamina_protocol::tcp::{
    C2hData, CapsuleResp, Digests, H2cData, IcReq, IcResp, Pda, R2t, TxParams,
};
use lamina_protocol::{Framer, FramerConfig, Pdu};

use super::*;
use crate::host::reader::PduReader;

fn params(digests: Digests) -> QueueParams {
    QueueParams {
        qid: 1,
        queue_size: 8,
        tx: TxParams {
            digests,
            peer_pda: Pda(0),
        },
        maxh2cdata: 4096,
        in_capsule_max: 4096,
        max_transfer: 1 << 20,
        sq_flow_control_disabled: true,
    }
}

/// A host-side reader past the IC exchange.
fn reader(digests: Digests) -> PduReader {
    let mut b = BytesMut::new();
    IcResp {
        digests,
        maxh2cdata: 4096,
        ..IcResp::default()
    }
    .encode(&mut b);
    let mut r = PduReader::new(Framer::new(FramerConfig::host()), b);
    assert!(matches!(r.next_pdu(), Ok(Some(Pdu::IcResp(_)))));
    r.framer_mut().set_digests(digests);
    r
}

/// What the target sends, as wire bytes.
fn wire(pdus: &[Pdu], digests: Digests) -> Vec<u8> {
    let mut b = BytesMut::new();
    for p in pdus {
        p.encode(
            TxParams {
                digests,
                peer_pda: Pda(0),
            },
            &mut b,
        )
        .unwrap();
    }
    b.to_vec()
}

/// Everything the core queued, decoded as the target would.
fn sent(core: &mut QueueCore, digests: Digests) -> Vec<Pdu> {
    let mut bytes = BytesMut::new();
    IcReq {
        digests,
        ..IcReq::default()
    }
    .encode(&mut bytes);
    core.tx()
        .flush_with(|slices| {
            let mut n = 0;
            for s in slices {
                bytes.extend_from_slice(s);
                n += s.len();
            }
            Ok(n)
        })
        .unwrap();
    let mut framer = Framer::new(FramerConfig::target());
    let mut out = Vec::new();
    while let Some(pdu) = framer.decode(&mut bytes).unwrap() {
        if let Pdu::IcReq(_) = pdu {
            framer.set_digests(digests);
            continue;
        }
        out.push(pdu);
    }
    assert!(bytes.is_empty(), "trailing bytes in the host's output");
    out
}

fn read_cmd(blocks: u16) -> Command {
    let sqe = ReadWrite {
        opcode: IoOpcode::READ,
        nsid: 1,
        nlb: blocks - 1,
        ..ReadWrite::default()
    }
    .to_sqe();
    let len = u32::from(blocks) * 4096;
    Command::with_transfer(
        sqe,
        Transfer::FromController {
            buf: BytesMut::new(),
            len,
        },
    )
}

fn write_cmd(data: Bytes) -> Command {
    let blocks = u16::try_from(data.len().div_ceil(4096)).unwrap();
    let sqe = ReadWrite {
        opcode: IoOpcode::WRITE,
        nsid: 1,
        nlb: blocks.max(1) - 1,
        ..ReadWrite::default()
    }
    .to_sqe();
    Command::with_transfer(sqe, Transfer::ToController(data))
}

fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| u8::try_from(i % 251).unwrap() ^ seed)
        .collect::<Vec<_>>()
        .into()
}

fn c2h(cid: u16, datao: u32, data: Bytes, last: bool, success: bool) -> Pdu {
    Pdu::C2hData(C2hData {
        cccid: cid,
        datao,
        last_pdu: last,
        success,
        data,
    })
}

fn resp(cid: u16, status: Status) -> Pdu {
    Pdu::CapsuleResp(CapsuleResp {
        cqe: Cqe {
            sqid: 1,
            ..Cqe::new(cid, status)
        },
    })
}

fn r2t(cid: u16, ttag: u16, r2to: u32, r2tl: u32) -> Pdu {
    Pdu::R2t(R2t {
        cccid: cid,
        ttag,
        r2to,
        r2tl,
    })
}

/// A core and its reader.
struct Rig {
    core: QueueCore,
    reader: PduReader,
    digests: Digests,
}

impl Rig {
    fn new(digests: Digests) -> Self {
        Self::with(params(digests))
    }

    fn with(params: QueueParams) -> Self {
        let digests = params.tx.digests;
        Self {
            core: QueueCore::new(params),
            reader: reader(digests),
            digests,
        }
    }

    fn submit(&mut self, cmd: Command) -> (u16, u16) {
        let index = self.core.submit(cmd).unwrap();
        (index, self.core.cid_of(index).unwrap())
    }

    fn deliver(&mut self, bytes: &[u8]) -> Result<usize, HostError> {
        self.reader.feed(bytes);
        self.reader.dispatch(&mut self.core)
    }

    fn deliver_pdus(&mut self, pdus: &[Pdu]) -> Result<usize, HostError> {
        let bytes = wire(pdus, self.digests);
        self.deliver(&bytes)
    }

    fn sent(&mut self) -> Vec<Pdu> {
        sent(&mut self.core, self.digests)
    }

    fn done(&mut self, (index, cid): (u16, u16)) -> Result<Completion, HostError> {
        self.core.take(index, cid).expect("command has not ended")
    }
}

#[test]
fn read_capsule_uses_a_transport_sgl() {
    let mut rig = Rig::new(Digests::NONE);
    let (_, cid) = rig.submit(read_cmd(4));
    let sent = rig.sent();
    let [Pdu::CapsuleCmd(cmd)] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    assert_eq!(cmd.sqe.cid, cid);
    assert_eq!(cmd.sqe.dptr, SglDescriptor::transport(16384));
    assert!(cmd.data.is_empty());
}

#[test]
fn c2h_data_in_pieces_lands_in_order_then_capsule_resp_completes() {
    let data = pattern(16384, 3);
    for split in [None, Some(1), Some(7), Some(100)] {
        let mut rig = Rig::new(Digests::NONE);
        let id = rig.submit(read_cmd(4));
        let pdus = [
            c2h(id.1, 0, data.slice(..4096), false, false),
            c2h(id.1, 4096, data.slice(4096..12288), false, false),
            c2h(id.1, 12288, data.slice(12288..), true, false),
            resp(id.1, Status::SUCCESS),
        ];
        let bytes = wire(&pdus, rig.digests);
        match split {
            None => assert_eq!(rig.deliver(&bytes).unwrap(), 4),
            Some(n) => {
                let mut total = 0;
                for chunk in bytes.chunks(n) {
                    total += rig.deliver(chunk).unwrap();
                }
                assert_eq!(total, 4);
            }
        }
        let done = rig.done(id).unwrap();
        assert!(done.is_success());
        assert!(!done.by_success_flag);
        assert_eq!(done.received, 16384);
        assert_eq!(done.data.unwrap().freeze(), data);
    }
}

#[test]
fn success_flag_completes_without_capsule_resp() {
    let mut rig = Rig::new(Digests::NONE);
    let id = rig.submit(read_cmd(1));
    rig.deliver_pdus(&[c2h(id.1, 0, pattern(4096, 1), true, true)])
        .unwrap();
    let mut ready = Vec::new();
    rig.core.drain_ready_into(&mut ready);
    assert_eq!(ready, vec![id.0]);
    let done = rig.done(id).unwrap();
    assert!(done.by_success_flag);
    assert_eq!(done.cqe.cid, id.1);
    assert_eq!(done.cqe.sqid, 1);
}

#[test]
fn completions_arrive_out_of_order() {
    let mut rig = Rig::new(Digests::NONE);
    let ids: Vec<_> = (0..5).map(|_| rig.submit(read_cmd(1))).collect();
    let mut pdus = Vec::new();
    for (n, id) in ids.iter().enumerate().rev() {
        let seed = u8::try_from(n).unwrap();
        pdus.push(c2h(id.1, 0, pattern(4096, seed), true, false));
        pdus.push(resp(id.1, Status::SUCCESS));
    }
    rig.deliver_pdus(&pdus).unwrap();
    for (n, id) in ids.iter().enumerate() {
        let seed = u8::try_from(n).unwrap();
        let done = rig.done(*id).unwrap();
        assert_eq!(done.data.unwrap().freeze(), pattern(4096, seed));
    }
    assert_eq!(rig.core.in_use(), 0);
}

#[test]
fn error_status_is_a_completion_not_a_violation() {
    let mut rig = Rig::new(Digests::NONE);
    let id = rig.submit(read_cmd(2));
    rig.deliver_pdus(&[resp(id.1, Status::dnr(StatusCode::LBA_OUT_OF_RANGE))])
        .unwrap();
    let done = rig.done(id).unwrap();
    let err = done.into_result().unwrap_err();
    assert!(err.is_status(StatusCode::LBA_OUT_OF_RANGE));
    assert!(rig.core.dead().is_none());
}

#[test]
fn small_write_goes_in_the_capsule() {
    let mut rig = Rig::new(Digests::BOTH);
    let data = pattern(4096, 9);
    rig.submit(write_cmd(data.clone()));
    let sent = rig.sent();
    let [Pdu::CapsuleCmd(cmd)] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    assert_eq!(cmd.sqe.dptr, SglDescriptor::in_capsule(0, 4096));
    assert_eq!(cmd.data, data);
}

#[test]
fn r2t_is_answered_with_maxh2cdata_chunks() {
    let mut rig = Rig::new(Digests::BOTH);
    let data = pattern(12288 + 100, 5);
    let id = rig.submit(write_cmd(data.clone()));
    let sent = rig.sent();
    let [Pdu::CapsuleCmd(cmd)] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    assert_eq!(cmd.sqe.dptr, SglDescriptor::transport(12388));
    // Two R2Ts: 8 KiB, then the rest.
    rig.deliver_pdus(&[r2t(id.1, 7, 0, 8192)]).unwrap();
    let first = rig.sent();
    rig.deliver_pdus(&[r2t(id.1, 8, 8192, 4196)]).unwrap();
    let second = rig.sent();
    let h2c: Vec<H2cData> = first
        .into_iter()
        .chain(second)
        .map(|p| match p {
            Pdu::H2cData(d) => d,
            other => panic!("{other:?}"),
        })
        .collect();
    let shape: Vec<_> = h2c
        .iter()
        .map(|d| (d.ttag, d.datao, d.data.len(), d.last_pdu))
        .collect();
    assert_eq!(
        shape,
        vec![
            (7, 0, 4096, false),
            (7, 4096, 4096, true),
            (8, 8192, 4096, false),
            (8, 12288, 100, true),
        ]
    );
    let joined: Vec<u8> = h2c.iter().flat_map(|d| d.data.to_vec()).collect();
    assert_eq!(joined, data.to_vec());
    rig.deliver_pdus(&[resp(id.1, Status::SUCCESS)]).unwrap();
    assert!(rig.done(id).unwrap().is_success());
}

#[test]
fn forced_r2t_sends_a_transport_sgl() {
    let mut rig = Rig::new(Digests::NONE);
    let data = pattern(4096, 2);
    let sqe = write_cmd(data.clone()).sqe;
    let id = rig.submit(Command::with_transfer(
        sqe,
        Transfer::ToControllerByR2t(data.clone()),
    ));
    let sent = rig.sent();
    assert!(
        matches!(&sent[..], [Pdu::CapsuleCmd(c)] if c.sqe.dptr == SglDescriptor::transport(4096) && c.data.is_empty())
    );
    rig.deliver_pdus(&[r2t(id.1, 3, 0, 4096)]).unwrap();
    let h2c = rig.sent();
    assert!(matches!(&h2c[..], [Pdu::H2cData(d)] if d.data == data && d.last_pdu));
}

#[test]
fn data_digest_error_fails_only_that_command() {
    let mut rig = Rig::new(Digests::BOTH);
    let bad = rig.submit(read_cmd(1));
    let good = rig.submit(read_cmd(1));
    let mut bytes = wire(&[c2h(bad.1, 0, pattern(4096, 1), true, true)], rig.digests);
    // Corrupt one data byte (after CH+PSH+HDGST = 28 bytes).
    bytes[100] ^= 0xff;
    rig.deliver(&bytes).unwrap();
    assert!(matches!(rig.done(bad), Err(HostError::DataDigest { .. })));
    // Without SUCCESS the command waits for its CapsuleResp, and still fails.
    let mut bytes = wire(
        &[c2h(good.1, 0, pattern(4096, 2), true, false)],
        rig.digests,
    );
    bytes[50] ^= 1;
    rig.deliver(&bytes).unwrap();
    assert!(rig.core.take(good.0, good.1).is_none());
    rig.deliver_pdus(&[resp(good.1, Status::SUCCESS)]).unwrap();
    assert!(matches!(rig.done(good), Err(HostError::DataDigest { .. })));
    // The queue carries on.
    let next = rig.submit(read_cmd(1));
    rig.deliver_pdus(&[c2h(next.1, 0, pattern(4096, 3), true, true)])
        .unwrap();
    assert_eq!(
        rig.done(next).unwrap().data.unwrap().freeze(),
        pattern(4096, 3)
    );
}

#[test]
fn abandoned_command_frees_its_slot_when_it_completes() {
    let mut rig = Rig::new(Digests::NONE);
    let id = rig.submit(read_cmd(1));
    rig.core.abandon(id.0, id.1);
    assert_eq!(
        rig.core.in_use(),
        1,
        "CID stays reserved while the target may answer"
    );
    rig.core.take_released();
    let aborted = Status::new(StatusCode::ABORT_REQUESTED);
    rig.deliver_pdus(&[resp(id.1, aborted)]).unwrap();
    assert_eq!(rig.core.in_use(), 0);
    assert_eq!(rig.core.take_released(), 1);
    let mut ready = Vec::new();
    rig.core.drain_ready_into(&mut ready);
    assert!(ready.is_empty());
    // A duplicate completion for the old CID is now an unknown command.
    assert!(rig.deliver_pdus(&[resp(id.1, aborted)]).is_err());
}

#[test]
fn full_queue_and_oversized_transfers_are_refused() {
    let mut rig = Rig::new(Digests::NONE);
    for _ in 0..8 {
        rig.submit(read_cmd(1));
    }
    assert!(matches!(
        rig.core.submit(read_cmd(1)),
        Err(HostError::QueueFull)
    ));
    let mut rig = Rig::new(Digests::NONE);
    let huge = Command::with_transfer(read_cmd(1).sqe, Transfer::Discard(2 << 20));
    assert!(matches!(
        rig.core.submit(huge),
        Err(HostError::InvalidRequest(_))
    ));
    assert_eq!(rig.core.in_use(), 0, "a refused command takes no slot");
}

#[test]
fn discarded_reads_count_bytes_without_keeping_them() {
    let mut rig = Rig::new(Digests::NONE);
    let sqe = read_cmd(2).sqe;
    let id = rig.submit(Command::with_transfer(sqe, Transfer::Discard(8192)));
    rig.deliver_pdus(&[c2h(id.1, 0, pattern(8192, 0), true, true)])
        .unwrap();
    let done = rig.done(id).unwrap();
    assert_eq!(done.received, 8192);
    assert!(done.data.is_none());
}
