//! Pending configuration: the entries of the persisted configuration (or of a `--config` file)
//! that could not be applied at start-up, kept in order until they apply or an operator drops
//! them.
//!
//! An entry is one JSON-RPC call of the `save_config` shape (`method` and `params`, in its
//! `subsystem` section), exactly as it was read, with why it last failed. Entries are ordered
//! as a replay orders calls (the `bdev` section first, then `nvmf`, then anything else; within
//! a section, in the order they were met), so retrying them front to back applies what depends
//! on an entry after it. They are part of the configuration: `save_config`, and so
//! `DATA_DIR/lamina.json`, carries them after the live objects of their section, and a restart
//! retries them too.
//!
//! What the registry answers besides the list: whether a name is held by a pending entry
//! ([`super::guard`] refuses conflicting changes with it), the readiness report for `/readyz`,
//! and whether a repeated failure is worth a log line (the same reason is logged again at most
//! every [`REPEAT_LOG_INTERVAL`]).

use std::sync::Weak;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::mgmt::rpc::dispatch::Methods;

/// How often an entry that keeps failing for the same reason is logged again.
pub const REPEAT_LOG_INTERVAL: Duration = Duration::from_mins(10);

/// Most entries named in the `/readyz` body (the RPC lists them all).
const READYZ_ENTRIES: usize = 20;

/// Why a call did not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotApplied {
    /// What went wrong, for people.
    pub reason: String,
    /// Retry only on request (`lamina_retry_pending_config`, a restart), not periodically:
    /// the lvstore on the entry's device did not load, and a periodic open would take the
    /// file's lock from the `lamina lvstore check --device` or `repair` that fixes it.
    pub on_request: bool,
}

impl From<String> for NotApplied {
    fn from(reason: String) -> Self {
        Self {
            reason,
            on_request: false,
        }
    }
}

/// One configuration call that is not applied yet.
#[derive(Debug, Clone)]
pub struct PendingEntry {
    /// Stable while the process runs; names the entry to `lamina_drop_pending_config`.
    pub id: u64,
    /// The `save_config` section it belongs to (`bdev`, `nvmf`, ...).
    pub section: String,
    /// The JSON-RPC method.
    pub method: String,
    /// Its parameters, as read.
    pub params: Value,
    /// Why it last failed.
    pub reason: String,
    /// Retried only on request (see [`NotApplied::on_request`]).
    pub on_request: bool,
    /// Attempts so far, the first one included.
    pub attempts: u64,
    /// When it first failed.
    pub since: SystemTime,
    /// When its failure was last logged.
    logged: Instant,
}

impl PendingEntry {
    /// What the entry creates, for people: `bdev aio0 (/dev/sdb)`, `namespace 2 of NQN`.
    pub fn object(&self) -> String {
        describe(&self.method, &self.params)
    }

    /// The entry as `lamina_get_pending_config` lists it.
    pub fn to_json(&self) -> Value {
        let secs = self.since.elapsed().unwrap_or_default().as_secs();
        let since = self
            .since
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        json!({
            "id": self.id,
            "subsystem": self.section,
            "object": self.object(),
            "method": self.method,
            "params": self.params,
            "reason": self.reason,
            "retry": if self.on_request { "on_request" } else { "automatic" },
            "attempts": self.attempts,
            "pending_since_unix": since,
            "pending_seconds": secs,
        })
    }

    /// The call as `save_config` writes it.
    pub fn call(&self) -> Value {
        json!({"method": self.method, "params": self.params})
    }

    /// Whether `method(params)` is this very call.
    pub fn is_call(&self, method: &str, params: &Value) -> bool {
        self.method == method && same_params(&self.params, params)
    }
}

/// Parameters compare equal when they are, a missing `params` being an empty object.
fn same_params(a: &Value, b: &Value) -> bool {
    let empty = |v: &Value| v.is_null() || v.as_object().is_some_and(serde_json::Map::is_empty);
    a == b || (empty(a) && empty(b))
}

/// The order of sections in a replay: `keyring` (what hosts and listeners name), `sock`
/// (options of the connections the listeners accept), `bdev`, then `nvmf`, then the rest.
pub fn section_rank(section: &str) -> u8 {
    match section {
        "keyring" => 0,
        "sock" => 1,
        "bdev" => 2,
        "nvmf" => 3,
        _ => 4,
    }
}

