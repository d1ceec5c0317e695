//! Interop: SPDK's own RPC client (`spdk-rpc` from PyPI package `spdk`, installed by
//! `integration/clients/spdk-rpc-env.sh`) sees configuration Lamina keeps pending in
//! `save_config` (which it assembles from `framework_get_subsystems` and
//! `framework_get_config`), and `bdev_get_bdevs` does not list the pending bdev.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; a panic is a failure

mod support;

use std::path::PathBuf;
use std::process::Command;

use lamina_target::server;
use support::client;
use support::pending::{Dirs, NQN, configure, pending, start};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The spdk-rpc executable: the shared script creates its environment once.
fn spdk_rpc() -> PathBuf {
    let script = repo().join("integration/clients/spdk-rpc-env.sh");
    let out = Command::new("bash").arg(&script).output().unwrap();
    assert!(
        out.status.success(),
        "{} failed (python3-venv and PyPI are needed): {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spdk_rpc_save_config_carries_pending_entries() {
    let spdk_rpc = tokio::task::spawn_blocking(spdk_rpc).await.unwrap();
    let d = Dirs::new();
    let r = start(&d.data, &d.cfg).await;
    let mut c = client(&r.rpc_socket).await;
    configure(&mut c, &d.image).await;
    drop(c);
    server::shutdown(&r).await;
    std::fs::remove_file(&d.image).unwrap();
    let r = start(&d.data, &d.cfg).await;
    let mut c = client(&r.rpc_socket).await;
    assert_eq!(pending(&mut c).await.len(), 3);
    let (socket, script) = (
        r.rpc_socket.clone(),
        repo().join("integration/clients/spdk_rpc_pending.py"),
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .arg(&spdk_rpc)
            .arg(&socket)
            .args(["--bdev", "base0"])
            .args(["--namespace", &format!("{NQN}:1")])
            .args(["--namespace", &format!("{NQN}:2")])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprint!("{stdout}");
    assert_eq!(stdout.matches("ok: ").count(), 4, "{stdout}");
    drop(c);
    server::shutdown(&r).await;
}
