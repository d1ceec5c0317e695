//! `lamina lvol create|list|delete|resize|rename|snapshot|clone|inflate|decouple|set-read-only`:
//! logical volumes, over the `bdev_lvol_*` methods. An lvol is named as SPDK names it: by its
//! alias `lvstore/name` or by its UUID. Sizes take human units (`10G`, `512M`) and are rounded
//! up to whole MiB (SPDK's `size_in_mib`), then by the server to whole clusters.

use std::collections::HashMap;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::lvstore::{ClearMethod, uuid_text};
use super::progress::call_with_progress;
use super::session::{CliError, ClientOpts, Session, bool_of, finish, items, str_of, u64_of};
use super::table::{Align, Table};
use crate::units::{format_size, parse_size, to_mib_rounded_up};

/// `lamina lvol`.
#[derive(Debug, Clone, Args)]
pub struct LvolArgs {
    #[command(flatten)]
    client: ClientOpts,
    #[command(subcommand)]
    action: LvolAction,
}

/// `lamina lvol create`.
#[derive(Debug, Clone, Args)]
struct CreateArgs {
    /// `lvstore/name`, or just `name` with --lvstore.
    name: String,
    /// Size, e.g. 10G or 512M.
    #[arg(value_parser = parse_size)]
    size: u64,
    /// The lvstore (name or UUID), when NAME has no `lvstore/` prefix.
    #[arg(long, short = 'l')]
    lvstore: Option<String>,
    /// Thin-provisioned: space is allocated on first write.
    #[arg(long)]
    thin: bool,
    /// How its clusters are cleared when released (default unmap).
    #[arg(long, value_enum)]
    clear_method: Option<ClearMethod>,
}

#[derive(Debug, Clone, Subcommand)]
enum LvolAction {
    /// Create an lvol (prints its UUID). Thick by default: its space is reserved and zeroed now.
    Create(CreateArgs),
    /// List lvols with their size, allocation and family.
    List {
        /// Only the lvols of this lvstore (name or UUID).
        #[arg(long, short = 'l')]
        lvstore: Option<String>,
    },
    /// Delete an lvol (refused while it is exported; a snapshot with one clone merges into it).
    Delete {
        /// `lvstore/name` or UUID.
        name: String,
    },
    /// Resize an lvol; hosts attached to it are told.
    Resize {
        /// `lvstore/name` or UUID.
        name: String,
        /// New size, e.g. 20G.
        #[arg(value_parser = parse_size)]
        size: u64,
    },
    /// Rename an lvol within its lvstore.
    Rename {
        /// `lvstore/name` or UUID.
        name: String,
        /// The new name (without the lvstore).
        new_name: String,
    },
    /// Snapshot an lvol (prints the snapshot's UUID); the lvol keeps its UUID and stays exported.
    Snapshot {
        /// `lvstore/name` or UUID of the lvol.
        name: String,
        /// The snapshot's name (in the same lvstore).
        snapshot_name: String,
    },
    /// Clone a snapshot or read-only lvol into a new thin lvol (prints its UUID).
    Clone {
        /// `lvstore/name` or UUID of the snapshot.
        snapshot: String,
        /// The clone's name (in the same lvstore).
        clone_name: String,
    },
    /// Allocate every cluster of a clone, copying from its parents, and cut it loose.
    Inflate {
        /// `lvstore/name` or UUID.
        name: String,
    },
    /// Copy the clusters a clone still reads from its parents, and cut it loose (stays thin).
    Decouple {
        /// `lvstore/name` or UUID.
        name: String,
    },
    /// Make an lvol read-only (so it can be cloned).
    SetReadOnly {
        /// `lvstore/name` or UUID.
        name: String,
    },
}

/// Runs `lamina lvol`.
pub async fn run(args: LvolArgs) -> ExitCode {
    finish(exec(&args).await)
}