/// A string parameter at `pointer` (`/name`, `/namespace/bdev_name`), or "".
pub fn param<'a>(params: &'a Value, pointer: &str) -> &'a str {
    params
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// What `method(params)` creates, for log lines, `/readyz` and the CLI.
pub fn describe(method: &str, p: &Value) -> String {
    match method {
        "bdev_aio_create" => format!("bdev {} ({})", param(p, "/name"), param(p, "/filename")),
        "bdev_malloc_create" | "bdev_null_create" => format!("bdev {}", param(p, "/name")),
        "keyring_file_add_key" => format!("key {} ({})", param(p, "/name"), param(p, "/path")),
        "nvmf_ns_add_host" => format!(
            "host {} of namespace {} of {}",
            param(p, "/host"),
            p.get("nsid").and_then(Value::as_u64).unwrap_or(0),
            param(p, "/nqn")
        ),
        "bdev_lvol_create_lvstore" => format!(
            "lvstore {} on bdev {}",
            param(p, "/lvs_name"),
            param(p, "/bdev_name")
        ),
        "bdev_lvol_create" => format!("lvol {}/{}", param(p, "/lvs_name"), param(p, "/lvol_name")),
        "nvmf_create_transport" => format!("transport {}", param(p, "/trtype")),
        "nvmf_create_subsystem" => format!("subsystem {}", param(p, "/nqn")),
        "nvmf_subsystem_add_listener" => format!(
            "listener {}:{} of {}",
            param(p, "/listen_address/traddr"),
            param(p, "/listen_address/trsvcid"),
            param(p, "/nqn")
        ),
        "nvmf_subsystem_add_host" => {
            format!("host {} of {}", param(p, "/host"), param(p, "/nqn"))
        }
        "nvmf_subsystem_add_ns" => {
            let nsid = p
                .pointer("/namespace/nsid")
                .and_then(Value::as_u64)
                .map_or_else(|| "(any NSID)".to_owned(), |n| n.to_string());
            format!(
                "namespace {nsid} of {} (bdev {})",
                param(p, "/nqn"),
                param(p, "/namespace/bdev_name")
            )
        }
        other => other.to_owned(),
    }
}

/// Whether a failure is worth a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logged {
    /// The reason changed, or it was last logged long ago: log it.
    Log,
    /// The same reason again, logged recently: stay quiet (debug only).
    Quiet,
}

/// The pending entries of a target, with what the retry task needs to find them.
#[derive(Debug, Default)]
pub struct PendingConfig {
    entries: Mutex<Vec<PendingEntry>>,
    next_id: AtomicU64,
    /// Wakes the retry task: a change that may let an entry apply, or `retry now`.
    wake: tokio::sync::Notify,
    /// One retry pass at a time; held across the calls of a pass, hence tokio's mutex.
    pass: tokio::sync::Mutex<()>,
    /// The methods a pass calls (weak: the methods hold the target, which holds this).
    methods: std::sync::OnceLock<Weak<Methods>>,
}

