//! Changes refused while configuration is pending, so that an entry waiting for its device can
//! still apply, as written, when the device comes back.
//!
//! Every JSON-RPC method that changes state passes through [`check`] first (see
//! `crate::mgmt::rpc::reg`). A call is refused with `-EBUSY` and a message naming the pending entry
//! (its id, what it creates and why it waits) when it would:
//! - take a name a pending entry creates: a bdev name or an aio file (`bdev_*_create`), a
//!   subsystem NQN (`nvmf_create_subsystem`), an NSID of a subsystem
//!   (`nvmf_subsystem_add_ns` with that `nsid`; without one, the automatic NSID skips pending
//!   ones), an lvstore or lvol name (`bdev_lvol_create_lvstore`, `bdev_lvol_create`);
//! - delete what a pending entry builds on: the subsystem of a pending listener, host or
//!   namespace (`nvmf_delete_subsystem`), the bdev or lvol a pending namespace or lvstore
//!   names (`bdev_*_delete`, `bdev_lvol_delete`, `bdev_lvol_delete_lvstore`).
//!
//! The call that *is* a pending entry (same method, same parameters) is not a conflict: it is
//! that entry being applied, by the retry task or by an operator. To give up on an entry, an
//! operator drops it on purpose (`lamina_drop_pending_config`, `lamina config drop ID`); the
//! refused change then goes through.

use std::path::Path;

use serde_json::Value;

use super::pending::{PendingEntry, param};
use crate::mgmt::context::Target;
use crate::mgmt::rpc::error::RpcError;

const BDEV_CREATE: [&str; 3] = ["bdev_aio_create", "bdev_malloc_create", "bdev_null_create"];
const BDEV_DELETE: [&str; 3] = ["bdev_aio_delete", "bdev_malloc_delete", "bdev_null_delete"];

/// Refuses `method(params)` when it conflicts with a pending entry.
pub fn check(t: &Target, method: &str, params: &Value) -> Result<(), RpcError> {
    if t.pending.is_empty() {
        return Ok(());
    }
    let entries = t.pending.list();
    if entries.iter().any(|e| e.is_call(method, params)) {
        return Ok(());
    }
    let p = |ptr| param(params, ptr);
    let hit = match method {
        m if BDEV_CREATE.contains(&m) => take_bdev(&entries, p("/name"), p("/filename")),
        m if BDEV_DELETE.contains(&m) => uses_bdev(&entries, &[p("/name")]),
        "bdev_lvol_delete" => {
            let names = lvol_names(t, p("/name"));
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            uses_bdev(&entries, &names)
        }
        "bdev_lvol_delete_lvstore" => uses_lvstore(t, &entries, params),
        "bdev_lvol_create_lvstore" => first(&entries, |e| {
            e.method == "bdev_lvol_create_lvstore"
                && (param(&e.params, "/lvs_name") == p("/lvs_name")
                    || param(&e.params, "/bdev_name") == p("/bdev_name"))
        })
        .map(|e| (e, "takes its lvstore name or bdev")),
        "bdev_lvol_create" => first(&entries, |e| {
            e.method == "bdev_lvol_create"
                && param(&e.params, "/lvs_name") == p("/lvs_name")
                && param(&e.params, "/lvol_name") == p("/lvol_name")
        })
        .map(|e| (e, "takes its lvol name")),
        "nvmf_create_subsystem" => first(&entries, |e| {
            e.method == "nvmf_create_subsystem" && param(&e.params, "/nqn") == p("/nqn")
        })
        .map(|e| (e, "takes its NQN")),
        "nvmf_delete_subsystem" => first(&entries, |e| {
            e.method != "nvmf_create_subsystem" && param(&e.params, "/nqn") == p("/nqn")
        })
        .map(|e| (e, "would delete the subsystem it belongs to")),
        "nvmf_subsystem_add_ns" => take_nsid(&entries, params),
        _ => None,
    };
    match hit {
        None => Ok(()),
        Some((e, what)) => Err(RpcError::busy(format!(
            "refused: this {what} of pending configuration entry #{id} ({object}, waiting \
             because: {reason}); let it apply (restore what it needs; `lamina config retry`) \
             or drop it on purpose with `lamina config drop {id}` (lamina_drop_pending_config)",
            id = e.id,
            object = e.object(),
            reason = e.reason,
        ))),
    }
}

