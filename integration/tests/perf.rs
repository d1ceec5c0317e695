//! `lamina-perf` end to end against the in-process mock target: the library entry point with
//! `--verify` over in-capsule and R2T sizes, with and without digests, the detection of a
//! corrupting target, and the binary's command line and exit status.

mod support;

use std::process::Command;
use std::time::Duration;

use clap::Parser;
use lamina_integration::perf::{self, PerfArgs, PerfConfig};
use support::mock::{Fault, MOCK_NQN, MockConfig, MockTarget};

fn config(target: &MockTarget, extra: &[&str]) -> PerfConfig {
    let addr = target.addr().to_string();
    let mut args = vec!["lamina-perf", "-a", &addr, "-n", MOCK_NQN, "-t", "0.4"];
    args.extend_from_slice(extra);
    PerfArgs::try_parse_from(args)
        .expect("valid arguments")
        .into_config()
        .expect("valid configuration")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_mixed_random_load_on_two_connections() {
    let target = MockTarget::start(MockConfig::default()).await;
    let cfg = config(
        &target,
        &["-w", "randrw", "-M", "60", "-q", "8", "-c", "2", "--verify"],
    );
    let report = perf::run(cfg).await.unwrap();
    assert!(report.passed(), "{}", report.to_text());
    let v = report.verify.as_ref().unwrap();
    assert!(v.stats.blocks_checked > 100, "{v:?}");
    assert!(v.stats.readbacks > 10, "{v:?}");
    assert_eq!(report.queues.len(), 2);
    assert!(report.total.all.ios > 100);
    assert!(report.total.read.ios > 0 && report.total.write.ios > 0);
    assert!(report.total.all.p50_us > 0.0);
    assert!(report.total.all.max_us >= report.total.all.p99_99_us);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r2t_sized_writes_with_digests() {
    let target = MockTarget::start(MockConfig::default()).await;
    // 64 KiB writes go by R2T (8 KiB in-capsule limit), two H2CData PDUs each.
    let cfg = config(
        &target,
        &[
            "-w", "write", "-o", "64k", "-q", "4", "--digest", "hdr,data", "--verify",
        ],
    );
    let report = perf::run(cfg).await.unwrap();
    assert!(report.passed(), "{}", report.to_text());
    assert!(report.total.write.ios > 10);
    assert!(report.verify.unwrap().stats.readbacks > 10);
    let cfg = config(
        &target,
        &["-w", "read", "-o", "64k", "-q", "4", "--warmup", "0.2"],
    );
    let report = perf::run(cfg).await.unwrap();
    assert!(report.passed());
    assert!(report.total.read.ios > 10);
    assert_eq!(report.total.write.ios, 0);
}

/// spdk_nvme_perf's queue settings: SQ flow control kept (every read then ends with a response
/// capsule after its data) and 128-entry I/O queues.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spdk_perf_queue_settings() {
    let target = MockTarget::start(MockConfig::default()).await;
    let cfg = config(
        &target,
        &[
            "-w",
            "randrw",
            "-q",
            "32",
            "--sq-flow-control",
            "--io-queue-size",
            "128",
            "--verify",
        ],
    );
    assert_eq!(cfg.io_queue_size, 128);
    let report = perf::run(cfg).await.unwrap();
    assert!(report.passed(), "{}", report.to_text());
    assert!(report.total.read.ios > 100 && report.total.write.ios > 100);
    assert!(report.verify.unwrap().stats.blocks_checked > 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_catches_a_corrupting_target() {
    let target = MockTarget::start(MockConfig {
        fault: Fault::CorruptReads,
        ..MockConfig::default()
    })
    .await;
    let cfg = config(&target, &["-w", "randwrite", "-q", "4", "--verify"]);
    let report = perf::run(cfg).await.unwrap();
    assert!(!report.passed());
    let v = report.verify.unwrap();
    assert!(v.stats.mismatches > 0);
    assert!(
        v.first_mismatches[0].contains("differs"),
        "{:?}",
        v.first_mismatches
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn io_errors_fail_the_run() {
    let target = MockTarget::start(MockConfig {
        fault: Fault::TermAfter(50),
        ..MockConfig::default()
    })
    .await;
    let cfg = config(&target, &["-w", "randread", "-q", "4"]);
    let err = perf::run(cfg).await.unwrap_err();
    assert!(err.to_string().contains("terminated"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_prints_a_table_or_json_and_sets_its_exit_status() {
    let target = MockTarget::start(MockConfig::default()).await;
    let addr = target.addr().to_string();
    let bin = env!("CARGO_BIN_EXE_lamina-perf");
    let out = tokio::task::spawn_blocking({
        let addr = addr.clone();
        move || {
            Command::new(bin)
                .args([
                    "-a", &addr, "-n", MOCK_NQN, "-t", "0.3", "-q", "4", "-w", "randrw", "-M", "70",
                ])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("total"), "{text}");
    assert!(text.contains("p99.99"), "{text}");
    assert!(text.contains("  reads"), "{text}");

    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .args([
                "-a",
                &addr,
                "-n",
                MOCK_NQN,
                "-t",
                "0.3",
                "--json",
                "--verify",
                "-w",
                "randwrite",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["total"]["all"]["iops"].as_f64().unwrap() > 0.0);
    assert_eq!(json["verify"]["mismatches"], 0);
    assert_eq!(json["config"]["workload"], "randwrite");

    let bad = Command::new(bin)
        .args(["-a", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    tokio::time::sleep(Duration::from_millis(10)).await;
}
