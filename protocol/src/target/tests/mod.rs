//! Unit tests of [`TargetQueue`] from byte vectors: a scripted host encodes PDUs with this
//! crate's encoders, feeds the bytes in, and decodes what the queue sends back with a
//! host-role framer. `violations.rs` covers what ends a queue.

mod violations;

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::{
    After, Binding, Command, Completion, Input, QueueConfig, QueueError, Sent, TargetQueue,
};
use crate::fabrics::{ConnectCommand, Disconnect};
use crate::nvme::{Cqe, IoOpcode, ReadWrite, SglDescriptor, Sqe, Status, StatusCode};
use crate::tcp::{CapsuleCmd, Digests, H2cData, IcReq, Pda, Pdu, TxParams};
use crate::{Framer, FramerConfig};

/// A scripted host on the other end of one [`TargetQueue`].
struct Host {
    queue: TargetQueue,
    /// Bytes on their way to the queue.
    wire: BytesMut,
    tx: TxParams,
    framer: Framer,
    start: Instant,
}

impl Host {
    fn new() -> Self {
        Self::with(QueueConfig::default())
    }

    fn with(config: QueueConfig) -> Self {
        let start = Instant::now();
        Self {
            queue: TargetQueue::new(config, (), start),
            wire: BytesMut::new(),
            tx: TxParams::INITIAL,
            framer: Framer::new(FramerConfig::host()),
            start,
        }
    }

    /// Encodes `pdu` onto the wire (not yet handed to the queue).
    fn put(&mut self, pdu: &Pdu) {
        pdu.encode(self.tx, &mut self.wire).unwrap();
    }

    /// Puts `pdu` and hands everything on the wire to the queue, one PDU.
    fn send(&mut self, pdu: &Pdu) -> Result<Input, QueueError> {
        self.put(pdu);
        self.queue.handle_input(&mut self.wire)
    }

    /// Everything the queue sent, decoded.
    fn received(&mut self) -> Vec<Pdu> {
        let mut bytes = BytesMut::new();
        let all_sent = self
            .queue
            .poll_transmit(|iov| {
                for s in iov {
                    bytes.extend_from_slice(s);
                }
                Ok(iov.iter().map(|s| s.len()).sum())
            })
            .unwrap();
        assert!(all_sent);
        let mut pdus = Vec::new();
        while let Some(pdu) = self.framer.decode(&mut bytes).unwrap() {
            if let Pdu::IcResp(r) = &pdu {
                self.framer.set_digests(r.digests);
            }
            pdus.push(pdu);
        }
        assert!(bytes.is_empty(), "a partial PDU was sent");
        pdus
    }

    /// The one CQE the queue sent.
    fn cqe(&mut self) -> Cqe {
        match self.received().as_slice() {
            [Pdu::CapsuleResp(r)] => r.cqe,
            other => panic!("expected one response capsule, got {other:?}"),
        }
    }

    fn handshake(&mut self, digests: Digests) {
        let req = IcReq {
            digests,
            ..IcReq::default()
        };
        assert_eq!(
            self.send(&Pdu::IcReq(req)),
            Ok(Input::Handled { capsule: false })
        );
        let [Pdu::IcResp(resp)] = self.received()[..] else {
            panic!("no ICResp");
        };
        assert_eq!((resp.cpda, resp.digests), (Pda(0), digests));
        self.tx = TxParams {
            digests,
            peer_pda: Pda(0),
        };
    }

    /// Connects as queue `qid` with `sq_entries` entries, flow control off when asked.
    fn connect(&mut self, qid: u16, sq_entries: u16, no_sq_flow_control: bool) {
        let cmd = ConnectCommand {
            cid: 0xc0,
            qid,
            sqsize: sq_entries - 1,
            cattr: if no_sq_flow_control {
                ConnectCommand::CATTR_DISABLE_SQ_FLOW_CONTROL
            } else {
                0
            },
            dptr: SglDescriptor::in_capsule(0, 1024),
            ..ConnectCommand::default()
        };
        let capsule = capsule(cmd.to_sqe(), Bytes::from(vec![0; 1024]));
        let Ok(Input::Connect(c)) = self.send(&capsule) else {
            panic!("Connect not passed to the controller");
        };
        assert_eq!(c.data.len(), 1024);
        self.queue.bind(Binding {
            qid,
            sq_entries,
            sq_flow_control_disabled: no_sq_flow_control,
        });
        self.queue.complete(Completion::ok(c.sqe.cid));
        let cqe = self.cqe();
        assert_eq!(
            (cqe.cid, cqe.status, cqe.sqid),
            (0xc0, Status::SUCCESS, qid)
        );
    }