async fn exec(args: &LvolArgs) -> Result<(), CliError> {
    let mut s = Session::connect(&args.client).await?;
    match &args.action {
        LvolAction::Create(c) => create(&mut s, c).await?,
        LvolAction::List { lvstore } => list(&mut s, lvstore.as_deref()).await?,
        LvolAction::Delete { name } => {
            let r =
                call_with_progress(&mut s, "bdev_lvol_delete", json!({"name": name}), name).await?;
            s.emit(&r, &format!("Deleted lvol {name}"));
        }
        LvolAction::Resize { name, size } => {
            let mib = to_mib_rounded_up(*size);
            let p = json!({"name": name, "size_in_mib": mib});
            let r = s.call("bdev_lvol_resize", p).await?;
            s.emit(
                &r,
                &format!("Resized lvol {name} to {}", format_size(mib << 20)),
            );
        }
        LvolAction::Rename { name, new_name } => {
            let p = json!({"old_name": name, "new_name": new_name});
            let r = s.call("bdev_lvol_rename", p).await?;
            s.emit(&r, &format!("Renamed lvol {name} to {new_name}"));
        }
        LvolAction::Snapshot {
            name,
            snapshot_name,
        } => {
            let p = json!({"lvol_name": name, "snapshot_name": snapshot_name});
            let r = s.call("bdev_lvol_snapshot", p).await?;
            let text = format!(
                "Created snapshot {snapshot_name} ({}) of {name}",
                uuid_text(&r)
            );
            s.emit(&r, &text);
        }
        LvolAction::Clone {
            snapshot,
            clone_name,
        } => {
            let p = json!({"snapshot_name": snapshot, "clone_name": clone_name});
            let r = s.call("bdev_lvol_clone", p).await?;
            let text = format!(
                "Created clone {clone_name} ({}) of {snapshot}",
                uuid_text(&r)
            );
            s.emit(&r, &text);
        }
        LvolAction::Inflate { name } => {
            let p = json!({"name": name});
            let r = call_with_progress(&mut s, "bdev_lvol_inflate", p, name).await?;
            s.emit(
                &r,
                &format!("Inflated lvol {name}: it no longer depends on a snapshot"),
            );
        }
        LvolAction::Decouple { name } => {
            let p = json!({"name": name});
            let r = call_with_progress(&mut s, "bdev_lvol_decouple_parent", p, name).await?;
            s.emit(&r, &format!("Decoupled lvol {name} from its parent"));
        }
        LvolAction::SetReadOnly { name } => {
            let r = s
                .call("bdev_lvol_set_read_only", json!({"name": name}))
                .await?;
            s.emit(&r, &format!("Lvol {name} is now read-only"));
        }
    }
    Ok(())
}

/// Splits `lvstore/name` or pairs `name` with `--lvstore`.
fn split_name(name: &str, lvstore: Option<&str>) -> Result<(String, String), CliError> {
    match (name.split_once('/'), lvstore) {
        (Some((lvs, n)), None) if !lvs.is_empty() && !n.is_empty() => {
            Ok((lvs.to_owned(), n.to_owned()))
        }
        (None, Some(lvs)) => Ok((lvs.to_owned(), name.to_owned())),
        (Some(_), Some(_)) => Err(CliError::Usage(format!(
            "'{name}' already names its lvstore: drop --lvstore"
        ))),
        _ => Err(CliError::Usage(format!(
            "'{name}': name the lvol as lvstore/name, or give --lvstore"
        ))),
    }
}

async fn create(s: &mut Session, c: &CreateArgs) -> Result<(), CliError> {
    let (lvs, lvol) = split_name(&c.name, c.lvstore.as_deref())?;
    let mib = to_mib_rounded_up(c.size);
    let thin = c.thin;
    let mut p = json!({"lvol_name": lvol, "size_in_mib": mib, "thin_provision": thin});
    let store = super::selector(&lvs);
    for (k, v) in store.as_object().into_iter().flatten() {
        p[k.as_str()] = v.clone();
    }
    if let Some(m) = c.clear_method {
        p["clear_method"] = json!(m.as_str());
    }
    let alias = format!("{lvs}/{lvol}");
    let r = if thin {
        s.call("bdev_lvol_create", p).await?
    } else {
        call_with_progress(s, "bdev_lvol_create", p, &alias).await?
    };
    let kind = if thin { "thin" } else { "thick" };
    let text = format!(
        "Created {kind} lvol {alias} ({}), {}",
        uuid_text(&r),
        format_size(mib << 20)
    );
    s.emit(&r, &text);
    Ok(())
}

