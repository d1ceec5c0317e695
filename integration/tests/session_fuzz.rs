//! A bounded run of the session-level fuzzer (`lamina_integration::fuzz`) against the real
//! target on its embedded default (a file-backed thin lvol): mutated whole sessions, with a
//! well-behaved host checking between them that the target still serves. Then the lvstore must
//! pass its online check with nothing left reserved, and load again after a restart (the
//! mutation-fuzzing runs that made it unloadable, issue 12 §1 and issue 20 §1).
//! `LAMINA_FUZZ_SECONDS` (default 20) and `LAMINA_FUZZ_SEED` change the run.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use lamina_integration::fixtures::TestTarget;
use lamina_integration::fuzz::{self, Config};
use serde_json::{Value, json};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn settled_check(t: &TestTarget) -> Value {
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let r = t
            .call("bdev_lvol_check_lvstore", json!({"lvs_name": "lvs0"}))
            .await
            .unwrap()[0]
            .clone();
        if r["reserved_clusters"] == 0 || Instant::now() > deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_sessions_leave_the_target_serving_and_the_store_loadable() {
    let t = TestTarget::start().await;
    let cfg = Config {
        target: t.addr(),
        opts: t.options(),
        duration: Duration::from_secs(env("LAMINA_FUZZ_SECONDS", 20)),
        seed: env("LAMINA_FUZZ_SEED", 0x5e55_1011),
        mutate_one_in: 6,
        probe_every: 25,
        pid: None,
    };
    let report = match fuzz::run(&cfg).await {
        Ok(r) => r,
        Err((why, r)) => panic!("{why} ({r:?})"),
    };
    eprintln!("session fuzz: {report:?}");
    assert!(report.sessions > 50 && report.probes > 0, "{report:?}");
    let r = settled_check(&t).await;
    assert_eq!(r["consistent"], true, "{r}");
    assert_eq!(r["reserved_clusters"], 0, "{r}");
    let t = t.restart().await;
    let r = settled_check(&t).await;
    assert_eq!(r["consistent"], true, "after a restart: {r}");
    fuzz::probe(t.addr(), &t.options(), 7).await.unwrap();
    t.stop().await;
}
