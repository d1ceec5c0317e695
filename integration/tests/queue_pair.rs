//! Our initiator's sans-IO queue core against the target's, in memory: the bytes each side
//! sends reach the other cut at random places, the target's "controller" (a RAM disk here)
//! completes commands in a random order, digests and SQ flow control vary, and every read
//! must return what the model says was written, with neither side seeing a violation.
//!
//! This is the property test of the two cores' rules agreeing with each other. It is not
//! evidence of interoperability with other implementations (the VM tests against the Linux
//! host and nvmet are).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; a panic is a failure

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use lamina_integration::host::{Command, HostError, PduReader, QueueCore, QueueParams, Transfer};
use lamina_protocol::fabrics::ConnectCommand;
use lamina_protocol::nvme::{IoOpcode, ReadWrite, Status};
use lamina_protocol::target::{Binding, Completion, Input, QueueConfig, TargetQueue};
use lamina_protocol::tcp::{Digests, IcReq, Pda, Pdu, TxParams};
use lamina_protocol::{Framer, FramerConfig};
use proptest::prelude::*;

/// Blocks of the RAM disk each host slot owns, so no two commands in flight overlap.
const REGION_BLOCKS: u64 = 64;
const BLOCK: usize = 512;
const QUEUE_SIZE: u16 = 16;

/// One step of a scenario.
#[derive(Debug, Clone)]
enum Op {
    /// Write `blocks` blocks filled from `seed` at block `offset` of a free slot's region,
    /// in the capsule or by R2T.
    Write {
        offset: u8,
        blocks: u8,
        seed: u8,
        by_r2t: bool,
    },
    /// Read `blocks` blocks at `offset` of a free slot's region.
    Read { offset: u8, blocks: u8 },
    /// The controller completes the pending command at this index (modulo how many wait).
    Complete(u8),
    /// Move bytes: host to target, `n` bytes at most (0: all).
    ToTarget(u16),
    /// Move bytes: target to host, `n` bytes at most (0: all).
    ToHost(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..32, 1u8..32, any::<u8>(), any::<bool>()).prop_map(
            |(offset, blocks, seed, by_r2t)| {
                Op::Write {
                    offset,
                    blocks,
                    seed,
                    by_r2t,
                }
            }
        ),
        (0u8..32, 1u8..32).prop_map(|(offset, blocks)| Op::Read { offset, blocks }),
        any::<u8>().prop_map(Op::Complete),
        any::<u16>().prop_map(Op::ToTarget),
        any::<u16>().prop_map(Op::ToHost),
    ]
}

/// The two cores, the bytes between them, the target's RAM disk and the host's model of it.
struct Pair {
    host: QueueCore,
    reader: PduReader,
    target: TargetQueue,
    to_target: BytesMut,
    to_host: BytesMut,
    disk: Vec<u8>,
    model: Vec<u8>,
    /// Commands the target's controller holds.
    pending: Vec<lamina_protocol::target::Command>,
    /// Host slots in flight: (slot, CID, region start block, blocks, is read).
    inflight: Vec<(u16, u16, u64, u64, bool)>,
    completed: usize,
}

