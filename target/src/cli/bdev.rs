//! `lamina bdev create-file|create-malloc|list|delete`: base block devices, over
//! `bdev_aio_create`, `bdev_malloc_create`, `bdev_get_bdevs` and the matching deletes.
//!
//! `create-file` names a file or block device the *server* opens: a relative path is made
//! absolute against the CLI's working directory first, so it means what the user sees. The
//! file must exist (create a sparse one with `truncate -s 100G FILE`); an lvstore already on it
//! is loaded.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::session::{CliError, ClientOpts, Session, bool_of, finish, items, str_of, u64_of};
use super::table::{Align, Table};
use crate::units::{format_size, parse_size};

/// `lamina bdev`.
#[derive(Debug, Clone, Args)]
pub struct BdevArgs {
    #[command(flatten)]
    client: ClientOpts,
    #[command(subcommand)]
    action: BdevAction,
}

#[derive(Debug, Clone, Subcommand)]
enum BdevAction {
    /// Open a file or block device as a bdev (an lvstore on it is loaded).
    CreateFile {
        /// The bdev's name.
        name: String,
        /// The file or block device.
        path: PathBuf,
        /// Block size in bytes (default: the device's, 512 for a file).
        #[arg(long, value_parser = parse_size)]
        block_size: Option<u64>,
    },
    /// Create a bdev in memory (lost at restart: for tests).
    CreateMalloc {
        /// The bdev's name.
        name: String,
        /// Size, e.g. 1G.
        #[arg(value_parser = parse_size)]
        size: u64,
        /// Block size in bytes.
        #[arg(long, value_parser = parse_size, default_value = "512")]
        block_size: u64,
        /// Take memory as it is written instead of all at creation (a bdev larger than
        /// memory, for tests and benchmarks that never fill it).
        #[arg(long)]
        sparse: bool,
    },
    /// List bdevs: base devices and lvols.
    List,
    /// Delete a base bdev (refused while an lvstore or a namespace uses it).
    Delete {
        /// The bdev's name.
        name: String,
    },
}

/// Runs `lamina bdev`.
pub async fn run(args: BdevArgs) -> ExitCode {
    finish(exec(&args).await)
}

fn block_size(b: u64) -> Result<u32, CliError> {
    u32::try_from(b)
        .ok()
        .filter(|b| b.is_power_of_two() && (512..=65536).contains(b))
        .ok_or_else(|| {
            CliError::Usage(format!(
                "block size {b}: use a power of two from 512 to 65536"
            ))
        })
}

async fn exec(args: &BdevArgs) -> Result<(), CliError> {
    let mut s = Session::connect(&args.client).await?;
    match &args.action {
        BdevAction::CreateFile {
            name,
            path,
            block_size: bs,
        } => {
            let path = std::path::absolute(path)
                .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
            let mut p = json!({"name": name, "filename": path.display().to_string()});
            if let Some(b) = bs {
                p["block_size"] = json!(block_size(*b)?);
            }
            let r = s.call("bdev_aio_create", p).await?;
            s.emit(&r, &format!("Created bdev {name} on {}", path.display()));
        }
        BdevAction::CreateMalloc {
            name,
            size,
            block_size: bs,
            sparse,
        } => {
            let bs = block_size(*bs)?;
            if *size == 0 || size % u64::from(bs) != 0 {
                return Err(CliError::Usage(format!(
                    "size {size} must be a positive multiple of the block size {bs}"
                )));
            }
            let mut p = json!({"name": name, "num_blocks": size / u64::from(bs), "block_size": bs});
            if *sparse {
                p["sparse"] = json!(true);
            }
            let r = s.call("bdev_malloc_create", p).await?;
            s.emit(
                &r,
                &format!("Created bdev {name}, {} in memory", format_size(*size)),
            );
        }
        BdevAction::List => {
            let list = s.call("bdev_get_bdevs", Value::Null).await?;
            s.emit(&list, &render(&list));
        }
        BdevAction::Delete { name } => delete(&mut s, name).await?,
    }
    Ok(())
}

async fn delete(s: &mut Session, name: &str) -> Result<(), CliError> {
    let found = s.call("bdev_get_bdevs", json!({"name": name})).await?;
    let product = items(&found)
        .first()
        .map(|b| str_of(b, "product_name").to_owned())
        .unwrap_or_default();
    let method = match product.as_str() {
        "Malloc disk" => "bdev_malloc_delete",
        "AIO disk" => "bdev_aio_delete",
        "Null disk" => "bdev_null_delete",
        "Logical Volume" => {
            return Err(CliError::Usage(format!(
                "{name} is an lvol: use `lamina lvol delete`"
            )));
        }
        other => {
            return Err(CliError::Usage(format!(
                "{name} is a '{other}' bdev, which this command cannot delete"
            )));
        }
    };
    let r = s.call(method, json!({"name": name})).await?;
    s.emit(&r, &format!("Deleted bdev {name}"));
    Ok(())
}

fn render(list: &Value) -> String {
    let mut t = Table::new(&[
        ("NAME", Align::Left),
        ("TYPE", Align::Left),
        ("SIZE", Align::Right),
        ("BLOCK", Align::Right),
        ("CLAIMED", Align::Left),
        ("FILE", Align::Left),
    ]);
    for b in items(list) {
        // An lvol's bdev name is its UUID; its alias is what people know it by.
        let alias = b
            .get("aliases")
            .and_then(|a| a.get(0))
            .and_then(Value::as_str);
        let file = b
            .pointer("/driver_specific/aio/filename")
            .and_then(Value::as_str)
            .unwrap_or("-");
        let bs = u64_of(b, "block_size");
        t.row(vec![
            alias.unwrap_or(str_of(b, "name")).to_owned(),
            str_of(b, "product_name").to_owned(),
            format_size(u64_of(b, "num_blocks").saturating_mul(bs)),
            bs.to_string(),
            if bool_of(b, "claimed") { "yes" } else { "no" }.to_owned(),
            file.to_owned(),
        ]);
    }
    if t.is_empty() {
        "No bdevs.".to_owned()
    } else {
        t.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_sizes_are_checked() {
        assert_eq!(block_size(4096).unwrap(), 4096);
        assert!(block_size(1000).is_err());
        assert!(block_size(256).is_err());
        assert!(block_size(1 << 40).is_err());
    }

    #[test]
    fn lists_lvols_by_alias() {
        let list = json!([
            {"name": "data0", "aliases": [], "product_name": "AIO disk", "block_size": 4096,
             "num_blocks": 262_144, "claimed": true,
             "driver_specific": {"aio": {"filename": "/d/x.img"}}},
            {"name": "u1", "aliases": ["lvs0/vol0"], "product_name": "Logical Volume",
             "block_size": 4096, "num_blocks": 256, "claimed": false}]);
        let out = render(&list);
        assert!(out.lines().nth(1).unwrap().ends_with("/d/x.img"), "{out}");
        assert!(
            out.lines().nth(2).unwrap().starts_with("lvs0/vol0"),
            "{out}"
        );
    }
}