    /// A bound I/O queue with digests off.
    fn io_queue(sq_entries: u16, no_sq_flow_control: bool) -> Self {
        Self::io_queue_with(QueueConfig::default(), sq_entries, no_sq_flow_control)
    }

    /// [`Host::io_queue`] with `config`.
    fn io_queue_with(config: QueueConfig, sq_entries: u16, no_sq_flow_control: bool) -> Self {
        let mut h = Self::with(config);
        h.handshake(Digests::NONE);
        h.connect(1, sq_entries, no_sq_flow_control);
        h
    }

    /// Sends a command the queue must pass to the controller; returns it.
    fn command(&mut self, pdu: &Pdu) -> Command {
        match self.send(pdu) {
            Ok(Input::Command { command, .. }) => command,
            other => panic!("expected a command for the controller, got {other:?}"),
        }
    }
}

fn capsule(sqe: Sqe, data: Bytes) -> Pdu {
    Pdu::CapsuleCmd(CapsuleCmd { sqe, data })
}

fn read(cid: u16, blocks: u16) -> Pdu {
    let len = u32::from(blocks) * 512;
    let rw = ReadWrite {
        opcode: IoOpcode::READ,
        cid,
        nsid: 1,
        nlb: blocks - 1,
        dptr: SglDescriptor::transport(len),
        ..ReadWrite::default()
    };
    capsule(rw.to_sqe(), Bytes::new())
}

fn write(cid: u16, data: &[u8], in_capsule: bool) -> Pdu {
    let len = u32::try_from(data.len()).unwrap();
    let rw = ReadWrite {
        opcode: IoOpcode::WRITE,
        cid,
        nsid: 1,
        nlb: u16::try_from(data.len() / 512).unwrap() - 1,
        dptr: if in_capsule {
            SglDescriptor::in_capsule(0, len)
        } else {
            SglDescriptor::transport(len)
        },
        ..ReadWrite::default()
    };
    let data = if in_capsule {
        Bytes::copy_from_slice(data)
    } else {
        Bytes::new()
    };
    capsule(rw.to_sqe(), data)
}

fn h2c(cccid: u16, ttag: u16, datao: u32, data: &[u8], last_pdu: bool) -> Pdu {
    Pdu::H2cData(H2cData {
        cccid,
        ttag,
        datao,
        last_pdu,
        data: Bytes::copy_from_slice(data),
    })
}

// NVMe/TCP 1.0 §3.3.1.1
// NVMe/TCP 1.0 §3.6.2.3
#[test]
fn the_icresp_answers_what_the_host_asked() {
    for digests in [Digests::NONE, Digests::BOTH] {
        let mut h = Host::new();
        h.handshake(digests);
        assert!(h.queue.binding().is_none());
    }
}

// NVMe/TCP 1.0 §3.6.2.3
#[test]
fn the_icresp_announces_maxh2cdata() {
    let mut config = QueueConfig::default();
    config.framer.max_data_len = 64 * 1024;
    let mut h = Host::with(config);
    h.send(&Pdu::IcReq(IcReq::default())).unwrap();
    let [Pdu::IcResp(resp)] = h.received()[..] else {
        panic!("no ICResp");
    };
    assert_eq!((resp.pfv, resp.maxh2cdata), (0, 64 * 1024));
}

#[test]
fn commands_before_connect_get_command_sequence_error() {
    let mut h = Host::new();
    h.handshake(Digests::NONE);
    assert_eq!(h.send(&read(5, 1)), Ok(Input::Handled { capsule: true }));
    let cqe = h.cqe();
    assert_eq!(cqe.cid, 5);
    assert_eq!(cqe.status, Status::dnr(StatusCode::COMMAND_SEQUENCE_ERROR));
}

