//! The process settings of `lamina serve` (io_uring, connection runtime layout, per-command
//! counters, busy polling, the CPU set) as an operator gives them: flags, their environment
//! variables, the `[runtime]` section of a TOML `--config`, in that order of precedence; a bad
//! value stops the start with a message naming the flag. The real binary, its JSON log and its `/metrics`.
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
        (vec!["--cores", "0x0"], vec![], "--cores"),
        // CPU 1000 exists on no machine this runs on: refused after parsing, still named.
        (
            vec![],
            vec![("LAMINA_CORES", "1000")],
            "--cores 1000: CPU 1000 is not available",
        ),
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

/// The CPU field of `/proc/<pid>[/task/<tid>]/status`.
fn cpus_allowed(status_path: &std::path::Path) -> String {
    std::fs::read_to_string(status_path)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_owned()
}

/// `--cores` restricts the process and sizes its runtime; with per-core connection runtimes,
/// the one that takes a connection is pinned to its CPU.
#[test]
fn cores_restrict_the_process_and_pin_connection_runtimes() {
    let dir = tempfile::tempdir().unwrap();
    let first_cpu = {
        let s = cpus_allowed(std::path::Path::new("/proc/self/status"));
        s.split([',', '-']).next().unwrap().to_owned()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_lamina"))
        .args(["serve", "--listen", "127.0.0.1:0", "--no-default"])
        .args(["--log-format", "json", "--log-level", "info"])
        .args(["--cores", &first_cpu, "--conn-runtime", "per-core"])
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("RUST_LOG")
        .env_remove("LAMINA_CORES")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    // Killed however the test ends.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = Reap(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            if let Ok(v) = serde_json::from_str::<Value>(&line.unwrap()) {
                let _ = tx.send(v);
            }
        }
    });
    let (mut settings, mut listener) = (None, None);
    while settings.is_none() || listener.is_none() {
        let v = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        match v["message"].as_str() {
            Some("process settings") => settings = Some(v),
            Some("NVMe/TCP listener up") => {
                listener = v["addr"].as_str().map(|a| a.parse::<SocketAddr>().unwrap());
            }
            _ => {}
        }
    }
    let settings = settings.unwrap();
    assert_eq!(settings["cores"], first_cpu.as_str(), "{settings}");
    let proc_dir = std::path::PathBuf::from(format!("/proc/{}", child.0.id()));
    assert_eq!(cpus_allowed(&proc_dir.join("status")), first_cpu);
    let names = |dir: &std::path::Path| -> Vec<(String, std::path::PathBuf)> {
        std::fs::read_dir(dir.join("task"))
            .unwrap()
            .filter_map(|t| {
                let t = t.ok()?.path();
                let comm = std::fs::read_to_string(t.join("comm")).ok()?;
                Some((comm.trim().to_owned(), t))
            })
            .collect()
    };
    // Every thread (runtime workers, blocking pool) inherited the set.
    for (name, t) in names(&proc_dir) {
        assert_eq!(cpus_allowed(&t.join("status")), first_cpu, "thread {name}");
    }
    // A connection starts the per-core runtimes.
    let _conn = std::net::TcpStream::connect(listener.unwrap()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let conn_rt = loop {
        if let Some((_, t)) = names(&proc_dir)
            .into_iter()
            .find(|(n, _)| n == "lamina-conn-0")
        {
            break t;
        }
        assert!(Instant::now() < deadline, "no per-core runtime started");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(cpus_allowed(&conn_rt.join("status")), first_cpu);
    assert!(
        names(&proc_dir).iter().all(|(n, _)| n != "lamina-conn-1"),
        "one runtime per CPU of the set"
    );
}
