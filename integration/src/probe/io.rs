//! Probe steps on the I/O queues: patterns written through in-capsule data and the R2T path
//! (natural and forced) and read back, FUA, Write Zeroes, Dataset Management, Flush, Compare,
//! an out-of-range read, and a pipelined burst of verified random writes over every queue.

use bytes::{Bytes, BytesMut};
use lamina_protocol::nvme::{DsmRange, StatusCode};

use super::{ProbeArgs, ProbeError, Step, StepContext, ensure, ok};
use crate::host::{Command, Controller, Namespace, Queue, Transfer};
use crate::perf::rng::Rng;

/// Where the probe writes (bytes into the namespace): the round trips from 0, the forced
/// R2T at 16 MiB, the other commands at 20 MiB, the burst in 24..64 MiB.
const FORCED_R2T_AT: u64 = 16 << 20;
const OTHER_AT: u64 = 20 << 20;
const BURST_AT: u64 = 24 << 20;
/// Bytes of the namespace the probe overwrites.
pub(crate) const FOOTPRINT: u64 = 64 << 20;

/// ONCS bits (Identify Controller).
const ONCS_COMPARE: u16 = 1 << 0;
const ONCS_DSM: u16 = 1 << 2;
const ONCS_WRITE_ZEROES: u16 = 1 << 3;

fn pattern(len: usize, seed: u64) -> Bytes {
    let mut v = vec![0u8; len];
    Rng::new(seed).fill(&mut v);
    Bytes::from(v)
}

pub(crate) async fn run(ctrl: &Controller, ns: &Namespace, args: &ProbeArgs) -> Step {
    let q = ctrl.io_queue(0).step("I/O queue")?;
    let bs = ns.block_size;
    let in_capsule = q.params().in_capsule_max;
    ok(format_args!(
        "namespace {}: {} blocks of {bs} bytes; in-capsule limit {in_capsule} bytes, MAXH2CDATA {}, largest transfer {}",
        ns.nsid,
        ns.blocks,
        q.negotiated().maxh2cdata,
        ctrl.max_transfer()
    ));
    ensure(ns.size_bytes() >= FOOTPRINT, "namespace size", || {
        format!("{} bytes; the probe needs {FOOTPRINT}", ns.size_bytes())
    })?;
    round_trips(q, ns, ctrl.max_transfer()).await?;
    if args.no_forced_r2t {
        ok("one-block write by forced R2T: skipped (--no-forced-r2t)");
    } else {
        forced_r2t(q, ns).await?;
    }
    let oncs = ctrl.identity().oncs;
    other_commands(q, ns, oncs).await?;
    burst(ctrl, ns, args.burst).await?;
    Ok(())
}

/// Sizes on both sides of the in-capsule limit and of MAXH2CDATA, each written, read back and
/// compared; the largest one with FUA.
async fn round_trips(q: &Queue, ns: &Namespace, max_transfer: u32) -> Step {
    let bs = ns.block_size;
    let in_capsule = q.params().in_capsule_max;
    let maxh2c = q.negotiated().maxh2cdata;
    let mut sizes = vec![
        bs,
        in_capsule,
        in_capsule + bs,
        64 * 1024,
        1024 * 1024,
        maxh2c + 2 * bs,
    ];
    // At most 1 MiB: targets need not take more without an MDTS (Linux nvmet 6.1 answers a
    // 4 MiB + 8 KiB write with SGL Data Invalid while reporting MDTS 0, and the Linux host
    // never sends that much in one command). Above MAXH2CDATA the R2T is answered with several
    // H2CData PDUs.
    sizes.retain(|s| *s >= bs && *s % bs == 0 && *s <= max_transfer && *s <= 1 << 20);
    sizes.sort_unstable();
    sizes.dedup();
    let mut slba = 0u64;
    for (i, size) in sizes.iter().enumerate() {
        let blocks = size / bs;
        let data = pattern(usize::try_from(*size).unwrap_or(0), 100 + slba);
        let fua = i + 1 == sizes.len();
        q.write(ns, slba, data.clone(), fua)
            .await
            .step("write pattern")?;
        let back = q
            .read(ns, slba, blocks, BytesMut::new())
            .await
            .step("read back")?;
        ensure(back.freeze() == data, "read back", || {
            format!("{size} bytes at LBA {slba} differ")
        })?;
        let path = if *size <= in_capsule {
            "in-capsule"
        } else if *size > maxh2c {
            "R2T, several H2CData"
        } else {
            "R2T/H2CData"
        };
        ok(format_args!(
            "{size} bytes at LBA {slba} written ({path}{}) and read back identical",
            if fua { ", FUA" } else { "" }
        ));
        slba += u64::from(blocks);
    }
    Ok(())
}

/// A one-block write sent by R2T although it would fit in the capsule.
async fn forced_r2t(q: &Queue, ns: &Namespace) -> Step {
    let data = pattern(usize::try_from(ns.block_size).unwrap_or(0), 7);
    let slba = FORCED_R2T_AT / u64::from(ns.block_size);
    let sqe = ns
        .write_command(slba, data.clone(), false)
        .step("forced R2T")?
        .sqe;
    let cmd = Command::with_transfer(sqe, Transfer::ToControllerByR2t(data.clone()));
    q.execute(cmd)
        .await
        .and_then(crate::host::Completion::into_result)
        .step("forced R2T")?;
    let back = q
        .read(ns, slba, 1, BytesMut::new())
        .await
        .step("forced R2T read")?;
    ensure(back.freeze() == data, "forced R2T", || {
        "read back differs".into()
    })?;
    ok("one block written by R2T (forced) and read back identical");
    Ok(())
}