impl Pair {
    fn connect(digests: Digests, no_sq_flow_control: bool, in_capsule_max: u32) -> Self {
        let mut target = TargetQueue::new(QueueConfig::default(), (), Instant::now());
        let mut bytes = BytesMut::new();
        IcReq {
            digests,
            ..IcReq::default()
        }
        .encode(&mut bytes);
        assert_eq!(
            target.handle_input(&mut bytes),
            Ok(Input::Handled { capsule: false })
        );
        let mut to_host = BytesMut::new();
        drain_target(&mut target, &mut to_host);
        let mut framer = Framer::new(FramerConfig::host());
        let Ok(Some(Pdu::IcResp(resp))) = framer.decode(&mut to_host) else {
            panic!("no ICResp");
        };
        framer.set_digests(resp.digests);
        let host = QueueCore::new(QueueParams {
            qid: 1,
            queue_size: QUEUE_SIZE,
            tx: TxParams {
                digests: resp.digests,
                peer_pda: Pda(0),
            },
            maxh2cdata: resp.maxh2cdata,
            in_capsule_max,
            max_transfer: 128 * 1024,
            sq_flow_control_disabled: no_sq_flow_control,
        });
        let disk =
            vec![0; usize::try_from(REGION_BLOCKS).unwrap() * BLOCK * usize::from(QUEUE_SIZE) * 2];
        let mut pair = Self {
            host,
            reader: PduReader::new(framer, BytesMut::new()),
            target,
            to_target: BytesMut::new(),
            to_host,
            model: disk.clone(),
            disk,
            pending: Vec::new(),
            inflight: Vec::new(),
            completed: 0,
        };
        let connect = ConnectCommand {
            qid: 1,
            sqsize: QUEUE_SIZE - 1,
            cattr: if no_sq_flow_control {
                ConnectCommand::CATTR_DISABLE_SQ_FLOW_CONTROL
            } else {
                0
            },
            ..ConnectCommand::default()
        };
        let data = Transfer::ToController(Bytes::from(vec![0; 1024]));
        let slot = pair
            .host
            .submit(Command::with_transfer(connect.to_sqe(), data))
            .unwrap();
        let cid = pair.host.cid_of(slot).unwrap();
        pair.host_output();
        let Ok(Input::Connect(c)) = pair.target.handle_input(&mut pair.to_target) else {
            panic!("the Connect did not reach the controller");
        };
        pair.target.bind(Binding {
            qid: 1,
            sq_entries: QUEUE_SIZE,
            sq_flow_control_disabled: no_sq_flow_control,
        });
        pair.target.complete(Completion::ok(c.sqe.cid));
        pair.deliver_to_host(0);
        let mut ready = Vec::new();
        pair.host.drain_ready_into(&mut ready);
        assert_eq!(ready, [slot]);
        assert!(pair.host.take(slot, cid).unwrap().unwrap().is_success());
        pair
    }

    /// A free slot's region, if a slot is free.
    fn free_region(&self) -> Option<u64> {
        (0..u64::from(QUEUE_SIZE) * 2)
            .find(|r| !self.inflight.iter().any(|f| f.2 / REGION_BLOCKS == *r))
            .filter(|_| self.inflight.len() < usize::from(QUEUE_SIZE) - 1)
    }

    fn submit(&mut self, write: Option<(u8, bool)>, offset: u8, blocks: u8) {
        let Some(region) = self.free_region() else {
            return;
        };
        let slba = region * REGION_BLOCKS + u64::from(offset);
        let nblocks = u64::from(blocks);
        let len = usize::from(blocks) * BLOCK;
        let rw = ReadWrite {
            opcode: if write.is_some() {
                IoOpcode::WRITE
            } else {
                IoOpcode::READ
            },
            nsid: 1,
            slba,
            nlb: u16::from(blocks) - 1,
            ..ReadWrite::default()
        };
        let transfer = match write {
            Some((seed, by_r2t)) => {
                let data: Vec<u8> = (0..len)
                    .map(|i| seed.wrapping_add(u8::try_from(i % 251).unwrap()))
                    .collect();
                let at = usize::try_from(slba).unwrap() * BLOCK;
                self.model[at..at + len].copy_from_slice(&data);
                if by_r2t {
                    Transfer::ToControllerByR2t(Bytes::from(data))
                } else {
                    Transfer::ToController(Bytes::from(data))
                }
            }
            None => Transfer::read(u32::try_from(len).unwrap()),
        };
        let slot = self
            .host
            .submit(Command::with_transfer(rw.to_sqe(), transfer))
            .unwrap();
        let cid = self.host.cid_of(slot).unwrap();
        self.inflight
            .push((slot, cid, slba, nblocks, write.is_none()));
    }

    /// Moves up to `n` bytes (0: all) from the host to the target and handles them there.
    fn deliver_to_target(&mut self) {
        self.deliver_to_target_at_most(0);
    }

    /// Moves what the host queued onto the wire to the target.
    fn host_output(&mut self) {
        let to_target = &mut self.to_target;
        self.host
            .write_output(|iov| Ok(wire(to_target, iov)))
            .unwrap();
    }

    fn deliver_to_target_at_most(&mut self, n: u16) {
        self.host_output();
        let take = if n == 0 {
            self.to_target.len()
        } else {
            usize::from(n).min(self.to_target.len())
        };
        // The target sees only `take` bytes now; the rest stays on the wire.
        let rest = self.to_target.split_off(take);
        loop {
            match self.target.handle_input(&mut self.to_target) {
                Ok(Input::NeedMore) => break,
                Ok(Input::Handled { .. }) => {}
                Ok(Input::Command { command, .. }) => self.pending.push(command),
                Ok(other) => panic!("target passed up {:?}", std::mem::discriminant(&other)),
                Err(e) => panic!("target: {e}"),
            }
        }
        self.to_target.unsplit(rest);
    }