#[test]
fn a_second_connect_is_refused_and_the_queue_goes_on() {
    let mut h = Host::io_queue(32, false);
    let again = ConnectCommand {
        cid: 9,
        qid: 2,
        dptr: SglDescriptor::in_capsule(0, 1024),
        ..ConnectCommand::default()
    };
    let capsule = capsule(again.to_sqe(), Bytes::from(vec![0; 1024]));
    assert_eq!(h.send(&capsule), Ok(Input::Handled { capsule: true }));
    let cqe = h.cqe();
    assert_eq!(cqe.status, Status::dnr(StatusCode::COMMAND_SEQUENCE_ERROR));
    assert_eq!(h.queue.binding().map(|b| b.qid), Some(1));
    h.command(&read(1, 1));
}

#[test]
fn sqhd_advances_per_capsule_and_wraps_at_the_queue_size() {
    let mut h = Host::io_queue(4, false);
    // Connect took entry 0: the head is at 1 when it completes.
    for (cid, want) in [(1u16, 2u16), (2, 3), (3, 0), (4, 1)] {
        let c = h.command(&read(cid, 1));
        h.queue.complete(Completion::ok(c.sqe.cid));
        let cqe = h.cqe();
        assert_eq!((cqe.cid, cqe.sqhd), (cid, want));
    }
}

// NVMe/TCP 1.0 §3.3.2
#[test]
fn an_in_capsule_write_reaches_the_controller_with_its_data() {
    let mut h = Host::io_queue(32, false);
    let c = h.command(&write(3, &[0xab; 1024], true));
    assert_eq!((c.sqe.cid, c.c2h_len), (3, 0));
    assert_eq!(&c.data[..], &[0xab; 1024][..]);
    assert!(
        h.received().is_empty(),
        "nothing is sent before it completes"
    );
}

// NVMe/TCP 1.0 §3.3.2.2
#[test]
fn a_large_write_is_fetched_with_one_r2t_and_gathered() {
    let mut h = Host::io_queue(32, false);
    assert_eq!(
        h.send(&write(7, &[0; 8192], false)),
        Ok(Input::Handled { capsule: true })
    );
    let [Pdu::R2t(r2t)] = h.received()[..] else {
        panic!("no R2T");
    };
    assert_eq!((r2t.cccid, r2t.r2to, r2t.r2tl), (7, 0, 8192));
    let first = h.send(&h2c(7, r2t.ttag, 0, &[1; 4096], false));
    assert_eq!(first, Ok(Input::Handled { capsule: false }));
    let c = h.command(&h2c(7, r2t.ttag, 4096, &[2; 4096], true));
    assert_eq!(c.sqe.cid, 7);
    assert_eq!(&c.data[..4096], &[1; 4096][..]);
    assert_eq!(&c.data[4096..], &[2; 4096][..]);
}