async fn other_commands(q: &Queue, ns: &Namespace, oncs: u16) -> Step {
    let bs = usize::try_from(ns.block_size).unwrap_or(0);
    let slba = OTHER_AT / u64::from(ns.block_size);
    let data = pattern(4 * bs, 9);
    q.write(ns, slba, data.clone(), false).await.step("write")?;
    q.flush(ns.nsid).await.step("flush")?;
    ok("Flush");
    compare(q, ns, slba, &data, oncs).await?;
    write_zeroes(q, ns, slba, &data, oncs).await?;
    if oncs & ONCS_DSM != 0 {
        let range = DsmRange {
            context_attributes: 0,
            nlb: 4,
            slba,
        };
        q.dataset_management(ns.nsid, &[range], true)
            .await
            .step("dataset management")?;
        ok("Dataset Management (deallocate 4 blocks)");
    }
    // NVMe wants LBA Out of Range; Linux nvmet 6.1 passes the read to the block layer and
    // answers Internal Error. Any error status is accepted; a success or a broken queue is not.
    let status = match q.read(ns, ns.blocks, 1, BytesMut::new()).await {
        Err(e) => e
            .status()
            .ok_or_else(|| ProbeError::new("read past the end", e))?,
        Ok(_) => return Err(ProbeError::new("read past the end", "succeeded")),
    };
    if status.code == StatusCode::LBA_OUT_OF_RANGE {
        ok("read past the end fails with LBA Out of Range");
    } else {
        ok(format_args!(
            "read past the end fails with {:?} (NVMe expects LBA Out of Range)",
            status.code
        ));
    }
    Ok(())
}

async fn compare(q: &Queue, ns: &Namespace, slba: u64, data: &Bytes, oncs: u16) -> Step {
    if oncs & ONCS_COMPARE == 0 {
        ok("Compare not in ONCS: skipped");
        return Ok(());
    }
    let other = pattern(data.len(), 10);
    let same = q.compare(ns, slba, data.clone()).await.step("compare")?;
    let differs = !q.compare(ns, slba, other).await.step("compare")?;
    ensure(same && differs, "compare", || {
        format!("equal data matched: {same}, other data failed: {differs}")
    })?;
    ok("Compare: equal data matches, other data fails with Compare Failure");
    Ok(())
}

async fn write_zeroes(q: &Queue, ns: &Namespace, slba: u64, data: &Bytes, oncs: u16) -> Step {
    if oncs & ONCS_WRITE_ZEROES == 0 {
        ok("Write Zeroes not in ONCS: skipped");
        return Ok(());
    }
    let bs = usize::try_from(ns.block_size).unwrap_or(0);
    q.write_zeroes(ns, slba, 2, false, false)
        .await
        .step("write zeroes")?;
    let back = q
        .read(ns, slba, 4, BytesMut::new())
        .await
        .step("read after write zeroes")?;
    let zeroed = back
        .get(..2 * bs)
        .is_some_and(|z| z.iter().all(|b| *b == 0));
    let kept = back.get(2 * bs..) == data.get(2 * bs..);
    ensure(zeroed && kept, "write zeroes", || {
        "wrong blocks zeroed".into()
    })?;
    ok("Write Zeroes: 2 blocks read back as zeros, the next 2 kept");
    Ok(())
}

/// `count` random 4 KiB writes spread over every I/O queue, all in flight at once (up to the
/// queue sizes), each read back and compared.
async fn burst(ctrl: &Controller, ns: &Namespace, count: u32) -> Step {
    let bs = u64::from(ns.block_size);
    let unit_blocks = (4096 / bs).max(1);
    let unit_bytes = unit_blocks * bs;
    let (first, last) = (BURST_AT / unit_bytes, FOOTPRINT / unit_bytes);
    ensure(last - first >= u64::from(count), "burst", || {
        format!(
            "--burst {count} exceeds the {} units of the burst area",
            last - first
        )
    })?;
    let mut rng = Rng::new(0xb0b);
    // Distinct units, so concurrent writes never overlap.
    let mut units: Vec<u64> = (first..last).collect();
    for i in (1..units.len()).rev() {
        let j = usize::try_from(rng.below(u64::try_from(i + 1).unwrap_or(1))).unwrap_or(0);
        units.swap(i, j);
    }
    units.truncate(usize::try_from(count).unwrap_or(0));
    let queues = ctrl.io_queues();
    let tasks: Vec<_> = units
        .iter()
        .enumerate()
        .map(|(i, unit)| {
            let q = queues.get(i % queues.len().max(1)).cloned();
            let ns = ns.clone();
            let slba = unit * unit_blocks;
            tokio::spawn(async move { one(q, ns, slba, unit_blocks).await })
        })
        .collect();
    for t in tasks {
        t.await.map_err(|e| ProbeError::new("burst", e))??;
    }
    ok(format_args!(
        "{count} random 4 KiB writes pipelined over {} queue(s), all read back identical",
        queues.len()
    ));
    Ok(())
}

async fn one(q: Option<Queue>, ns: Namespace, slba: u64, blocks: u64) -> Step {
    let q = q.ok_or_else(|| ProbeError::new("burst", "no I/O queue"))?;
    let blocks = u32::try_from(blocks).unwrap_or(1);
    let data = pattern(usize::try_from(blocks * ns.block_size).unwrap_or(0), slba);
    q.write(&ns, slba, data.clone(), false)
        .await
        .step("burst write")?;
    let back = q
        .read(&ns, slba, blocks, BytesMut::new())
        .await
        .step("burst read")?;
    ensure(back.freeze() == data, "burst", || {
        format!("LBA {slba} differs")
    })
}
