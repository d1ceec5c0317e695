//! Embeds the commit Lamina is built from as `LAMINA_GIT_COMMIT` (for `lamina_build_info`).
//!
//! `LAMINA_GIT_COMMIT` in the build environment wins (container builds whose context has no
//! `.git`); else `git rev-parse --short HEAD` in the source tree; else `unknown`. The script
//! reruns when HEAD moves (the files git updates on commit and checkout), not on every edit.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

/// A commit hash is hex; anything else (a hostile or broken environment) is not embedded.
fn is_commit(s: &str) -> bool {
    (4..=40).contains(&s.len()) && s.chars().all(|c| c.is_ascii_hexdigit())
}

fn main() {
    println!("cargo:rerun-if-env-changed=LAMINA_GIT_COMMIT");
    println!("cargo:rerun-if-changed=build.rs");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    // `--git-path` resolves each file where git keeps it (worktrees keep refs elsewhere).
    let mut files = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    files.extend(git(&dir, &["symbolic-ref", "-q", "HEAD"]));
    for f in &files {
        let Some(p) = git(&dir, &["rev-parse", "--git-path", f]) else {
            continue;
        };
        let p = dir.join(p);
        // Only paths that exist: a missing one would make cargo rerun the script every build.
        if p.exists() {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
    let commit = std::env::var("LAMINA_GIT_COMMIT")
        .ok()
        .filter(|c| is_commit(c))
        .or_else(|| git(&dir, &["rev-parse", "--short", "HEAD"]).filter(|c| is_commit(c)))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=LAMINA_GIT_COMMIT={commit}");
}