fn first(entries: &[PendingEntry], f: impl Fn(&PendingEntry) -> bool) -> Option<&PendingEntry> {
    entries.iter().find(|e| f(e))
}

/// A new bdev called `name`, or opening `filename`, against pending bdevs.
fn take_bdev<'a>(
    entries: &'a [PendingEntry],
    name: &str,
    filename: &str,
) -> Option<(&'a PendingEntry, &'static str)> {
    entries
        .iter()
        .filter(|e| BDEV_CREATE.contains(&e.method.as_str()))
        .find_map(|e| {
            if !name.is_empty() && param(&e.params, "/name") == name {
                return Some((e, "takes the bdev name"));
            }
            let theirs = param(&e.params, "/filename");
            let same_file = !filename.is_empty()
                && e.method == "bdev_aio_create"
                && Path::new(theirs) == Path::new(filename);
            same_file.then_some((e, "opens the file"))
        })
}

/// Deleting a bdev or lvol known by any of `names` against pending entries built on it.
fn uses_bdev<'a>(
    entries: &'a [PendingEntry],
    names: &[&str],
) -> Option<(&'a PendingEntry, &'static str)> {
    let names: Vec<&str> = names.iter().copied().filter(|n| !n.is_empty()).collect();
    first(entries, |e| {
        let used = match e.method.as_str() {
            "nvmf_subsystem_add_ns" => param(&e.params, "/namespace/bdev_name"),
            "bdev_lvol_create_lvstore" => param(&e.params, "/bdev_name"),
            _ => return false,
        };
        names.contains(&used)
    })
    .map(|e| (e, "would delete what it builds on"))
}

/// Every name the lvol `name` goes by (UUID and alias), or just `name`.
fn lvol_names(t: &Target, name: &str) -> Vec<String> {
    let mut out = vec![name.to_owned()];
    if let Ok(info) = t.lvols.lvol(name).and_then(|l| l.info()) {
        out.push(info.uuid.to_string());
        out.push(info.alias);
    }
    out
}

