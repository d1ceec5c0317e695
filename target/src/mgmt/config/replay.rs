//! Replaying a configuration in SPDK's `save_config` shape, and applying one entry of it:
//! the start-up restore of `DATA_DIR/lamina.json`, an SPDK JSON `--config` file, and every
//! retry of a pending entry go through [`apply_entry`], so they agree on what "applied" means.
//!
//! An entry is applied when its call succeeds, or when what it creates is already there: a
//! namespace whose NSID already exports its bdev, an lvstore or lvol of that name, or (for
//! calls without such a check) a call answered `-EEXIST`. It is *not* applied when:
//! - the call fails (a missing file or device, a missing lvol, a subsystem that is not there);
//! - `bdev_aio_create` opened the device but the lvstore on it did not load (damaged metadata,
//!   an lvstore of that name or UUID already loaded): the bdev is closed again, so nothing
//!   builds on a device whose volumes are missing and `lamina lvstore check --device` and
//!   `repair` can open it, and the entry stays pending; it is retried on request only
//!   (`lamina config retry` after the repair, or a restart), never behind the repair's back;
//! - the method is not one Lamina has.
//!
//! A replay keeps every entry that is not applied as pending configuration (see
//! [`super::pending`]) with the reason, logged once, and goes on with the rest.

use std::sync::Arc;

use serde_json::{Value, json};

use super::pending::{NotApplied, describe, param};
use crate::mgmt::context::Target;
use crate::mgmt::rpc::dispatch::Methods;
use crate::mgmt::rpc::error::{EEXIST, ENODEV};

/// How an entry was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The call made it.
    Created,
    /// What it creates was already there.
    Existing,
}

/// What a replay did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    /// Calls that succeeded.
    pub ok: usize,
    /// Calls whose object was already there.
    pub existing: usize,
    /// Calls that did not apply and are kept as pending configuration.
    pub pending: usize,
    /// Entries without a method (logged, nothing to keep).
    pub malformed: usize,
}

fn section_name(s: &Value) -> &str {
    s.get("subsystem").and_then(Value::as_str).unwrap_or("")
}

/// The calls of `config` in replay order: the `bdev` section first (so lvstores are examined
/// before namespaces refer to their lvols), then `nvmf`, then anything else.
fn ordered(config: &Value) -> Vec<(&str, &Value)> {
    let mut sections: Vec<&Value> = config
        .get("subsystems")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    sections.sort_by_key(|s| super::pending::section_rank(section_name(s)));
    sections
        .into_iter()
        .flat_map(|s| {
            let calls = s.get("config").and_then(Value::as_array);
            calls
                .into_iter()
                .flatten()
                .map(move |c| (section_name(s), c))
        })
        .collect()
}

/// Applies every call of `config` in order; what does not apply is kept pending (and logged,
/// naming `source`), and the rest still runs, so one missing device does not take every
/// subsystem down with it.
pub async fn replay(t: &Arc<Target>, methods: &Methods, config: &Value, source: &str) -> Replayed {
    let mut done = Replayed::default();
    for (section, call) in ordered(config) {
        let Some(method) = call.get("method").and_then(Value::as_str) else {
            tracing::error!(source, entry = %call, "configuration entry without a method: skipped");
            done.malformed += 1;
            continue;
        };
        let params = call.get("params").cloned().unwrap_or(Value::Null);
        match apply_entry(t, methods, method, &params).await {
            Ok(Outcome::Created) => done.ok += 1,
            Ok(Outcome::Existing) => done.existing += 1,
            Err(why) => {
                keep_pending(t, section, method, params, &why, source);
                done.pending += 1;
            }
        }
    }
    done
}

/// Keeps a call that did not apply as pending configuration, with one log line.
pub fn keep_pending(
    t: &Target,
    section: &str,
    method: &str,
    params: Value,
    why: &NotApplied,
    source: &str,
) -> u64 {
    let entry = describe(method, &params);
    let id = t.pending.add(section, method, params, why);
    tracing::warn!(id, %entry, method, reason = %why.reason, source,
        "configuration entry not applied: kept as pending (in lamina.json, retried, on /readyz)");
    id
}

