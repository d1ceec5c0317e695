//! The process settings of `lamina serve` (io_uring, connection runtime layout, per-command
//! counters) as an operator gives them: flags, their environment variables, the `[runtime]`
//! section of a TOML `--config`, in that order of precedence; a bad value stops the start with
//! a message naming the flag. The real binary, its JSON log and its `/metrics`.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; a panic is a failure

mod metrics_support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use metrics_support::http_get;
use serde_json::Value;

/// Runs `lamina serve` with `args` and `env`, and a TOML `--config` holding `runtime`; returns
/// the "process settings" log event and what `/metrics` says of `lamina_io_stats_enabled`.
async fn serve(args: &[&str], env: &[(&str, &str)], runtime: &str) -> (Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("lamina.toml");
    std::fs::write(&config, format!("[runtime]\n{runtime}\n")).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lamina"));
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--metrics",
        "127.0.0.1:0",
    ])
    .args(["--log-format", "json", "--log-level", "info"])
    .arg("--data-dir")
    .arg(dir.path().join("data"))
    .arg("--config")
    .arg(&config)
    .args(args)
    .env_remove("RUST_LOG")
    .env_remove("LAMINA_IO_URING")
    .env_remove("LAMINA_CONN_RUNTIME")
    .env_remove("LAMINA_IO_STATS")
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    // The reader keeps draining stderr to the end: a closed pipe would end the process.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(v) = serde_json::from_str::<Value>(&line.unwrap()) else {
                continue;
            };
            let _ = tx.send(v);
        }
    });
    let (settings, metrics) = tokio::task::spawn_blocking(move || {
        let (mut settings, mut metrics) = (None, None);
        while settings.is_none() || metrics.is_none() {
            let v = rx.recv_timeout(Duration::from_secs(30)).unwrap();
            match v["message"].as_str() {
                Some("process settings") => settings = Some(v),
                Some("metrics endpoint up (/metrics, /healthz, /readyz)") => {
                    metrics = v["bound"]
                        .as_str()
                        .map(|a| a.parse::<SocketAddr>().unwrap());
                }
                _ => {}
            }
        }
        (settings.unwrap(), metrics.unwrap())
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(metrics, "/readyz").await.0 != 200 {
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, body) = http_get(metrics, "/metrics").await;
    let enabled = body
        .lines()
        .find(|l| l.starts_with("lamina_io_stats_enabled "))
        .unwrap()
        .to_owned();
    let _ = child.kill();
    let _ = child.wait();
    (settings, enabled)
}

#[tokio::test]
async fn the_file_gives_what_flags_and_environment_leave_unsaid() {
    let (s, enabled) = serve(
        &[],
        &[],
        "io_uring = false\nconn_runtime = \"per-core\"\nio_stats = false",
    )
    .await;
    assert_eq!(s["io_uring"], false, "{s}");
    assert_eq!(s["conn_runtime"], "PerCore", "{s}");
    assert_eq!(s["io_stats"], false, "{s}");
    assert_eq!(enabled, "lamina_io_stats_enabled 0");
}

#[tokio::test]
async fn flags_and_environment_beat_the_file() {
    let (s, enabled) = serve(
        &["--io-uring", "on"],
        &[("LAMINA_IO_STATS", "on"), ("LAMINA_CONN_RUNTIME", "shared")],
        "io_uring = false\nconn_runtime = \"per-core\"\nio_stats = false",
    )
    .await;
    assert_eq!(s["io_uring"], true, "{s}");
    assert_eq!(s["conn_runtime"], "Shared", "{s}");
    assert_eq!(s["io_stats"], true, "{s}");
    assert_eq!(enabled, "lamina_io_stats_enabled 1");
    let (s, enabled) = serve(&[], &[("LAMINA_IO_STATS", "off")], "").await;
    assert_eq!(
        (s["io_uring"].clone(), s["io_stats"].clone()),
        (true.into(), false.into())
    );
    assert_eq!(enabled, "lamina_io_stats_enabled 0");
}

#[test]
fn a_bad_value_stops_the_start_naming_the_flag() {
    for (args, env, named) in [
        (vec!["--io-stats", "maybe"], vec![], "--io-stats"),
        (
            vec![],
            vec![("LAMINA_CONN_RUNTIME", "per-socket")],
            "--conn-runtime",
        ),
        (vec![], vec![("LAMINA_IO_URING", "sometimes")], "--io-uring"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lamina"));
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(dir.path())
            .args(&args);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(named), "{stderr}");
    }
}

#[test]
fn an_unknown_runtime_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("lamina.toml");
    std::fs::write(&config, "[runtime]\nio_urign = false\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lamina"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("io_urign"), "{stderr}");
}