fn uses_lvstore<'a>(
    t: &Target,
    entries: &'a [PendingEntry],
    params: &Value,
) -> Option<(&'a PendingEntry, &'static str)> {
    let key = [param(params, "/uuid"), param(params, "/lvs_name")]
        .into_iter()
        .find(|k| !k.is_empty())?;
    let store = t.lvols.lvstore(key).ok()?;
    let lvs_name = store.name();
    let in_store = first(entries, |e| {
        e.method == "bdev_lvol_create" && param(&e.params, "/lvs_name") == lvs_name
    });
    if let Some(e) = in_store {
        return Some((e, "would delete the lvstore it is created in"));
    }
    let mut names = Vec::new();
    for info in store.list_lvols() {
        names.push(info.uuid.to_string());
        names.push(info.alias);
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    uses_bdev(entries, &names).map(|(e, _)| (e, "would delete the lvol store it exports from"))
}

/// An explicit NSID against the NSIDs pending namespaces of that subsystem ask for.
fn take_nsid<'a>(
    entries: &'a [PendingEntry],
    params: &Value,
) -> Option<(&'a PendingEntry, &'static str)> {
    let nqn = param(params, "/nqn");
    let nsid = params
        .pointer("/namespace/nsid")
        .and_then(Value::as_u64)
        .filter(|n| *n != 0)?;
    first(entries, |e| {
        e.method == "nvmf_subsystem_add_ns"
            && param(&e.params, "/nqn") == nqn
            && e.params.pointer("/namespace/nsid").and_then(Value::as_u64) == Some(nsid)
    })
    .map(|e| (e, "takes the NSID"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::options::TransportOptions;

    fn target() -> std::sync::Arc<Target> {
        let t = Target::new(TransportOptions::default());
        let why = |r: &str| super::super::pending::NotApplied::from(r.to_owned());
        let aio = json!({"name": "d0", "filename": "/dev/disk/by-id/x", "block_size": 4096});
        t.pending
            .add("bdev", "bdev_aio_create", aio, &why("No such file"));
        let ns = json!({"nqn": "nqn.a", "namespace": {"nsid": 4, "bdev_name": "u-1"}});
        t.pending
            .add("nvmf", "nvmf_subsystem_add_ns", ns, &why("no lvol u-1"));
        let lvs = json!({"bdev_name": "d0", "lvs_name": "lvs7"});
        t.pending
            .add("bdev", "bdev_lvol_create_lvstore", lvs, &why("no bdev d0"));
        t
    }

    fn refused(t: &Target, method: &str, params: Value) -> String {
        match check(t, method, &params) {
            Err(e) => {
                assert_eq!(e.code, crate::mgmt::rpc::error::EBUSY, "{}", e.message);
                e.message
            }
            Ok(()) => panic!("{method} {params} was allowed"),
        }
    }

    #[test]
    fn names_and_parents_of_pending_entries_are_held() {
        let t = target();
        let m = refused(
            &t,
            "bdev_malloc_create",
            json!({"name": "d0", "num_blocks": 8}),
        );
        assert!(m.contains("entry #1 (bdev d0 (/dev/disk/by-id/x)"), "{m}");
        assert!(
            m.contains("No such file") && m.contains("lamina config drop 1"),
            "{m}"
        );
        let m = refused(
            &t,
            "bdev_aio_create",
            json!({"name": "d1", "filename": "/dev/disk/by-id/x/"}),
        );
        assert!(m.contains("opens the file"), "{m}");
        let ns = json!({"nqn": "nqn.a", "namespace": {"nsid": 4, "bdev_name": "m"}});
        refused(&t, "nvmf_subsystem_add_ns", ns);
        refused(&t, "nvmf_delete_subsystem", json!({"nqn": "nqn.a"}));
        refused(&t, "bdev_lvol_delete", json!({"name": "u-1"}));
        refused(&t, "bdev_aio_delete", json!({"name": "d0"}));
        refused(
            &t,
            "bdev_lvol_create_lvstore",
            json!({"bdev_name": "other", "lvs_name": "lvs7"}),
        );
        // Elsewhere, or another NSID, or no NSID at all: allowed.
        for (method, params) in [
            ("bdev_malloc_create", json!({"name": "d2", "num_blocks": 8})),
            ("nvmf_delete_subsystem", json!({"nqn": "nqn.b"})),
            (
                "nvmf_subsystem_add_ns",
                json!({"nqn": "nqn.a", "namespace": {"nsid": 5, "bdev_name": "m"}}),
            ),
            (
                "nvmf_subsystem_add_ns",
                json!({"nqn": "nqn.a", "namespace": {"bdev_name": "m"}}),
            ),
            ("bdev_lvol_delete", json!({"name": "lvs0/other"})),
        ] {
            check(&t, method, &params).unwrap_or_else(|e| panic!("{method}: {}", e.message));
        }
    }

    #[test]
    fn the_pending_call_itself_is_not_a_conflict() {
        let t = target();
        let same = json!({"block_size": 4096, "filename": "/dev/disk/by-id/x", "name": "d0"});
        check(&t, "bdev_aio_create", &same).unwrap();
        let empty = Target::new(TransportOptions::default());
        check(&empty, "nvmf_delete_subsystem", &json!({"nqn": "nqn.a"})).unwrap();
    }
}
