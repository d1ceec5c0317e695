//! `lamina keyring add|list|remove`: named keys in files, over `keyring_file_add_key`,
//! `keyring_get_keys` and `keyring_file_remove_key`. A relative path is made absolute against
//! the CLI's working directory first (the server accepts absolute paths only, as SPDK does);
//! the file must belong to the server's user and be unreadable by group and others.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::session::{CliError, ClientOpts, Session, finish, items, str_of, u64_of};
use super::table::{Align, Table};

/// `lamina keyring`.
#[derive(Debug, Clone, Args)]
pub struct KeyringArgs {
    #[command(flatten)]
    client: ClientOpts,
    #[command(subcommand)]
    action: KeyringAction,
}

#[derive(Debug, Clone, Subcommand)]
enum KeyringAction {
    /// Add a key kept in a file (NVMeTLSkey-1:... or DHHC-1:..., mode 0600).
    Add {
        /// The key's name.
        name: String,
        /// The file holding it.
        path: PathBuf,
    },
    /// List keys: names, files and users (never the keys themselves).
    List,
    /// Remove a key (its users keep it until they let go).
    Remove {
        /// The key's name.
        name: String,
    },
}

/// Runs `lamina keyring`.
pub async fn run(args: KeyringArgs) -> ExitCode {
    finish(exec(&args).await)
}

async fn exec(args: &KeyringArgs) -> Result<(), CliError> {
    let mut s = Session::connect(&args.client).await?;
    match &args.action {
        KeyringAction::Add { name, path } => {
            let path = std::path::absolute(path)
                .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
            let r = s
                .call("keyring_file_add_key", json!({"name": name, "path": path}))
                .await?;
            s.emit(&r, &format!("Added key {name} from {}", path.display()));
        }
        KeyringAction::List => {
            let keys = s.call("keyring_get_keys", Value::Null).await?;
            s.emit(&keys, &render(&keys));
        }
        KeyringAction::Remove { name } => {
            let r = s
                .call("keyring_file_remove_key", json!({"name": name}))
                .await?;
            s.emit(&r, &format!("Removed key {name}"));
        }
    }
    Ok(())
}

fn render(keys: &Value) -> String {
    let mut t = Table::new(&[
        ("NAME", Align::Left),
        ("USERS", Align::Right),
        ("FILE", Align::Left),
    ]);
    for k in items(keys) {
        t.row(vec![
            str_of(k, "name").to_owned(),
            // The keyring's own reference is not a user.
            u64_of(k, "refcnt").saturating_sub(1).to_string(),
            str_of(k, "path").to_owned(),
        ]);
    }
    if t.is_empty() {
        "No keys.".to_owned()
    } else {
        t.render()
    }
}