// NVMe/TCP 1.0 §3.3.2.2
#[test]
fn a_write_longer_than_max_r2t_is_asked_for_one_r2t_at_a_time() {
    let config = QueueConfig {
        max_r2t: 4096,
        ..QueueConfig::default()
    };
    let mut h = Host::io_queue_with(config, 32, false);
    h.send(&write(7, &[0; 10240], false)).unwrap();
    let [Pdu::R2t(r2t)] = h.received()[..] else {
        panic!("no R2T");
    };
    assert_eq!((r2t.r2to, r2t.r2tl), (0, 4096));
    let mut asked = vec![(r2t.r2to, r2t.r2tl)];
    let mut command = None;
    for (at, byte) in [(0u32, 1u8), (4096, 2), (8192, 3)] {
        let len = if at == 8192 { 2048 } else { 4096 };
        match h.send(&h2c(7, r2t.ttag, at, &vec![byte; len], true)) {
            Ok(Input::Handled { capsule: false }) => {
                let [Pdu::R2t(next)] = h.received()[..] else {
                    panic!("no next R2T after {at}");
                };
                assert_eq!((next.cccid, next.ttag), (7, r2t.ttag));
                asked.push((next.r2to, next.r2tl));
            }
            Ok(Input::Command { command: c, .. }) => command = Some(c),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(asked, [(0, 4096), (4096, 4096), (8192, 2048)]);
    let c = command.expect("the write reaches the controller after its last R2T");
    assert_eq!(c.data.len(), 10240);
    assert_eq!((c.data[0], c.data[4096], c.data[10239]), (1, 2, 3));
}

// NVMe/TCP 1.0 §3.3.2.1
#[test]
fn a_read_longer_than_max_c2h_data_goes_in_ordered_pdus() {
    let config = QueueConfig {
        max_c2h_data: 1536,
        ..QueueConfig::default()
    };
    let mut h = Host::io_queue_with(config, 32, true);
    h.command(&read(4, 8));
    let data: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
    h.queue
        .complete(Completion::data(4, Bytes::from(data.clone())));
    let shape: Vec<_> = h
        .received()
        .into_iter()
        .map(|p| match p {
            Pdu::C2hData(d) => (d.datao, d.data.len(), d.last_pdu, d.success, d.data),
            other => panic!("{other:?}"),
        })
        .collect();
    let flags: Vec<_> = shape.iter().map(|s| (s.0, s.1, s.2, s.3)).collect();
    assert_eq!(
        flags,
        [
            (0, 1536, false, false),
            (1536, 1536, false, false),
            (3072, 1024, true, true)
        ]
    );
    let joined: Vec<u8> = shape.iter().flat_map(|s| s.4.to_vec()).collect();
    assert_eq!(joined, data);
}

// NVMe/TCP 1.0 §3.3.2.1
#[test]
fn reads_end_with_c2h_success_only_without_sq_flow_control() {
    for no_flow_control in [true, false] {
        let mut h = Host::io_queue(32, no_flow_control);
        let c = h.command(&read(4, 8));
        assert_eq!(c.c2h_len, 4096);
        h.queue
            .complete(Completion::data(4, Bytes::from(vec![0x5a; 4096])));
        let pdus = h.received();
        let Some(Pdu::C2hData(data)) = pdus.first() else {
            panic!("no C2HData");
        };
        assert_eq!((data.cccid, data.datao, data.last_pdu), (4, 0, true));
        assert_eq!(data.data.len(), 4096);
        assert_eq!(data.success, no_flow_control);
        assert_eq!(pdus.len(), if no_flow_control { 1 } else { 2 });
    }
}

// NVMe/TCP 1.0 §3.3.2.1
#[test]
fn a_read_with_result_dwords_keeps_its_capsule() {
    let mut h = Host::io_queue(32, true);
    h.command(&read(4, 1));
    let mut c = Completion::data(4, Bytes::from(vec![0; 512]));
    c.dw0 = 7;
    h.queue.complete(c);
    let pdus = h.received();
    assert!(
        matches!(&pdus[..], [Pdu::C2hData(d), Pdu::CapsuleResp(r)] if !d.success && r.cqe.dw0 == 7)
    );
}

#[test]
fn a_failed_read_sends_no_data() {
    let mut h = Host::io_queue(32, true);
    h.command(&read(4, 1));
    let mut c = Completion::error(4, StatusCode::INTERNAL_ERROR);
    c.data = Some(Bytes::from(vec![0; 512]));
    h.queue.complete(c);
    assert_eq!(h.cqe().status, Status::dnr(StatusCode::INTERNAL_ERROR));
}

#[test]
fn a_completed_cid_may_be_reused() {
    let mut h = Host::io_queue(32, false);
    for _ in 0..3 {
        h.command(&read(9, 1));
        h.queue.complete(Completion::ok(9));
        h.cqe();
    }
    assert_eq!(h.queue.in_flight(), 0);
}

#[test]
fn beyond_mdts_is_refused_before_anything_is_built() {
    let config = QueueConfig {
        max_transfer: 4096,
        ..QueueConfig::default()
    };
    let mut h = Host::with(config);
    h.handshake(Digests::NONE);
    h.connect(1, 32, false);
    assert_eq!(h.send(&read(1, 16)), Ok(Input::Handled { capsule: true }));
    assert_eq!(h.cqe().status, Status::dnr(StatusCode::INVALID_FIELD));
    assert_eq!(
        h.send(&write(2, &[0; 8192], false)),
        Ok(Input::Handled { capsule: true })
    );
    assert_eq!(h.cqe().status, Status::dnr(StatusCode::INVALID_FIELD));
}

#[test]
fn a_reused_parked_cid_gives_the_parked_command_up() {
    let mut h = Host::new();
    h.handshake(Digests::NONE);
    h.connect(0, 32, false);
    let aer = Sqe {
        opcode: 0x0c,
        cid: 40,
        ..Sqe::default()
    };
    let c = h.command(&capsule(aer, Bytes::new()));
    h.queue.park(c.sqe.cid);
    let again = h.send(&capsule(aer, Bytes::new()));
    assert!(matches!(
        again,
        Ok(Input::Command {
            gives_up_parked: true,
            ..
        })
    ));
    // The old AER's completion, if it comes now, is dropped.
    assert!(!h.queue.complete_parked(Completion::ok(40)));
    assert!(h.received().is_empty());
    h.queue.park(40);
    assert!(h.queue.complete_parked(Completion::dw0(40, 1)));
    assert_eq!(h.cqe().dw0, 1);
}

#[test]
fn disconnect_mid_transfer_closes_after_its_completion() {
    let mut h = Host::io_queue(32, false);
    h.send(&write(7, &[0; 8192], false)).unwrap();
    assert!(matches!(h.received()[..], [Pdu::R2t(_)]));
    let d = h.command(&capsule(
        Disconnect { cid: 8, recfmt: 0 }.to_sqe(),
        Bytes::new(),
    ));
    h.queue.complete(Completion {
        after: After::CloseQueue,
        ..Completion::ok(d.sqe.cid)
    });
    assert!(h.queue.is_closing());
    assert_eq!(h.cqe().cid, 8);
}

#[test]
fn the_connect_deadline_ends_an_unbound_queue_only() {
    let mut h = Host::new();
    let by = h.queue.poll_timeout(h.start).unwrap().unwrap();
    assert_eq!(by, h.start + Duration::from_secs(10));
    h.handshake(Digests::NONE);
    let late = h.queue.poll_timeout(by);
    assert_eq!(late, Err(QueueError::Timeout(super::Deadline::Connect)));
    assert!(h.received().is_empty(), "no TermReq for a timeout");
    assert!(h.send(&read(1, 1)).is_err(), "the queue stays ended");

    let mut bound = Host::io_queue(32, false);
    let much_later = bound.start + Duration::from_hours(1);
    assert_eq!(bound.queue.poll_timeout(much_later), Ok(None));
}

// NVMe/TCP 1.0 §2
#[test]
fn pdus_split_anywhere_decode_the_same() {
    let mut h = Host::io_queue(32, false);
    let mut bytes = BytesMut::new();
    write(3, &[0xcd; 2048], true)
        .encode(h.tx, &mut bytes)
        .unwrap();
    let mut commands = 0;
    for chunk in bytes.chunks(7) {
        h.wire.extend_from_slice(chunk);
        match h.queue.handle_input(&mut h.wire).unwrap() {
            Input::NeedMore => {}
            Input::Command { command, .. } => {
                assert_eq!(command.data.len(), 2048);
                commands += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(commands, 1);
    assert!(h.wire.is_empty());
}

#[test]
fn a_zero_copy_write_keeps_the_payload_until_the_socket_reports_it_sent() {
    let mut h = Host::io_queue(32, true);
    h.command(&read(4, 8));
    let payload = Bytes::from(BytesMut::from(&[0x5a; 4096][..]));
    h.queue.complete(Completion::data(4, payload.clone()));
    // The first write takes 100 bytes (part of the header), the second the rest.
    let mut writes = 0;
    let all_sent = h
        .queue
        .poll_transmit_zero_copy(|iov| {
            writes += 1;
            let total: usize = iov.iter().map(|s| s.len()).sum();
            let bytes = if writes == 1 { 10 } else { total };
            Ok(Sent {
                bytes,
                zero_copy: true,
            })
        })
        .unwrap();
    assert!(all_sent);
    assert_eq!(h.queue.zero_copy_outstanding(), 2);
    assert_eq!(h.queue.zero_copy_pending(), 24 + 4096);
    assert!(!payload.is_unique(), "the socket still reads the payload");
    h.queue.zero_copy_complete(0, 0);
    assert_eq!(h.queue.zero_copy_pending(), 24 + 4096 - 10);
    h.queue.zero_copy_complete(1, 1);
    assert_eq!(h.queue.zero_copy_outstanding(), 0);
    assert!(payload.is_unique(), "released once its write completed");
}

#[test]
fn a_copying_write_keeps_nothing() {
    let mut h = Host::io_queue(32, true);
    h.command(&read(4, 8));
    let payload = Bytes::from(BytesMut::from(&[0x5a; 4096][..]));
    h.queue.complete(Completion::data(4, payload.clone()));
    assert!(h.received().len() == 1);
    assert_eq!(h.queue.zero_copy_pending(), 0);
    assert!(payload.is_unique());
}
