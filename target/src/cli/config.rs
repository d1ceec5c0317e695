//! `lamina config pending|retry|drop`: configuration that could not be applied at start-up (a
//! missing device and what depends on it; see `crate::mgmt::config`), over
//! `lamina_get_pending_config`, `lamina_retry_pending_config` and
//! `lamina_drop_pending_config`.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::session::{CliError, ClientOpts, Session, finish, items, str_of, u64_of};
use super::table::{Align, Table};

/// `lamina config`.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    #[command(flatten)]
    client: ClientOpts,
    #[command(subcommand)]
    action: ConfigAction,
}

#[derive(Debug, Clone, Subcommand)]
enum ConfigAction {
    /// List pending entries: what each creates and why it is not applied.
    Pending,
    /// Retry every pending entry now (they are also retried on their own).
    Retry,
    /// Give up on pending entries on purpose: they leave the configuration for good.
    Drop {
        /// Entry ids, as `lamina config pending` shows them.
        #[arg(required = true)]
        ids: Vec<u64>,
    },
}

/// Runs `lamina config`.
pub async fn run(args: ConfigArgs) -> ExitCode {
    finish(exec(&args).await)
}

async fn exec(args: &ConfigArgs) -> Result<(), CliError> {
    let mut s = Session::connect(&args.client).await?;
    match &args.action {
        ConfigAction::Pending => {
            let list = s.call("lamina_get_pending_config", Value::Null).await?;
            s.emit(&list, &render(&list));
        }
        ConfigAction::Retry => {
            let r = s.call("lamina_retry_pending_config", Value::Null).await?;
            let applied = u64_of(&r, "applied");
            let left = &r["pending"];
            let text = format!("Applied {applied} pending entries.\n{}", render(left));
            s.emit(&r, &text);
        }
        ConfigAction::Drop { ids } => {
            for id in ids {
                let e = s
                    .call("lamina_drop_pending_config", json!({"id": id}))
                    .await?;
                let line = format!("Dropped pending entry #{id}: {}", str_of(&e, "object"));
                s.emit(&e, &line);
            }
        }
    }
    Ok(())
}

fn render(list: &Value) -> String {
    let mut t = Table::new(&[
        ("ID", Align::Right),
        ("WHAT", Align::Left),
        ("TRIES", Align::Right),
        ("FOR", Align::Right),
        ("WHY", Align::Left),
    ]);
    for e in items(list) {
        t.row(vec![
            u64_of(e, "id").to_string(),
            str_of(e, "object").to_owned(),
            u64_of(e, "attempts").to_string(),
            elapsed(u64_of(e, "pending_seconds")),
            str_of(e, "reason").to_owned(),
        ]);
    }
    if t.is_empty() {
        "Nothing pending: the whole configuration is applied.".to_owned()
    } else {
        t.render()
    }
}

fn elapsed(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s => format!("{}h", s / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_what_waits_and_why() {
        let list = json!([{"id": 3, "object": "bdev data0 (/dev/sdb)", "attempts": 12,
            "pending_seconds": 600, "reason": "/dev/sdb: No such file or directory"}]);
        let out = render(&list);
        let row = out.lines().nth(1).unwrap();
        assert!(
            row.trim_start().starts_with("3  bdev data0 (/dev/sdb)"),
            "{out}"
        );
        assert!(row.contains(" 10m "), "{out}");
        assert!(row.ends_with("No such file or directory"), "{out}");
        assert!(render(&json!([])).starts_with("Nothing pending"));
    }
}