    /// Moves up to `n` bytes (0: all) from the target to the host and handles them there.
    fn deliver_to_host(&mut self, n: u16) {
        drain_target(&mut self.target, &mut self.to_host);
        let take = if n == 0 {
            self.to_host.len()
        } else {
            usize::from(n).min(self.to_host.len())
        };
        let chunk = self.to_host.split_to(take);
        self.reader.feed(&chunk);
        if let Err(e) = self.reader.dispatch(&mut self.host) {
            panic!("host: {e}");
        }
    }

    /// Takes the host's finished commands and checks them against the model.
    fn collect(&mut self) {
        let mut ready = Vec::new();
        self.host.drain_ready_into(&mut ready);
        for slot in ready {
            let Some(i) = self.inflight.iter().position(|f| f.0 == slot) else {
                panic!("slot {slot} ready, in flight: {:?}", self.inflight);
            };
            let (_, cid, slba, blocks, is_read) = self.inflight.swap_remove(i);
            let mut done = self
                .host
                .take(slot, cid)
                .unwrap()
                .unwrap_or_else(|e: HostError| panic!("command failed: {e}"));
            assert_eq!(done.cqe.status, Status::SUCCESS);
            if is_read {
                let at = usize::try_from(slba).unwrap() * BLOCK;
                let len = usize::try_from(blocks).unwrap() * BLOCK;
                assert_eq!(&done.take_data()[..], &self.model[at..at + len]);
            }
            self.completed += 1;
        }
    }

    /// The controller completes pending command `i` (modulo), against the RAM disk.
    fn complete(&mut self, i: u8) {
        if self.pending.is_empty() {
            return;
        }
        let c = self
            .pending
            .swap_remove(usize::from(i) % self.pending.len());
        let rw = ReadWrite::try_from(&c.sqe).unwrap();
        let at = usize::try_from(rw.slba).unwrap() * BLOCK;
        let len = (usize::from(rw.nlb) + 1) * BLOCK;
        let done = if rw.opcode == IoOpcode::WRITE {
            assert_eq!(c.data.len(), len);
            self.disk[at..at + len].copy_from_slice(&c.data);
            Completion::ok(c.sqe.cid)
        } else {
            assert_eq!(usize::try_from(c.c2h_len).unwrap(), len);
            Completion::data(c.sqe.cid, Bytes::copy_from_slice(&self.disk[at..at + len]))
        };
        self.target.complete(done);
    }

    /// Runs everything still in flight to its end.
    fn settle(&mut self) {
        for _ in 0..1000 {
            self.deliver_to_target();
            while !self.pending.is_empty() {
                self.complete(0);
            }
            self.deliver_to_host(0);
            self.collect();
            if self.inflight.is_empty() {
                return;
            }
        }
        panic!("commands never finished: {:?}", self.inflight);
    }
}

/// A vectored write onto an in-memory wire: takes every byte.
fn wire(out: &mut BytesMut, iov: &[std::io::IoSlice<'_>]) -> usize {
    iov.iter()
        .map(|s| {
            out.extend_from_slice(s);
            s.len()
        })
        .sum()
}

fn drain_target(target: &mut TargetQueue, out: &mut BytesMut) {
    target.poll_transmit(|iov| Ok(wire(out, iov))).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_two_cores_agree(
        ops in proptest::collection::vec(op(), 1..200),
        digests in prop_oneof![Just(Digests::NONE), Just(Digests::BOTH)],
        no_sq_flow_control in any::<bool>(),
        in_capsule_kib in 1u32..=8,
    ) {
        let mut pair = Pair::connect(digests, no_sq_flow_control, in_capsule_kib * 1024);
        let mut submitted = 0;
        for op in ops {
            match op {
                Op::Write { offset, blocks, seed, by_r2t } => {
                    pair.submit(Some((seed, by_r2t)), offset, blocks);
                    submitted += 1;
                }
                Op::Read { offset, blocks } => {
                    pair.submit(None, offset, blocks);
                    submitted += 1;
                }
                Op::Complete(i) => pair.complete(i),
                Op::ToTarget(n) => pair.deliver_to_target_at_most(n),
                Op::ToHost(n) => {
                    pair.deliver_to_host(n);
                    pair.collect();
                }
            }
        }
        pair.settle();
        prop_assert!(pair.completed <= submitted);
        prop_assert_eq!(pair.target.in_flight(), 0);
        prop_assert!(pair.target.error().is_none());
        prop_assert!(pair.host.dead().is_none());
        // Everything the host was told is written is on the disk.
        prop_assert!(pair.disk == pair.model);
    }
}
