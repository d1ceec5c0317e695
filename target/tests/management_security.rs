//! The management plane against other local users (issue 12 §4, issue 20 §2): the files the
//! target creates are private to its user; RPC clients of another user are refused on the
//! Unix socket (even if its mode were widened) and on the loopback TCP listener; file paths
//! given to RPCs are confined to the data directory and `--allow-path`; a host that loses
//! access (`allow_any_host` off, `remove_host`) loses its controllers.
//!
//! The other user is `nobody`, reached with `setpriv`; those cases are skipped, and say so,
//! when the tests do not run as root.

#![allow(clippy::unwrap_used)] // test helpers; a panic is a failure

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use lamina_integration::host::{ConnectOptions, Controller};
use lamina_target::mgmt::rpc::error::EPERM;
use lamina_target::server;
use serde_json::json;
use support::{args, client, ok};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Runs `script` with bash as `nobody`; its stdout.
fn as_nobody(script: &str) -> String {
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "bash",
            "-c",
            script,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_private_and_other_users_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = support::free_port();
    let mut a = args(&data, None);
    a.rpc_listen = Some(format!("127.0.0.1:{port}").parse().unwrap());
    let running = server::start(&a).await.unwrap();
    assert_eq!(mode(&data), 0o700, "the data directory");
    assert_eq!(
        mode(&data.join("lvs0.img")),
        0o600,
        "the default lvstore image"
    );
    assert_eq!(
        mode(&data.join("lamina.json")),
        0o600,
        "the persisted configuration"
    );
    assert_eq!(mode(&running.rpc_socket), 0o600, "the RPC socket");
    if !is_root() {
        eprintln!("skipped: the other-user cases need root (setpriv)");
        server::shutdown(&running).await;
        return;
    }
    // TCP: nobody reaches the port but gets one error naming its uid.
    let out = as_nobody(&format!(
        "exec 3<>/dev/tcp/127.0.0.1/{port}; timeout 5 cat <&3"
    ));
    assert!(out.contains("uid 65534 may not use"), "{out}");
    assert!(!out.contains("\"result\""), "{out}");
    // Unix: even with the socket opened to everyone, the peer's credentials decide.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&running.rpc_socket, std::fs::Permissions::from_mode(0o777)).unwrap();
    let sock = running.rpc_socket.display().to_string();
    // The refusal comes at once: read it without sending (a send could meet the close).
    let out = as_nobody(&format!(
        "/usr/bin/python3 -c 'import socket; s=socket.socket(socket.AF_UNIX); \
         s.connect(\"{sock}\"); print(s.recv(4096))'"
    ));
    assert!(out.contains("uid 65534 may not use"), "{out}");
    // The target's own user is served on both.
    let mut c = client(&running.rpc_socket).await;
    ok(&mut c, "bdev_get_bdevs", json!({})).await;
    server::shutdown(&running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_file_paths_are_confined() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut a = args(&data, Some(support::empty_config(dir.path())));
    a.allow_path = Vec::new();
    let running = server::start(&a).await.unwrap();
    let mut c = client(&running.rpc_socket).await;
    let p = json!({"name": "shadow", "filename": "/etc/shadow"});
    let msg = support::err(&mut c, "bdev_aio_create", p, EPERM).await;
    assert!(msg.contains("--allow-path"), "{msg}");
    // A link inside the data directory leads nowhere else.
    std::os::unix::fs::symlink("/etc/shadow", data.join("innocent.img")).unwrap();
    let p = json!({"name": "link", "filename": data.join("innocent.img")});
    support::err(&mut c, "bdev_aio_create", p, EPERM).await;
    let outside = dir.path().join("outside.img");
    std::fs::File::create(&outside)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let p = json!({"name": "out", "filename": outside});
    support::err(&mut c, "bdev_aio_create", p, EPERM).await;
    let inside = data.join("inside.img");
    std::fs::File::create(&inside)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    ok(
        &mut c,
        "bdev_aio_create",
        json!({"name": "in", "filename": inside}),
    )
    .await;
    server::shutdown(&running).await;
    // --allow-path widens it.
    let mut a = args(&data, Some(support::empty_config(dir.path())));
    a.allow_path = vec![outside.clone()];
    let running = server::start(&a).await.unwrap();
    let mut c = client(&running.rpc_socket).await;
    ok(
        &mut c,
        "bdev_aio_create",
        json!({"name": "out", "filename": outside}),
    )
    .await;
    server::shutdown(&running).await;
}

async fn gone_within(ctrl: &Controller, limit: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if ctrl.admin().is_closed() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_loses_access_loses_its_controllers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let running = server::start(&args(&data, None)).await.unwrap();
    let addr = running.ports[0];
    let nqn = lamina_target::server::DEFAULT_NQN;
    let mut c = client(&running.rpc_socket).await;
    let mut opts = ConnectOptions::new(nqn).unwrap();
    let listed = opts.hostnqn.as_str().to_owned();
    let allowed = Controller::connect(addr, opts.clone()).await.unwrap();
    opts.hostnqn = lamina_protocol::nvme::Nqn::new(
        "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-00000000dead",
    )
    .unwrap();
    // Another host: its own Host ID too (one host ID holds one controller per listener).
    opts.hostid = [0xde; 16];
    let other = Controller::connect(addr, opts).await.unwrap();
    ok(
        &mut c,
        "nvmf_subsystem_add_host",
        json!({"nqn": nqn, "host": listed}),
    )
    .await;
    ok(
        &mut c,
        "nvmf_subsystem_allow_any_host",
        json!({"nqn": nqn, "allow_any_host": false}),
    )
    .await;
    assert!(
        gone_within(&other, Duration::from_secs(5)).await,
        "a host off the allow-list kept its controller"
    );
    assert!(
        !allowed.admin().is_closed(),
        "the listed host keeps its controller"
    );
    let ns = allowed.namespace(1).await.unwrap();
    allowed
        .io_queue(0)
        .unwrap()
        .write(&ns, 0, bytes::Bytes::from(vec![1u8; 4096]), false)
        .await
        .unwrap();
    ok(
        &mut c,
        "nvmf_subsystem_remove_host",
        json!({"nqn": nqn, "host": listed}),
    )
    .await;
    assert!(gone_within(&allowed, Duration::from_secs(5)).await);
    server::shutdown(&running).await;
}
