//! The steps of a valid NVMe/TCP session, generated at random, and their encoding.
//!
//! A session is an admin queue (ICReq, Connect, enable, then admin commands) plus up to two
//! I/O queues of the same controller (ICReq, Connect with the admin queue's CNTLID, then I/O
//! commands: in-capsule and R2T writes with their H2CData, reads, flushes, deallocates, write
//! zeroes, compares), ending with a Disconnect, a hang-up or silence. Steps are encoded only
//! when they are sent, from what the session learnt so far (the CNTLID, the last R2T), so a
//! mutated session still reaches deep states: the mutator (see [`super::mutate`]) works on
//! these steps and on their bytes.

use bytes::{Bytes, BytesMut};
use lamina_protocol::Pdu;
use lamina_protocol::fabrics::{ConnectCommand, ConnectData, Disconnect, Property, PropertySet};
use lamina_protocol::nvme::features::FeatureId;
use lamina_protocol::nvme::identify::Cns;
use lamina_protocol::nvme::log_page::LogPageId;
use lamina_protocol::nvme::{
    AdminOpcode, DatasetManagement, DsmRange, Flush, GetFeatures, GetLogPage, Identify, IoOpcode,
    ReadWrite, SetFeatures, SglDescriptor, SimpleAdmin, Sqe, WriteZeroes,
};
use lamina_protocol::tcp::{CapsuleCmd, Digests, H2cData, IcReq, Pda, TxParams};

use super::Rng;
use crate::host::ConnectOptions;

/// One thing a connection sends.
#[derive(Debug, Clone)]
pub enum Step {
    /// The ICReq.
    IcReq {
        /// Digests asked for.
        digests: Digests,
        /// Host PDU data alignment.
        hpda: u8,
    },
    /// Fabrics Connect of queue `qid`.
    Connect {
        /// 0: admin queue.
        qid: u16,
        /// Entries (not 0's based).
        size: u16,
        /// Keep-alive timeout.
        kato_ms: u32,
    },
    /// Property Set CC with EN (and the NVM command set).
    Enable,
    /// Any command capsule, in-capsule data included.
    Command(Sqe, Bytes),
    /// A write whose data goes by R2T: the capsule now, the data at [`Step::Data`].
    WriteByR2t(Sqe, Bytes),
    /// The H2CData answering the last R2T seen.
    Data,
    /// Fabrics Disconnect.
    Disconnect,
    /// Bytes as they are (spliced from elsewhere or garbage).
    Raw(Bytes),
}

/// What a connection knows when it encodes a step.
#[derive(Debug, Clone, Default)]
pub struct Learnt {
    /// The admin queue's CNTLID (FFFFh until its Connect succeeded).
    pub cntlid: Option<u16>,
    /// The last R2T: its CID, TTAG, offset and length.
    pub r2t: Option<(u16, u16, u32, u32)>,
    /// Data of writes waiting for an R2T, by CID.
    pub pending: Vec<(u16, Bytes)>,
    /// The digests granted.
    pub tx: Option<TxParams>,
}

/// Encodes `step` for a connection that knows `learnt`; `None` when there is nothing to send
/// (an H2CData with no R2T seen).
pub fn encode(step: &Step, learnt: &mut Learnt, opts: &ConnectOptions) -> Option<Bytes> {
    let tx = learnt.tx.unwrap_or(TxParams::INITIAL);
    let pdu = match step {
        Step::IcReq { digests, hpda } => Pdu::IcReq(IcReq {
            pfv: 0,
            hpda: Pda(*hpda),
            digests: *digests,
            maxr2t: 0,
        }),
        Step::Connect { qid, size, kato_ms } => connect(*qid, *size, *kato_ms, learnt, opts),
        Step::Enable => capsule(
            PropertySet {
                cid: 0xfff0,
                size: lamina_protocol::fabrics::PropertySize::Four,
                offset: Property::CC,
                value: 0x0046_0001,
            }
            .to_sqe(),
            Bytes::new(),
        ),
        Step::Command(sqe, data) => capsule(*sqe, data.clone()),
        Step::WriteByR2t(sqe, data) => {
            learnt.pending.push((sqe.cid, data.clone()));
            let mut sqe = *sqe;
            sqe.dptr = SglDescriptor::transport(u32::try_from(data.len()).unwrap_or(0));
            capsule(sqe, Bytes::new())
        }
        Step::Data => {
            let (cid, ttag, offset, len) = learnt.r2t.take()?;
            let data = learnt
                .pending
                .iter()
                .find(|(c, _)| *c == cid)
                .map_or_else(|| Bytes::from(vec![0x5a; 4096]), |(_, d)| d.clone());
            let start = usize::try_from(offset).unwrap_or(0).min(data.len());
            let end = start
                .saturating_add(usize::try_from(len).unwrap_or(0))
                .min(data.len());
            Pdu::H2cData(H2cData {
                cccid: cid,
                ttag,
                datao: offset,
                last_pdu: true,
                data: data.slice(start..end),
            })
        }
        Step::Disconnect => capsule(
            Disconnect {
                cid: 0xfff1,
                ..Disconnect::default()
            }
            .to_sqe(),
            Bytes::new(),
        ),
        Step::Raw(b) => return Some(b.clone()),
    };
    let mut out = BytesMut::new();
    pdu.encode(tx, &mut out).ok()?;
    Some(out.freeze())
}