async fn list(s: &mut Session, lvstore: Option<&str>) -> Result<(), CliError> {
    let p = match lvstore {
        Some(l) if uuid::Uuid::parse_str(l).is_ok() => json!({"lvs_uuid": l}),
        Some(l) => json!({"lvs_name": l}),
        None => Value::Null,
    };
    let lvols = s.call("bdev_lvol_get_lvols", p).await?;
    if s.opts().json {
        s.emit(&lvols, "");
        return Ok(());
    }
    // Sizes and parents come from bdev_get_bdevs, cluster sizes from the lvstores: an lvol
    // deleted between the calls just shows without them.
    let bdevs = s.call("bdev_get_bdevs", Value::Null).await?;
    let stores = s.call("bdev_lvol_get_lvstores", Value::Null).await?;
    s.emit(&lvols, &render(&lvols, &bdevs, &stores));
    Ok(())
}

fn render(lvols: &Value, bdevs: &Value, stores: &Value) -> String {
    let by_uuid: HashMap<&str, &Value> = items(bdevs)
        .iter()
        .map(|b| (str_of(b, "uuid"), b))
        .collect();
    let cluster: HashMap<&str, u64> = items(stores)
        .iter()
        .map(|l| (str_of(l, "uuid"), u64_of(l, "cluster_size")))
        .collect();
    let mut t = Table::new(&[
        ("ALIAS", Align::Left),
        ("UUID", Align::Left),
        ("SIZE", Align::Right),
        ("ALLOCATED", Align::Right),
        ("TYPE", Align::Left),
        ("PARENT", Align::Left),
    ]);
    for l in items(lvols) {
        let bdev = by_uuid.get(str_of(l, "uuid"));
        let size = bdev.map_or_else(
            || "-".to_owned(),
            |b| format_size(u64_of(b, "num_blocks").saturating_mul(u64_of(b, "block_size"))),
        );
        let lvs_uuid = l.get("lvs").map_or("", |v| str_of(v, "uuid"));
        let allocated = cluster.get(lvs_uuid).map_or_else(
            || "-".to_owned(),
            |c| format_size(u64_of(l, "num_allocated_clusters").saturating_mul(*c)),
        );
        let parent = bdev
            .and_then(|b| b.pointer("/driver_specific/lvol/base_snapshot"))
            .and_then(Value::as_str)
            .unwrap_or("-");
        t.row(vec![
            str_of(l, "alias").to_owned(),
            str_of(l, "uuid").to_owned(),
            size,
            allocated,
            kind(l),
            parent.to_owned(),
        ]);
    }
    if t.is_empty() {
        "No lvols.".to_owned()
    } else {
        t.render()
    }
}

/// `thin`/`thick`, plus `snapshot` or `clone`.
fn kind(l: &Value) -> String {
    let mut k = if bool_of(l, "is_thin_provisioned") {
        "thin".to_owned()
    } else {
        "thick".to_owned()
    };
    if bool_of(l, "is_snapshot") {
        k.push_str(" snapshot");
    } else if bool_of(l, "is_clone") {
        k.push_str(" clone");
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_and_without_lvstore() {
        assert_eq!(
            split_name("lvs0/vol1", None).unwrap(),
            ("lvs0".into(), "vol1".into())
        );
        assert_eq!(
            split_name("vol1", Some("lvs0")).unwrap(),
            ("lvs0".into(), "vol1".into())
        );
        assert!(split_name("vol1", None).is_err());
        assert!(split_name("lvs0/vol1", Some("lvs0")).is_err());
        assert!(split_name("/vol1", None).is_err());
    }

    #[test]
    fn table_joins_lvols_with_their_bdevs() {
        let lvols = json!([{"alias": "lvs0/v", "uuid": "u1", "name": "v",
            "is_thin_provisioned": true, "is_snapshot": false, "is_clone": true,
            "num_allocated_clusters": 2, "lvs": {"name": "lvs0", "uuid": "s1"}}]);
        let bdevs = json!([{"uuid": "u1", "num_blocks": 262_144, "block_size": 4096,
            "driver_specific": {"lvol": {"base_snapshot": "snap"}}}]);
        let stores = json!([{"uuid": "s1", "cluster_size": 4_194_304}]);
        let out = render(&lvols, &bdevs, &stores);
        let line = out.lines().nth(1).unwrap();
        assert!(line.contains("lvs0/v"), "{out}");
        assert!(line.contains("1 GiB"), "{out}");
        assert!(line.contains("8 MiB"), "{out}");
        assert!(line.contains("thin clone"), "{out}");
        assert!(line.ends_with("snap"), "{out}");
        assert_eq!(render(&json!([]), &bdevs, &stores), "No lvols.");
    }
}