impl PendingConfig {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps `method(params)` of `section` as pending because of `why`; returns its id. The
    /// same call already pending is not added twice (its reason is updated).
    pub fn add(&self, section: &str, method: &str, params: Value, why: &NotApplied) -> u64 {
        let mut entries = self.entries.lock();
        if let Some(e) = entries.iter_mut().find(|e| e.is_call(method, &params)) {
            why.reason.clone_into(&mut e.reason);
            e.on_request = why.on_request;
            e.attempts += 1;
            return e.id;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let rank = section_rank(section);
        let at = entries
            .iter()
            .position(|e| section_rank(&e.section) > rank)
            .unwrap_or(entries.len());
        entries.insert(
            at,
            PendingEntry {
                id,
                section: section.to_owned(),
                method: method.to_owned(),
                params,
                reason: why.reason.clone(),
                on_request: why.on_request,
                attempts: 1,
                since: SystemTime::now(),
                logged: Instant::now(),
            },
        );
        id
    }

    /// Every entry, in order.
    pub fn list(&self) -> Vec<PendingEntry> {
        self.entries.lock().clone()
    }

    /// The entry `id`, if it is still pending.
    pub fn get(&self, id: u64) -> Option<PendingEntry> {
        self.entries.lock().iter().find(|e| e.id == id).cloned()
    }

    /// The first entry `f` picks.
    pub fn find(&self, f: impl Fn(&PendingEntry) -> bool) -> Option<PendingEntry> {
        self.entries.lock().iter().find(|e| f(e)).cloned()
    }

    /// Whether `method(params)` is a pending entry's very call.
    pub fn has_call(&self, method: &str, params: &Value) -> bool {
        self.entries
            .lock()
            .iter()
            .any(|e| e.is_call(method, params))
    }

    /// Removes entry `id` (applied, or dropped by an operator) and returns it.
    pub fn remove(&self, id: u64) -> Option<PendingEntry> {
        let mut entries = self.entries.lock();
        let at = entries.iter().position(|e| e.id == id)?;
        Some(entries.remove(at))
    }

    /// Records another failed attempt of `id`; says whether to log it.
    pub fn record_failure(&self, id: u64, why: &NotApplied) -> Logged {
        let mut entries = self.entries.lock();
        let Some(e) = entries.iter_mut().find(|e| e.id == id) else {
            return Logged::Quiet;
        };
        e.attempts += 1;
        e.on_request = why.on_request;
        if e.reason == why.reason && e.logged.elapsed() < REPEAT_LOG_INTERVAL {
            return Logged::Quiet;
        }
        why.reason.clone_into(&mut e.reason);
        e.logged = Instant::now();
        Logged::Log
    }

    /// How many entries are pending.
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.lock().is_empty()
    }

    /// The calls of `section`, in order, as `save_config` writes them.
    pub fn calls(&self, section: &str) -> Vec<Value> {
        self.entries
            .lock()
            .iter()
            .filter(|e| e.section == section)
            .map(PendingEntry::call)
            .collect()
    }

    /// Sections other than Lamina's (`sock`, `bdev`, `nvmf`) that hold pending entries, in
    /// order.
    pub fn other_sections(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in self.entries.lock().iter() {
            if section_rank(&e.section) == section_rank("") && !out.contains(&e.section) {
                out.push(e.section.clone());
            }
        }
        out
    }

    /// Whether a pending entry creates a bdev called `name` (automatic names skip it).
    pub fn holds_bdev_name(&self, name: &str) -> bool {
        self.entries.lock().iter().any(|e| {
            matches!(
                e.method.as_str(),
                "bdev_aio_create" | "bdev_malloc_create" | "bdev_null_create"
            ) && param(&e.params, "/name") == name
        })
    }

    /// The NSIDs pending namespaces of `nqn` ask for (automatic NSIDs skip them).
    pub fn reserved_nsids(&self, nqn: &str) -> Vec<u32> {
        self.entries
            .lock()
            .iter()
            .filter(|e| e.method == "nvmf_subsystem_add_ns" && param(&e.params, "/nqn") == nqn)
            .filter_map(|e| e.params.pointer("/namespace/nsid").and_then(Value::as_u64))
            .filter_map(|n| u32::try_from(n).ok())
            .collect()
    }

    /// What `/readyz` answers while entries are pending (`None`: nothing pending).
    pub fn readiness_report(&self) -> Option<String> {
        use std::fmt::Write;
        let entries = self.entries.lock();
        if entries.is_empty() {
            return None;
        }
        let mut out = format!(
            "not ready: {} configuration entr{} pending (not applied; kept in lamina.json and \
             retried; `lamina config pending` lists them)\n",
            entries.len(),
            if entries.len() == 1 { "y" } else { "ies" }
        );
        for e in entries.iter().take(READYZ_ENTRIES) {
            let when = if e.on_request {
                " [retried on request: `lamina config retry`]"
            } else {
                ""
            };
            let _ = writeln!(out, "#{} {}: {}{when}", e.id, e.object(), e.reason);
        }
        if entries.len() > READYZ_ENTRIES {
            let _ = writeln!(out, "... and {} more", entries.len() - READYZ_ENTRIES);
        }
        Some(out)
    }

