//! The I/O command set against Lamina's real target, in-process on loopback: data written by
//! every transfer path (in-capsule, R2T with one and several H2CData PDUs, up to MDTS) reads
//! back intact, with and without digests; flush, write zeroes, dataset management and compare
//! do what NVMe says; out-of-range, oversized and read-only cases get their status codes; many
//! queues with deep pipelines keep their data apart.

// Test helpers fail the test by panicking; that is their job.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use bytes::{Bytes, BytesMut};
use lamina_integration::fixtures::{TestTarget, pattern};
use lamina_integration::host::{Controller, HostError, Namespace, Queue, RawHost};
use lamina_protocol::nvme::{DsmRange, IoOpcode, ReadWrite, SglDescriptor, Status, StatusCode};
use lamina_protocol::tcp::IcReq;
use serde_json::json;

async fn read(q: &Queue, ns: &Namespace, slba: u64, bytes: usize) -> BytesMut {
    let blocks = ns.blocks_of(bytes).unwrap();
    q.read(ns, slba, blocks, BytesMut::new()).await.unwrap()
}

async fn roundtrip_sizes(ctrl: &Controller, seed: u64) {
    let ns = ctrl.namespace(1).await.unwrap();
    let q = ctrl.io_queue(0).unwrap();
    let mdts = ctrl.max_transfer() as usize;
    assert_eq!(mdts, 256 * 1024, "MDTS advertised by the default transport");
    // 4 KiB and 8 KiB fit the 8 KiB in-capsule size; 12 KiB and up go by R2T; 256 KiB is
    // MDTS and arrives in two H2CData PDUs of MAXH2CDATA (128 KiB).
    for (i, size) in [4096usize, 8192, 12288, 64 * 1024, 128 * 1024, mdts]
        .into_iter()
        .enumerate()
    {
        let slba = 1000 * i as u64;
        let data = pattern(seed + i as u64, size);
        q.write(&ns, slba, data.clone(), i % 2 == 0).await.unwrap();
        assert_eq!(read(q, &ns, slba, size).await.freeze(), data, "size {size}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transfer_path_round_trips_without_and_with_digests() {
    let t = TestTarget::start().await;
    let ctrl = t.connect().await.unwrap();
    roundtrip_sizes(&ctrl, 1).await;
    ctrl.shutdown().await.unwrap();

    let opts = t.options().with_digests(true, true);
    let ctrl = Controller::connect(t.addr(), opts).await.unwrap();
    roundtrip_sizes(&ctrl, 100).await;
    ctrl.shutdown().await.unwrap();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c2h_success_flag_when_sq_flow_control_is_disabled() {
    let t = TestTarget::start().await;
    let mut opts = t.options();
    opts.disable_sq_flow_control = true;
    let ctrl = Controller::connect(t.addr(), opts).await.unwrap();
    let ns = ctrl.namespace(1).await.unwrap();
    let q = ctrl.io_queue(0).unwrap();
    let data = pattern(7, 64 * 1024);
    q.write(&ns, 8, data.clone(), false).await.unwrap();
    assert_eq!(read(q, &ns, 8, data.len()).await.freeze(), data);
    ctrl.shutdown().await.unwrap();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_over_mdts_are_refused() {
    // Our host refuses to send more than MDTS, so the I/O queue is a raw connection.
    let t = TestTarget::start().await;
    let mut opts = t.options();
    opts.io_queues = 0;
    let ctrl = Controller::connect(t.addr(), opts.clone()).await.unwrap();
    assert_eq!(ctrl.request_io_queues(1).await.unwrap(), 1);
    let ns = ctrl.namespace(1).await.unwrap();
    let mut raw = RawHost::connect(t.addr()).await.unwrap();
    raw.handshake(IcReq::default()).await.unwrap();
    let cqe = raw
        .connect_queue(&opts, 1, 32, ctrl.cntlid())
        .await
        .unwrap();
    assert_eq!(cqe.status, Status::SUCCESS);
    let big = 512 * 1024u32;
    for (i, opcode) in [IoOpcode::WRITE, IoOpcode::READ].into_iter().enumerate() {
        let mut sqe = ReadWrite {
            opcode,
            cid: 10 + u16::try_from(i).unwrap(),
            nsid: 1,
            slba: 0,
            nlb: u16::try_from(big / 4096 - 1).unwrap(),
            ..ReadWrite::default()
        }
        .to_sqe();
        sqe.dptr = SglDescriptor::transport(big);
        let cqe = raw.command(sqe, Bytes::new()).await.unwrap();
        assert_eq!(cqe.status.code, StatusCode::INVALID_FIELD, "{opcode:?}");
        assert!(cqe.status.dnr);
    }
    // The same queue still serves a command within MDTS.
    let data = pattern(4, 4096);
    let mut sqe = ns.write_command(0, data.clone(), false).unwrap().sqe;
    sqe.cid = 20;
    sqe.dptr = SglDescriptor::in_capsule(0, 4096);
    assert_eq!(
        raw.command(sqe, data).await.unwrap().status,
        Status::SUCCESS
    );
    ctrl.shutdown().await.unwrap();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_write_zeroes_deallocate_and_compare() {
    let t = TestTarget::start().await;
    let ctrl = t.connect().await.unwrap();
    let ns = ctrl.namespace(1).await.unwrap();
    let q = ctrl.io_queue(0).unwrap();
    let zeros = Bytes::from(vec![0u8; 16384]);

    // Never written: zeros.
    assert_eq!(read(q, &ns, 50_000, 16384).await.freeze(), zeros);

    let data = pattern(9, 16384);
    q.write(&ns, 10, data.clone(), false).await.unwrap();
    q.flush(1).await.unwrap();
    q.flush(0xFFFF_FFFF).await.unwrap();
    assert!(q.compare(&ns, 10, data.clone()).await.unwrap());
    assert!(!q.compare(&ns, 10, pattern(10, 16384)).await.unwrap());

    q.write_zeroes(&ns, 10, 2, false, true).await.unwrap();
    let back = read(q, &ns, 10, 16384).await;
    assert_eq!(&back[..8192], &zeros[..8192]);
    assert_eq!(&back[8192..], &data[8192..]);

    q.write_zeroes(&ns, 12, 2, true, false).await.unwrap();
    assert_eq!(read(q, &ns, 10, 16384).await.freeze(), zeros);

    // DSM deallocate over two ranges, one of them a whole 4 MiB cluster (released).
    q.write(&ns, 2048, pattern(11, 4096), false).await.unwrap();
    q.write(&ns, 3000, pattern(12, 4096), false).await.unwrap();
    let ranges = [
        DsmRange {
            context_attributes: 0,
            nlb: 1024,
            slba: 2048,
        },
        DsmRange {
            context_attributes: 0,
            nlb: 1,
            slba: 3000,
        },
    ];
    q.dataset_management(1, &ranges, true).await.unwrap();
    assert_eq!(read(q, &ns, 2048, 4096).await.freeze(), zeros.slice(..4096));
    assert_eq!(read(q, &ns, 3000, 4096).await.freeze(), zeros.slice(..4096));
    // Attributes without Deallocate are hints: nothing changes.
    q.write(&ns, 3000, pattern(13, 4096), false).await.unwrap();
    q.dataset_management(1, &ranges[1..], false).await.unwrap();
    assert_eq!(read(q, &ns, 3000, 4096).await.freeze(), pattern(13, 4096));

    ctrl.shutdown().await.unwrap();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_namespace_and_write_protect_errors() {
    let t = TestTarget::start().await;
    let ctrl = t.connect().await.unwrap();
    let ns = ctrl.namespace(1).await.unwrap();
    let q = ctrl.io_queue(0).unwrap();
    let last = ns.size_bytes() / 4096 - 1;
    q.write(&ns, last, pattern(1, 4096), false).await.unwrap();
    let err = q
        .write(&ns, last, pattern(1, 8192), false)
        .await
        .unwrap_err();
    assert!(err.is_status(StatusCode::LBA_OUT_OF_RANGE), "{err}");
    let err = q.read(&ns, last + 1, 1, BytesMut::new()).await.unwrap_err();
    assert!(err.is_status(StatusCode::LBA_OUT_OF_RANGE), "{err}");
    let ranges = [DsmRange {
        context_attributes: 0,
        nlb: 2,
        slba: last,
    }];
    let err = q.dataset_management(1, &ranges, true).await.unwrap_err();
    assert!(err.is_status(StatusCode::LBA_OUT_OF_RANGE), "{err}");
    let err = q.flush(7).await.unwrap_err();
    assert!(
        err.is_status(StatusCode::INVALID_NAMESPACE_OR_FORMAT),
        "{err}"
    );

    // Read-only lvol: writes, write zeroes and deallocate are refused, reads work.
    t.call("bdev_lvol_set_read_only", json!({"name": "lvs0/vol0"}))
        .await
        .unwrap();
    let err = q.write(&ns, 0, pattern(2, 4096), false).await.unwrap_err();
    assert!(
        err.is_status(StatusCode::NAMESPACE_WRITE_PROTECTED),
        "{err}"
    );
    let err = q.write_zeroes(&ns, 0, 1, false, false).await.unwrap_err();
    assert!(
        err.is_status(StatusCode::NAMESPACE_WRITE_PROTECTED),
        "{err}"
    );
    let err = q
        .dataset_management(1, &ranges[..], true)
        .await
        .unwrap_err();
    assert!(
        err.is_status(StatusCode::NAMESPACE_WRITE_PROTECTED)
            || err.is_status(StatusCode::LBA_OUT_OF_RANGE),
        "{err}"
    );
    assert_eq!(read(q, &ns, last, 4096).await.freeze(), pattern(1, 4096));
    let id = ctrl.identify_namespace(1).await.unwrap();
    assert_eq!(id.nsattr & 1, 1, "NSATTR write protected");
    ctrl.shutdown().await.unwrap();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_queues_with_deep_pipelines_keep_data_apart() {
    let t = TestTarget::start().await;
    let mut opts = t.options();
    opts.io_queues = 4;
    opts.io_queue_size = 64;
    let ctrl = Controller::connect(t.addr(), opts).await.unwrap();
    assert_eq!(ctrl.io_queues().len(), 4);
    let ns = ctrl.namespace(1).await.unwrap();
    let per_queue = 200u64;
    let mut tasks = Vec::new();
    for qi in 0..4usize {
        let q = ctrl.io_queue(qi).unwrap().clone();
        let ns = ns.clone();
        tasks.push(tokio::spawn(async move {
            let writes = (0..per_queue).map(|i| {
                let slba = (qi as u64) * 50_000 + i * 8;
                let size = if i % 5 == 0 { 32 * 1024 } else { 4096 };
                let q = q.clone();
                let ns = ns.clone();
                async move {
                    q.write(&ns, slba, pattern(slba, size), false).await?;
                    Ok::<_, HostError>((slba, size))
                }
            });
            futures::future::try_join_all(writes).await
        }));
    }
    let mut written = Vec::new();
    for t in tasks {
        written.extend(t.await.unwrap().unwrap());
    }
    // Every write has its own 8-block slot: all of them must read back, from any queue.
    assert_eq!(written.len(), 4 * per_queue as usize);
    for (n, (slba, size)) in written.iter().enumerate() {
        let q = ctrl.io_queue(n % 4).unwrap();
        let got = read(q, &ns, *slba, *size).await.freeze();
        assert!(
            got == pattern(*slba, *size),
            "slba {slba} ({size} bytes) differs"
        );
    }
    ctrl.shutdown().await.unwrap();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_pdu_data_alignment_is_honoured() {
    // HPDA 3: data in C2HData starts on a 16-byte boundary; our host checks PDO against it.
    let t = TestTarget::start().await;
    for hpda in [1u8, 3, 31] {
        let mut opts = t.options().with_digests(true, false);
        opts.hpda = lamina_protocol::tcp::Pda(hpda);
        let ctrl = Controller::connect(t.addr(), opts).await.unwrap();
        let ns = ctrl.namespace(1).await.unwrap();
        let q = ctrl.io_queue(0).unwrap();
        let data = pattern(u64::from(hpda), 20_480);
        q.write(&ns, 64, data.clone(), false).await.unwrap();
        assert_eq!(
            read(q, &ns, 64, data.len()).await.freeze(),
            data,
            "hpda {hpda}"
        );
        ctrl.shutdown().await.unwrap();
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_io_queue_disconnects_and_its_qid_can_join_again() {
    let t = TestTarget::start().await;
    let mut opts = t.options();
    opts.io_queues = 2;
    let ctrl = Controller::connect(t.addr(), opts).await.unwrap();
    let ns = ctrl.namespace(1).await.unwrap();
    ctrl.io_queue(1).unwrap().disconnect().await.unwrap();
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        ctrl.io_queue(1).unwrap().closed(),
    )
    .await
    .expect("the target closes a disconnected queue");
    // The controller and its other queue carry on; QID 2 can be connected again.
    ctrl.io_queue(0)
        .unwrap()
        .write(&ns, 0, pattern(1, 4096), false)
        .await
        .unwrap();
    let q2 = ctrl.connect_io_queue(2, 32).await.unwrap();
    assert_eq!(read(&q2, &ns, 0, 4096).await.freeze(), pattern(1, 4096));
    let ctrls = t
        .call(
            "nvmf_subsystem_get_controllers",
            json!({"nqn": lamina_integration::fixtures::DEFAULT_NQN}),
        )
        .await
        .unwrap();
    assert_eq!(ctrls[0]["num_io_qpairs"], 2);
    ctrl.shutdown().await.unwrap();
    t.stop().await;
}

/// Linux sends Dataset Management with a whole 4 KiB page of ranges whatever their count
/// (`blkdiscard`, `mkfs.ext4`): accepted, and every backend that reports DLFEAT "deallocated
/// blocks read zeros" reads zeros there afterwards: a thin lvol on a file, a thick lvol, a RAM
/// bdev, a raw file bdev and the null bdev.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linux_style_discard_reads_back_zeros_on_every_backend() {
    let t = TestTarget::start().await;
    let img = t.data_dir().join("raw.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let nqn = lamina_integration::fixtures::DEFAULT_NQN;
    for (method, params) in [
        (
            "bdev_lvol_create",
            json!({"lvs_name": "lvs0", "lvol_name": "thick", "size_in_mib": 16}),
        ),
        (
            "bdev_malloc_create",
            json!({"name": "ram0", "num_blocks": 16384, "block_size": 4096}),
        ),
        (
            "bdev_aio_create",
            json!({"name": "raw0", "filename": img, "block_size": 4096}),
        ),
        (
            "bdev_null_create",
            json!({"name": "null0", "num_blocks": 16384, "block_size": 4096}),
        ),
    ] {
        t.call(method, params).await.unwrap();
    }
    for (nsid, bdev) in [(2, "lvs0/thick"), (3, "ram0"), (4, "raw0"), (5, "null0")] {
        let p = json!({"nqn": nqn, "namespace": {"bdev_name": bdev, "nsid": nsid}});
        t.call("nvmf_subsystem_add_ns", p).await.unwrap();
    }
    let ctrl = t.connect().await.unwrap();
    let q = ctrl.io_queue(0).unwrap();
    for nsid in 1..=5u32 {
        let ns = ctrl.namespace(nsid).await.unwrap();
        let id = ctrl.identify_namespace(nsid).await.unwrap();
        assert_eq!(
            id.dlfeat & 0b111,
            0b001,
            "ns {nsid}: deallocated blocks read zeros"
        );
        let blocks_per_4k = 4096 / u64::from(ns.block_size);
        // Two ranges (one a whole 4 MiB lvol cluster) in a 4 KiB page, as Linux sends them.
        let (a, b) = (1024 * blocks_per_4k, 3000 * blocks_per_4k);
        q.write(&ns, a, pattern(u64::from(nsid), 4096), false)
            .await
            .unwrap();
        q.write(&ns, b, pattern(u64::from(nsid) + 9, 8192), false)
            .await
            .unwrap();
        let mut page = BytesMut::new();
        for (slba, nlb) in [(a, 1024 * blocks_per_4k), (b, 2 * blocks_per_4k)] {
            DsmRange {
                context_attributes: 0,
                nlb: u32::try_from(nlb).unwrap(),
                slba,
            }
            .encode(&mut page);
        }
        page.resize(4096, 0);
        let sqe = lamina_protocol::nvme::DatasetManagement {
            nsid,
            nr: 1,
            deallocate: true,
            ..Default::default()
        }
        .to_sqe();
        let cmd = lamina_integration::host::Command::with_transfer(
            sqe,
            lamina_integration::host::Transfer::ToController(page.freeze()),
        );
        q.execute(cmd)
            .await
            .unwrap()
            .into_result()
            .unwrap_or_else(|e| panic!("ns {nsid}: DSM with a 4 KiB range page: {e}"));
        let zeros = Bytes::from(vec![0u8; 8192]);
        assert_eq!(
            read(q, &ns, a, 4096).await.freeze(),
            zeros.slice(..4096),
            "ns {nsid}"
        );
        assert_eq!(read(q, &ns, b, 8192).await.freeze(), zeros, "ns {nsid}");
    }
    ctrl.shutdown().await.unwrap();
    t.stop().await;
}