fn capsule(mut sqe: Sqe, data: Bytes) -> Pdu {
    if !data.is_empty() && sqe.dptr == SglDescriptor::default() {
        sqe.dptr = SglDescriptor::in_capsule(0, u32::try_from(data.len()).unwrap_or(0));
    }
    Pdu::CapsuleCmd(CapsuleCmd { sqe, data })
}

fn connect(qid: u16, size: u16, kato_ms: u32, learnt: &Learnt, opts: &ConnectOptions) -> Pdu {
    let sqe = ConnectCommand {
        cid: 0xffe0,
        qid,
        sqsize: size.saturating_sub(1),
        kato_ms,
        ..ConnectCommand::default()
    }
    .to_sqe();
    let mut data = BytesMut::new();
    ConnectData {
        hostid: opts.hostid,
        cntlid: if qid == 0 {
            0xffff
        } else {
            learnt.cntlid.unwrap_or(0xffff)
        },
        subnqn: opts.subnqn.clone(),
        hostnqn: opts.hostnqn.clone(),
    }
    .encode(&mut data);
    capsule(sqe, data.freeze())
}

/// A random admin command.
fn admin(rng: &mut Rng, cid: u16) -> Step {
    let sqe = match rng.below(9) {
        0 => Identify {
            cid,
            nsid: rng.pick(&[0, 1, 2, 0xffff_ffff]),
            cns: Cns(rng.pick(&[0, 1, 2, 3, 5, 6, 0x1c, 0xff])),
            csi: rng.pick(&[0, 2]),
            dptr: SglDescriptor::transport(rng.pick(&[4096, 16, 512, 8192])),
            ..Identify::default()
        }
        .to_sqe(),
        1 => GetLogPage {
            cid,
            nsid: 0xffff_ffff,
            lid: LogPageId(rng.pick(&[1, 2, 3, 4, 5, 0x70, 0xc0])),
            numd: rng.pick(&[127, 1023, 3, u32::MAX, 0]),
            lpo: rng.pick(&[0, 4, 512, 1 << 40]),
            dptr: SglDescriptor::transport(rng.pick(&[512, 4096, 16])),
            ..GetLogPage::default()
        }
        .to_sqe(),
        2 => SetFeatures {
            cid,
            fid: FeatureId(rng.pick(&[0x06, 0x07, 0x0b, 0x0f, 0x81, 0x02])),
            cdw11: rng.pick(&[0, 1, 0xffff_ffff, 0x0003_0003, 5000]),
            ..SetFeatures::default()
        }
        .to_sqe(),
        3 => GetFeatures {
            cid,
            fid: FeatureId(rng.pick(&[0x06, 0x07, 0x0b, 0x0f, 0x81, 0x0a])),
            ..GetFeatures::default()
        }
        .to_sqe(),
        4 => SimpleAdmin {
            opcode: AdminOpcode::KEEP_ALIVE,
            cid,
        }
        .to_sqe(),
        5 => SimpleAdmin {
            opcode: AdminOpcode::ASYNC_EVENT_REQUEST,
            cid,
        }
        .to_sqe(),
        _ => Sqe {
            opcode: u8::try_from(rng.below(256)).unwrap_or(0),
            cid,
            ..Sqe::default()
        },
    };
    Step::Command(sqe, Bytes::new())
}

