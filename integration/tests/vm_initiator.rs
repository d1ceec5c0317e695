//! The real-peer proof of Lamina's host: `lamina-probe` and `lamina-perf` against the Linux
//! kernel's NVMe/TCP target (nvmet-tcp) inside the qemu guest of `vm/` (see
//! `vm/guest/initiator-vs-kernel.sh` for what runs). Ignored by default: it needs qemu and the
//! Debian package cache `vm/build-base.sh` fills, and takes a minute or more under TCG.
//!
//! ```text
//! cargo test -p lamina-integration --test vm_initiator -- --ignored --nocapture
//! ```

use std::path::Path;
use std::process::Command;

#[test]
#[ignore = "boots a qemu guest: needs qemu and Debian packages, takes minutes"]
fn rust_host_against_the_kernel_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new("bash")
        .arg(root.join("vm/run.sh"))
        .args(["--timeout", "900", "--binary"])
        .arg(env!("CARGO_BIN_EXE_lamina-probe"))
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_lamina-perf"))
        .arg("--script")
        .arg(root.join("vm/guest/initiator-vs-kernel.sh"))
        .status()
        .expect("run vm/run.sh");
    assert!(status.success(), "vm/run.sh exited with {status}");
}