    /// Asks the retry task for a pass now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Resolves when [`PendingConfig::wake`] is called.
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Holds off other retry passes while the guard lives.
    pub async fn pass_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.pass.lock().await
    }

    /// Gives the registry the methods a pass calls (once, at start-up).
    pub fn set_methods(&self, methods: Weak<Methods>) {
        let _ = self.methods.set(methods);
    }

    /// The methods a pass calls, while the server runs.
    pub fn methods(&self) -> Option<std::sync::Arc<Methods>> {
        self.methods.get().and_then(Weak::upgrade)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why(reason: &str) -> NotApplied {
        NotApplied::from(reason.to_owned())
    }

    fn aio(name: &str) -> Value {
        json!({"name": name, "filename": format!("/d/{name}.img"), "block_size": 4096})
    }

    #[test]
    fn entries_keep_replay_order_and_are_not_doubled() {
        let p = PendingConfig::new();
        let ns = json!({"nqn": "nqn.x", "namespace": {"nsid": 2, "bdev_name": "u"}});
        let a = p.add("nvmf", "nvmf_subsystem_add_ns", ns.clone(), &why("no lvol"));
        let b = p.add("bdev", "bdev_aio_create", aio("a"), &why("missing"));
        let c = p.add("bdev", "bdev_aio_create", aio("b"), &why("missing"));
        let list = p.list();
        let ids: Vec<u64> = list.iter().map(|e| e.id).collect();
        assert_eq!(
            ids,
            vec![b, c, a],
            "bdev entries go before nvmf ones, in order"
        );
        assert_eq!(
            p.add("bdev", "bdev_aio_create", aio("a"), &why("still missing")),
            b
        );
        assert_eq!(p.len(), 3);
        assert_eq!(p.get(b).unwrap().reason, "still missing");
        assert_eq!(p.calls("bdev").len(), 2);
        assert_eq!(
            p.calls("nvmf"),
            vec![json!({"method": "nvmf_subsystem_add_ns", "params": ns})]
        );
        assert!(p.holds_bdev_name("a") && !p.holds_bdev_name("c"));
        assert_eq!(p.reserved_nsids("nqn.x"), vec![2]);
        assert!(p.other_sections().is_empty());
        assert_eq!(p.remove(b).unwrap().id, b);
        assert!(p.remove(b).is_none());
    }

    #[test]
    fn repeated_failures_are_logged_once() {
        let p = PendingConfig::new();
        let id = p.add("bdev", "bdev_aio_create", aio("a"), &why("ENOENT"));
        assert_eq!(p.record_failure(id, &why("ENOENT")), Logged::Quiet);
        assert_eq!(p.record_failure(id, &why("EACCES")), Logged::Log);
        assert_eq!(p.record_failure(id, &why("EACCES")), Logged::Quiet);
        assert_eq!(p.get(id).unwrap().attempts, 4);
    }

    #[test]
    fn readiness_names_every_entry_and_why() {
        let p = PendingConfig::new();
        assert!(p.readiness_report().is_none());
        let id = p.add(
            "bdev",
            "bdev_aio_create",
            aio("a"),
            &why("/d/a.img: No such file"),
        );
        let r = p.readiness_report().unwrap();
        assert!(
            r.starts_with("not ready: 1 configuration entry pending"),
            "{r}"
        );
        assert!(
            r.contains(&format!("#{id} bdev a (/d/a.img): /d/a.img: No such file")),
            "{r}"
        );
        for i in 0..30 {
            p.add(
                "bdev",
                "bdev_aio_create",
                aio(&format!("x{i}")),
                &why("gone"),
            );
        }
        let r = p.readiness_report().unwrap();
        assert!(r.contains("... and 11 more"), "{r}");
    }

    #[test]
    fn descriptions_name_the_object() {
        let ns = json!({"nqn": "nqn.x", "namespace": {"bdev_name": "lvs0/v"}});
        assert_eq!(
            describe("nvmf_subsystem_add_ns", &ns),
            "namespace (any NSID) of nqn.x (bdev lvs0/v)"
        );
        let l = json!({"nqn": "nqn.x", "listen_address": {"trtype": "TCP", "traddr": "10.0.0.1",
            "trsvcid": "4420"}});
        assert_eq!(
            describe("nvmf_subsystem_add_listener", &l),
            "listener 10.0.0.1:4420 of nqn.x"
        );
        assert_eq!(
            describe("sock_impl_set_options", &Value::Null),
            "sock_impl_set_options"
        );
    }
}