/// A random I/O command on namespace 1 (sometimes others).
fn io(rng: &mut Rng, cid: u16, blocks: u64) -> Step {
    let nsid = if rng.below(16) == 0 {
        rng.pick(&[0, 2, 0xffff_ffff])
    } else {
        1
    };
    let slba = match rng.below(8) {
        0 => blocks.saturating_sub(1),
        1 => blocks,
        2 => u64::MAX - 1,
        _ => rng.below(blocks.clamp(1, 4096)) * 8,
    };
    let nlb = u16::try_from(rng.pick(&[0u64, 1, 7, 63, 255])).unwrap_or(0);
    let len = (usize::from(nlb) + 1) * 512;
    let data = Bytes::from(vec![u8::try_from(cid % 251).unwrap_or(1); len]);
    let fua = rng.below(4) == 0;
    let rw = |opcode| ReadWrite {
        opcode,
        cid,
        nsid,
        slba,
        nlb,
        fua,
        ..ReadWrite::default()
    };
    match rng.below(9) {
        0 | 1 => Step::Command(rw(IoOpcode::WRITE).to_sqe(), data),
        2 => Step::WriteByR2t(rw(IoOpcode::WRITE).to_sqe(), data),
        3 | 4 => {
            let mut sqe = rw(IoOpcode::READ).to_sqe();
            sqe.dptr = SglDescriptor::transport(u32::try_from(len).unwrap_or(0));
            Step::Command(sqe, Bytes::new())
        }
        5 => Step::Command(Flush { cid, nsid }.to_sqe(), Bytes::new()),
        6 => {
            let mut ranges = BytesMut::new();
            let n = 1 + rng.below(4);
            for _ in 0..n {
                DsmRange {
                    context_attributes: 0,
                    nlb: u32::try_from(rng.pick(&[8u64, 1024, 8192, 1 << 20])).unwrap_or(8),
                    slba: rng.below(blocks.max(1)),
                }
                .encode(&mut ranges);
            }
            // Linux sends a whole 4 KiB page of ranges whatever their count.
            if rng.below(2) == 0 {
                ranges.resize(4096, 0);
            }
            let sqe = DatasetManagement {
                cid,
                nsid,
                nr: u8::try_from(n - 1).unwrap_or(0),
                deallocate: true,
                ..DatasetManagement::default()
            }
            .to_sqe();
            Step::Command(sqe, ranges.freeze())
        }
        7 => Step::Command(
            WriteZeroes {
                cid,
                nsid,
                slba,
                nlb,
                deac: rng.below(2) == 0,
                ..WriteZeroes::default()
            }
            .to_sqe(),
            Bytes::new(),
        ),
        _ => Step::Command(rw(IoOpcode::COMPARE).to_sqe(), data),
    }
}

/// One connection's script.
#[derive(Debug, Clone)]
pub struct ConnScript {
    /// The queue it connects (0: admin).
    pub qid: u16,
    /// What it sends.
    pub steps: Vec<Step>,
}

/// A random valid session: an admin queue and up to two I/O queues over `blocks` blocks.
pub fn session(rng: &mut Rng, blocks: u64) -> Vec<ConnScript> {
    let digests = Digests {
        header: rng.below(3) == 0,
        data: rng.below(3) == 0,
    };
    let hpda = u8::try_from(rng.pick(&[0u64, 0, 3, 31])).unwrap_or(0);
    let mut admin_steps = vec![
        Step::IcReq { digests, hpda },
        Step::Connect {
            qid: 0,
            size: 32,
            kato_ms: rng.pick(&[0, 5000, 30_000]),
        },
        Step::Enable,
        Step::Command(
            SetFeatures {
                cid: 1,
                fid: FeatureId::NUMBER_OF_QUEUES,
                cdw11: 0x0001_0001,
                ..SetFeatures::default()
            }
            .to_sqe(),
            Bytes::new(),
        ),
    ];
    for cid in 2..2 + rng.below(6) {
        admin_steps.push(admin(rng, u16::try_from(cid).unwrap_or(2)));
    }
    let mut scripts = vec![ConnScript {
        qid: 0,
        steps: admin_steps,
    }];
    for qid in 1..=rng.below(3) {
        let q = u16::try_from(qid).unwrap_or(1);
        let mut steps = vec![
            Step::IcReq { digests, hpda },
            Step::Connect {
                qid: q,
                size: u16::try_from(rng.pick(&[4u64, 32, 128])).unwrap_or(32),
                kato_ms: 0,
            },
        ];
        for cid in 0..rng.below(24) {
            let step = io(rng, u16::try_from(cid).unwrap_or(0), blocks);
            let r2t = matches!(step, Step::WriteByR2t(..));
            steps.push(step);
            if r2t {
                steps.push(Step::Data);
            }
        }
        if rng.below(3) == 0 {
            steps.push(Step::Disconnect);
        }
        scripts.push(ConnScript { qid: q, steps });
    }
    scripts
}
