//! `lamina lvstore check` and `lamina lvstore repair`: the lvstore consistency check, online
//! (over `bdev_lvol_check_lvstore`) or offline on a device no target has open, and the offline
//! repair (see `lamina_lvol::check` and `lvol/FORMAT.md`, "Checking and repairing").
//!
//! Exit codes: 0 consistent (or repaired into a consistent state); 4 the check found problems
//! (or the repair could not fix them); otherwise those of [`super::session`] (1 refused, 2
//! usage, 3 unreachable). A device held by a running target is refused: check it online.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use lamina_lvol::LvolError;
use lamina_lvol::device::{Device, FileDevice, FileOptions};
use serde_json::Value;

use super::session::{CliError, Session, items, str_of, u64_of};
use crate::mgmt::rpc::lvol_check::report_json;

/// Exit status when a check finds problems.
pub const EXIT_INCONSISTENT: u8 = 4;

/// How the checked lvstores came out.
pub fn status_of(reports: &Value) -> ExitCode {
    let all_ok = items(reports)
        .iter()
        .all(|r| r.get("consistent").and_then(Value::as_bool) == Some(true));
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INCONSISTENT)
    }
}

/// The online check of `name` (or of every lvstore).
pub async fn online(s: &mut Session, name: Option<&str>) -> Result<ExitCode, CliError> {
    let p = name.map_or(Value::Null, super::selector);
    let reports = s.call("bdev_lvol_check_lvstore", p).await?;
    s.emit(&reports, &render(&reports));
    Ok(status_of(&reports))
}

fn open_device(path: &Path) -> Result<Device, String> {
    let opts = FileOptions {
        direct_io: false,
        ..FileOptions::default()
    };
    FileDevice::open(path, &opts)
        .map(Device::from)
        .map_err(|e| match e {
            lamina_lvol::DeviceError::InUse => format!(
                "{} is in use (a running target holds it): check it online with \
                 `lamina lvstore check NAME`, or stop the target first",
                path.display()
            ),
            other => format!("cannot open {}: {other}", path.display()),
        })
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(super::rpc::EXIT_RPC_ERROR)
}

/// `lamina lvstore check --device PATH`.
pub async fn offline(path: &Path, json: bool) -> ExitCode {
    let device = match open_device(path) {
        Ok(d) => d,
        Err(m) => return fail(&m),
    };
    match lamina_lvol::check_device(&device).await {
        Ok(r) => {
            let v = Value::Array(vec![report_json(&r)]);
            print_out(&v, json);
            status_of(&v)
        }
        Err(e) => fail(&format!("{}: {e}", path.display())),
    }
}

fn print_out(v: &Value, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    } else {
        println!("{}", render(v));
    }
}

/// Copies the metadata region of `path` to `backup` (mode 0600, refusing to overwrite).
fn save_metadata(path: &Path, backup: &Path, bytes: u64) -> Result<(), String> {
    let mut src = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut dst = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(backup)
        .map_err(|e| format!("backup {}: {e}", backup.display()))?;
    let mut left = bytes;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let n = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        let chunk = buf.get_mut(..n).ok_or("buffer")?;
        src.read_exact(chunk)
            .map_err(|e| format!("read {}: {e}", path.display()))?;
        dst.write_all(chunk)
            .map_err(|e| format!("write {}: {e}", backup.display()))?;
        left -= n as u64;
    }
    dst.sync_all()
        .map_err(|e| format!("sync {}: {e}", backup.display()))
}

/// `lamina lvstore repair --device PATH --backup FILE`.
pub async fn repair(path: &Path, backup: Option<&PathBuf>, json: bool) -> ExitCode {
    let device = match open_device(path) {
        Ok(d) => d,
        Err(m) => return fail(&m),
    };
    match lamina_lvol::check_device(&device).await {
        Ok(r) if r.is_consistent() => {
            println!("{}: consistent, nothing to repair", path.display());
            return ExitCode::SUCCESS;
        }
        Ok(_) => {}
        Err(e) => return fail(&format!("{}: {e}", path.display())),
    }
    if let Some(backup) = backup {
        let saved = match lamina_lvol::metadata_bytes(&device).await {
            Ok(n) => save_metadata(path, backup, n).map(|()| n),
            Err(e) => Err(e.to_string()),
        };
        match saved {
            Ok(n) => eprintln!(
                "saved the metadata region ({n} bytes) to {}; to undo the repair: \
                 dd if={} of={} conv=notrunc",
                backup.display(),
                backup.display(),
                path.display()
            ),
            Err(m) => return fail(&format!("no repair without a backup: {m}")),
        }
    }
    match lamina_lvol::repair_device(device).await {
        Ok(r) => {
            for c in &r.changes {
                eprintln!("repair: {c}");
            }
            let v = Value::Array(vec![report_json(&r.after)]);
            print_out(&v, json);
            status_of(&v)
        }
        Err(e @ LvolError::Corrupt(_)) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_INCONSISTENT)
        }
        Err(e) => fail(&e.to_string()),
    }
}

/// The reports as text: a verdict line per lvstore, then its problems and notes.
fn render(reports: &Value) -> String {
    let mut out = String::new();
    for r in items(reports) {
        let ok = r.get("consistent").and_then(Value::as_bool) == Some(true);
        let _ = writeln!(
            out,
            "{} ({}): {} — {} lvols, {} of {} clusters used, {} free, {} reserved, {} quarantined",
            str_of(r, "name"),
            str_of(r, "uuid"),
            if ok { "consistent" } else { "INCONSISTENT" },
            u64_of(r, "lvols"),
            u64_of(r, "used_clusters"),
            u64_of(r, "total_data_clusters"),
            u64_of(r, "free_clusters"),
            u64_of(r, "reserved_clusters"),
            u64_of(r, "quarantined_clusters"),
        );
        for (key, label) in [("problems", "problem"), ("notes", "note")] {
            for p in r.get(key).and_then(Value::as_array).into_iter().flatten() {
                let _ = writeln!(out, "  {label}: {}", p.as_str().unwrap_or_default());
            }
        }
    }
    if out.is_empty() {
        "No lvstores.".to_owned()
    } else {
        out.trim_end().to_owned()
    }
}
