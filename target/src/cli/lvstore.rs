//! `lamina lvstore create|list|delete|rename|grow|check|repair`: lvol stores, over the
//! `bdev_lvol_*` lvstore methods. An lvstore is named by its name or its UUID. `check` and
//! `repair` are in [`super::lvstore_check`].

use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use super::session::{CliError, ClientOpts, Session, finish, items, str_of, u64_of};
use super::table::{Align, Table};
use crate::units::{format_size, parse_size};

/// `lamina lvstore`.
#[derive(Debug, Clone, Args)]
pub struct LvstoreArgs {
    #[command(flatten)]
    client: ClientOpts,
    #[command(subcommand)]
    action: LvstoreAction,
}

/// How released clusters are cleared (SPDK's clear methods).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum ClearMethod {
    /// Leave the data in place.
    None,
    /// Deallocate (discard, punch holes in a file).
    Unmap,
    /// Write zeros.
    WriteZeroes,
}

impl ClearMethod {
    /// SPDK's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Unmap => "unmap",
            Self::WriteZeroes => "write_zeroes",
        }
    }
}

#[derive(Debug, Clone, Subcommand)]
enum LvstoreAction {
    /// Create an lvstore on a base bdev (prints its UUID).
    Create {
        /// The base bdev, e.g. one made with `lamina bdev create-file`.
        bdev: String,
        /// The new lvstore's name.
        name: String,
        /// Cluster size (allocation unit), e.g. 4M (default 4 MiB).
        #[arg(long, value_parser = parse_size)]
        cluster_size: Option<u64>,
        /// How the data region is cleared now (default unmap).
        #[arg(long, value_enum)]
        clear_method: Option<ClearMethod>,
    },
    /// List lvstores with their capacity.
    List {
        /// Only this lvstore (name or UUID).
        name: Option<String>,
    },
    /// Delete an lvstore and everything in it (refused while an lvol is exported).
    Delete {
        /// Name or UUID.
        name: String,
    },
    /// Rename an lvstore (its lvols' aliases change with it).
    Rename {
        /// Current name.
        old_name: String,
        /// New name.
        new_name: String,
    },
    /// Take in the space of a base device that grew (e.g. a file extended with truncate).
    Grow {
        /// Name or UUID.
        name: String,
    },
    /// Check an lvstore's metadata: online (of a running target), or offline with --device.
    /// Exit status 4 when problems are found.
    Check {
        /// Name or UUID (online; default: every lvstore).
        name: Option<String>,
        /// Check the lvstore on this file or block device instead (no target may hold it).
        #[arg(long, value_name = "PATH", conflicts_with = "name")]
        device: Option<std::path::PathBuf>,
    },
    /// Repair the lvstore on a device that no target holds (see lvol/FORMAT.md).
    Repair {
        /// The file or block device.
        #[arg(long, value_name = "PATH")]
        device: std::path::PathBuf,
        /// Save the metadata region here first (a new file, mode 0600).
        #[arg(long, value_name = "FILE", required_unless_present = "no_backup")]
        backup: Option<std::path::PathBuf>,
        /// Repair without saving the metadata region first.
        #[arg(long)]
        no_backup: bool,
    },
}

/// Runs `lamina lvstore`.
pub async fn run(args: LvstoreArgs) -> ExitCode {
    use super::lvstore_check as check;
    match &args.action {
        LvstoreAction::Check {
            device: Some(path), ..
        } => check::offline(path, args.client.json).await,
        LvstoreAction::Repair { device, backup, .. } => {
            check::repair(device, backup.as_ref(), args.client.json).await
        }
        LvstoreAction::Check { name, .. } => {
            let online = async {
                let mut s = Session::connect(&args.client).await?;
                check::online(&mut s, name.as_deref()).await
            };
            match online.await {
                Ok(code) => code,
                Err(e) => finish(Err(e)),
            }
        }
        _ => finish(exec(&args).await),
    }
}

async fn exec(args: &LvstoreArgs) -> Result<(), CliError> {
    let mut s = Session::connect(&args.client).await?;
    match &args.action {
        LvstoreAction::Create {
            bdev,
            name,
            cluster_size,
            clear_method,
        } => {
            let mut p = json!({"bdev_name": bdev, "lvs_name": name});
            if let Some(c) = cluster_size {
                p["cluster_sz"] = json!(c);
            }
            if let Some(m) = clear_method {
                p["clear_method"] = json!(m.as_str());
            }
            let uuid = s.call("bdev_lvol_create_lvstore", p).await?;
            let text = format!("Created lvstore {name} ({}) on {bdev}", uuid_text(&uuid));
            s.emit(&uuid, &text);
        }
        LvstoreAction::List { name } => {
            let p = name.as_deref().map_or(Value::Null, super::selector);
            let list = s.call("bdev_lvol_get_lvstores", p).await?;
            s.emit(&list, &render(&list));
        }
        LvstoreAction::Delete { name } => {
            let r = s
                .call("bdev_lvol_delete_lvstore", super::selector(name))
                .await?;
            s.emit(&r, &format!("Deleted lvstore {name}"));
        }
        LvstoreAction::Rename { old_name, new_name } => {
            let p = json!({"old_name": old_name, "new_name": new_name});
            let r = s.call("bdev_lvol_rename_lvstore", p).await?;
            s.emit(&r, &format!("Renamed lvstore {old_name} to {new_name}"));
        }
        LvstoreAction::Grow { name } => grow(&mut s, name).await?,
        LvstoreAction::Check { .. } | LvstoreAction::Repair { .. } => {}
    }
    Ok(())
}

async fn grow(s: &mut Session, name: &str) -> Result<(), CliError> {
    let r = s
        .call("bdev_lvol_grow_lvstore", super::selector(name))
        .await?;
    let now = s
        .call("bdev_lvol_get_lvstores", super::selector(name))
        .await?;
    let size = items(&now).first().map(|l| {
        format_size(u64_of(l, "total_data_clusters").saturating_mul(u64_of(l, "cluster_size")))
    });
    let text = match size {
        Some(size) => format!("Lvstore {name} now holds {size} of data clusters"),
        None => format!("Grew lvstore {name}"),
    };
    s.emit(&r, &text);
    Ok(())
}

/// A JSON string result as text.
pub fn uuid_text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

fn render(list: &Value) -> String {
    let mut t = Table::new(&[
        ("NAME", Align::Left),
        ("UUID", Align::Left),
        ("BASE BDEV", Align::Left),
        ("CLUSTER", Align::Right),
        ("SIZE", Align::Right),
        ("FREE", Align::Right),
        ("USED", Align::Right),
    ]);
    for l in items(list) {
        let cluster = u64_of(l, "cluster_size");
        let total = u64_of(l, "total_data_clusters");
        let free = u64_of(l, "free_clusters");
        let used = total
            .saturating_sub(free)
            .saturating_mul(100)
            .checked_div(total)
            .unwrap_or(0);
        t.row(vec![
            str_of(l, "name").to_owned(),
            str_of(l, "uuid").to_owned(),
            str_of(l, "base_bdev").to_owned(),
            format_size(cluster),
            format_size(total.saturating_mul(cluster)),
            format_size(free.saturating_mul(cluster)),
            format!("{used}%"),
        ]);
    }
    if t.is_empty() {
        "No lvstores.".to_owned()
    } else {
        t.render()
    }
}