/// Applies one call: `Ok` once what it creates exists, `Err` with the reason otherwise.
pub async fn apply_entry(
    t: &Arc<Target>,
    methods: &Methods,
    method: &str,
    params: &Value,
) -> Result<Outcome, NotApplied> {
    if !methods.contains(method) {
        return Err(format!("{method} is not a method Lamina has").into());
    }
    // A hand-edited file could ask a pass to run (or drop from) a pass: it would wait for
    // itself.
    if method.ends_with("_pending_config") {
        return Err(format!("{method} is not a configuration entry").into());
    }
    if already_applied(t, method, params) {
        return Ok(Outcome::Existing);
    }
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let answer = methods.handle_value(request).await.unwrap_or(Value::Null);
    let Some(err) = answer.get("error") else {
        return lvstore_loaded(t, method, params).map(|()| Outcome::Created);
    };
    let code = err.get("code").and_then(Value::as_i64);
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("failed without a message");
    if code == Some(EEXIST.into()) && !has_exact_check(method) {
        tracing::debug!(method, error = %err, "configuration entry already there");
        return Ok(Outcome::Existing);
    }
    Err(with_hint(t, method, code, message).into())
}

/// Methods whose "already there" is checked exactly before the call (their `-EEXIST` can
/// mean something else is in the way).
fn has_exact_check(method: &str) -> bool {
    matches!(
        method,
        "nvmf_subsystem_add_ns" | "bdev_lvol_create_lvstore" | "bdev_lvol_create"
    )
}

/// Whether what `method(params)` creates is already there (for the methods with an exact
/// check; the others learn it from `-EEXIST`).
fn already_applied(t: &Target, method: &str, params: &Value) -> bool {
    match method {
        "nvmf_subsystem_add_ns" => namespace_exists(t, params),
        "nvmf_create_transport" => {
            crate::mgmt::rpc::nvmf::transport::transport_unchanged(t, params)
        }
        "bdev_lvol_create_lvstore" => t.lvols.lvstore(param(params, "/lvs_name")).is_ok(),
        "bdev_lvol_create" => {
            let alias = format!(
                "{}/{}",
                param(params, "/lvs_name"),
                param(params, "/lvol_name")
            );
            t.lvols.lvol(&alias).is_ok()
        }
        _ => false,
    }
}

/// Whether an `nvmf_subsystem_add_ns` call is already done: its NSID (or, without one, any
/// namespace of the subsystem) exports its bdev. (Adding it again would answer -EBUSY, the
/// bdev being held by that very namespace.)
pub fn namespace_exists(t: &Target, params: &Value) -> bool {
    let bdev = param(params, "/namespace/bdev_name");
    let name = t
        .lvols
        .lvol(bdev)
        .map_or_else(|_| bdev.to_owned(), |l| l.uuid().to_string());
    let Some(sub) = t.subsystems.get(param(params, "/nqn")) else {
        return false;
    };
    match params.pointer("/namespace/nsid").and_then(Value::as_u64) {
        Some(n) if n != 0 => u32::try_from(n)
            .ok()
            .and_then(|n| sub.namespace(n))
            .is_some_and(|ns| ns.bdev_name() == name),
        _ => sub.namespaces().iter().any(|ns| ns.bdev_name() == name),
    }
}

/// After a successful `bdev_aio_create`: refuses a bdev whose lvstore was found but did not
/// load, closing it again; such an entry is retried on request only.
fn lvstore_loaded(t: &Target, method: &str, params: &Value) -> Result<(), NotApplied> {
    if method != "bdev_aio_create" {
        return Ok(());
    }
    let name = param(params, "/name");
    let Some(why) = t.bdevs.get(name).ok().and_then(|b| b.lvstore_error()) else {
        return Ok(());
    };
    if let Err(e) = t.bdevs.remove(name) {
        // Something claimed it in the meantime: it is in use, so it stays.
        tracing::warn!(bdev = name, error = %e, "bdev with an unloaded lvstore kept: in use");
        return Ok(());
    }
    Err(NotApplied {
        reason: format!(
            "the lvstore on {} did not load ({why}); the bdev stays closed, so `lamina \
             lvstore check --device FILE` and `repair` can open it",
            param(params, "/filename")
        ),
        on_request: true,
    })
}

/// The error message, with what a namespace may be waiting for.
fn with_hint(t: &Target, method: &str, code: Option<i64>, message: &str) -> String {
    if method != "nvmf_subsystem_add_ns" || code != Some(ENODEV.into()) {
        return message.to_owned();
    }
    let waiting: Vec<String> = t
        .pending
        .list()
        .iter()
        .filter(|e| e.section == "bdev")
        .map(super::pending::PendingEntry::object)
        .collect();
    if waiting.is_empty() {
        return message.to_owned();
    }
    format!(
        "{message}; pending base devices that may hold it: {}",
        waiting.join(", ")
    )
}
