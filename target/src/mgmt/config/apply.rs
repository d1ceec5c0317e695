//! Applying a declarative file (see [`super::declarative`] for the format and the rules):
//! each entry becomes the JSON-RPC calls an operator would make, after checking what already
//! exists, so an entry that is there is counted as existing and left alone. A call that does
//! not apply (a missing device, or an lvstore or lvol on it) is kept as pending configuration
//! and retried like the persisted state's (see `super::pending`); an entry with an impossible
//! value fails with a log line (the file is read again at the next start).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};

use super::declarative::{
    BdevEntry, BdevType, KeyEntry, LaminaConfig, LvolEntry, LvstoreEntry, NamespaceEntry, Size,
    SubsystemEntry, TransportSection,
};
use super::pending::{NotApplied, param};
use super::replay::{Outcome, apply_entry, keep_pending};
use crate::mgmt::context::Target;
use crate::mgmt::rpc::dispatch::Methods;
use crate::mgmt::rpc::nvmf::ListenAddress;
use crate::options::TransportOptions;
use crate::plane::subsystem::Subsystem;

/// What applying a file did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Objects created (or settings applied).
    pub created: usize,
    /// Objects that already existed and were left alone.
    pub existing: usize,
    /// Calls kept as pending configuration (each logged).
    pub pending: usize,
    /// Entries that failed for good (each logged).
    pub failed: usize,
}

/// Why an entry was not applied.
#[derive(Debug)]
struct Failed {
    reason: String,
    /// The pending entry keeping its call, if it has one.
    pending: Option<u64>,
}

impl From<String> for Failed {
    fn from(reason: String) -> Self {
        Self {
            reason,
            pending: None,
        }
    }
}

impl Applied {
    fn record(&mut self, what: &str, outcome: Result<bool, Failed>) {
        match outcome {
            Ok(true) => self.created += 1,
            Ok(false) => self.existing += 1,
            Err(Failed {
                pending: Some(_), ..
            }) => self.pending += 1,
            Err(Failed { reason, .. }) => {
                tracing::error!(entry = what, error = %reason, "configuration entry failed");
                self.failed += 1;
            }
        }
    }
}

/// The `save_config` section a method's calls belong to.
fn section_of(method: &str) -> &'static str {
    if method.starts_with("nvmf_") {
        "nvmf"
    } else if method.starts_with("keyring_") {
        "keyring"
    } else {
        "bdev"
    }
}

/// Makes one call; one that does not apply is kept pending. `Ok(false)`: already there.
async fn call(
    t: &Arc<Target>,
    methods: &Methods,
    method: &str,
    params: Value,
) -> Result<bool, Failed> {
    match apply_entry(t, methods, method, &params).await {
        Ok(outcome) => Ok(outcome == Outcome::Created),
        Err(why) => Err(pend(t, method, params, why)),
    }
}

/// An object the persisted configuration already keeps pending (with other parameters than
/// the file's, such as the UUID a live bdev was saved with) is not asked for twice: it counts
/// with the pending entries.
fn already_pending(t: &Target, method: &str, key: &[(&str, &str)]) -> Result<(), Failed> {
    let found = t
        .pending
        .find(|e| e.method == method && key.iter().all(|(ptr, v)| param(&e.params, ptr) == *v));
    match found {
        None => Ok(()),
        Some(e) => Err(Failed {
            reason: format!("already pending as entry #{}: {}", e.id, e.reason),
            pending: Some(e.id),
        }),
    }
}

/// Keeps `method(params)` as pending because of `reason`.
fn pend(t: &Target, method: &str, params: Value, why: NotApplied) -> Failed {
    let id = keep_pending(t, section_of(method), method, params, &why, "--config");
    Failed {
        reason: why.reason,
        pending: Some(id),
    }
}

/// Applies `cfg`: creates what is missing, leaves what exists.
pub async fn apply(t: &Arc<Target>, methods: &Methods, cfg: &LaminaConfig) -> Applied {
    let mut done = Applied::default();
    if let Some(tr) = &cfg.transport {
        done.record("[transport]", apply_transport(t, methods, tr).await);
    }
    for k in &cfg.keys {
        let what = format!("[[key]] {}", k.name);
        done.record(&what, apply_key(t, methods, k).await);
    }
    for b in &cfg.bdevs {
        let what = format!("[[bdev]] {}", b.name);
        done.record(&what, apply_bdev(t, methods, b).await);
    }
    for l in &cfg.lvstores {
        let what = format!("[[lvstore]] {}", l.name);
        done.record(&what, apply_lvstore(t, methods, l).await);
    }
    for l in &cfg.lvols {
        let what = format!("[[lvol]] {}/{}", l.lvstore, l.name);
        done.record(&what, apply_lvol(t, methods, l).await);
    }
    for s in &cfg.subsystems {
        apply_subsystem(t, methods, s, &mut done).await;
    }
    done
}

fn size_u32(s: Option<Size>, what: &str) -> Result<Option<u32>, String> {
    s.map(|s| u32::try_from(s.0).map_err(|_| format!("{what} is too large")))
        .transpose()
}

/// Creates the transport, or applies the file's options to the existing one.
async fn apply_transport(
    t: &Arc<Target>,
    methods: &Methods,
    tr: &TransportSection,
) -> Result<bool, Failed> {
    let base = if t
        .transport_created
        .load(std::sync::atomic::Ordering::Acquire)
    {
        t.options()
    } else {
        TransportOptions::default()
    };
    let o = TransportOptions {
        max_queue_depth: tr.max_queue_depth.unwrap_or(base.max_queue_depth),
        max_io_qpairs_per_ctrlr: tr
            .max_io_qpairs_per_ctrlr
            .unwrap_or(base.max_io_qpairs_per_ctrlr),
        in_capsule_data_size: size_u32(tr.in_capsule_data_size, "in_capsule_data_size")?
            .unwrap_or(base.in_capsule_data_size),
        max_io_size: size_u32(tr.max_io_size, "max_io_size")?.unwrap_or(base.max_io_size),
        io_unit_size: size_u32(tr.io_unit_size, "io_unit_size")?.unwrap_or(base.io_unit_size),
        max_aq_depth: tr.max_aq_depth.unwrap_or(base.max_aq_depth),
        c2h_success: tr.c2h_success.unwrap_or(base.c2h_success),
        ..base
    };
    o.validate()?;
    if t.transport_created
        .load(std::sync::atomic::Ordering::Acquire)
    {
        if o == t.options() {
            return Ok(false);
        }
        t.set_options(o);
        tracing::info!("transport options updated from the configuration file");
        return Ok(true);
    }
    let mut p = serde_json::to_value(&o).map_err(|e| e.to_string())?;
    p["trtype"] = json!("TCP");
    call(t, methods, "nvmf_create_transport", p).await
}

/// Creates the sparse file of an aio bdev when it is missing and a size is given.
fn ensure_file(path: &Path, size: Option<Size>) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    if path.exists() {
        return Ok(());
    }
    let Some(Size(size)) = size else {
        return Err(format!(
            "{} does not exist: create it, or give size so Lamina creates it",
            path.display()
        ));
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    f.set_len(size)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot size {}: {e}", path.display()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    tracing::info!(file = %path.display(), size, "sparse file created for a bdev");
    Ok(())
}

async fn apply_key(t: &Arc<Target>, methods: &Methods, k: &KeyEntry) -> Result<bool, Failed> {
    if t.keyring.get(&k.name).is_ok() {
        return Ok(false);
    }
    already_pending(t, "keyring_file_add_key", &[("/name", &k.name)])?;
    let p = json!({"name": k.name, "path": k.path.display().to_string()});
    call(t, methods, "keyring_file_add_key", p).await
}

async fn apply_bdev(t: &Arc<Target>, methods: &Methods, b: &BdevEntry) -> Result<bool, Failed> {
    if let Ok(existing) = t.bdevs.get(&b.name) {
        let same = match (existing.kind(), b.kind) {
            (crate::plane::bdev::BdevKind::Aio { filename }, BdevType::Aio) => {
                b.filename.as_ref() == Some(filename)
            }
            (crate::plane::bdev::BdevKind::Malloc, BdevType::Malloc)
            | (crate::plane::bdev::BdevKind::Null, BdevType::Null) => true,
            _ => false,
        };
        if !same {
            tracing::warn!(bdev = %b.name, "a bdev of this name exists but differs from the \
                configuration file; it is left as it is");
        }
        return Ok(false);
    }
    for method in ["bdev_aio_create", "bdev_malloc_create", "bdev_null_create"] {
        already_pending(t, method, &[("/name", &b.name)])?;
    }
    let mut p = json!({"name": b.name});
    if let Some(u) = b.uuid {
        p["uuid"] = json!(u.to_string());
    }
    if let Some(bs) = b.block_size {
        p["block_size"] = json!(bs);
    }
    if b.sparse {
        p["sparse"] = json!(true);
    }
    let method = match b.kind {
        BdevType::Aio => {
            let path = b.filename.clone().unwrap_or_default();
            p["filename"] = json!(path.display().to_string());
            let size = b.size;
            let made = tokio::task::spawn_blocking(move || ensure_file(&path, size))
                .await
                .map_err(|e| e.to_string())?;
            if let Err(reason) = made {
                // A device that is not there yet may show up: keep the call it needs.
                return Err(pend(t, "bdev_aio_create", p, reason.into()));
            }
            "bdev_aio_create"
        }
        BdevType::Malloc | BdevType::Null => {
            let bs = b.block_size.unwrap_or(512);
            let size = b.size.map_or(0, |s| s.0);
            if size == 0 || !size.is_multiple_of(u64::from(bs)) {
                return Err(format!(
                    "size {size} must be a positive multiple of the block size {bs}"
                )
                .into());
            }
            p["block_size"] = json!(bs);
            p["num_blocks"] = json!(size / u64::from(bs));
            if b.kind == BdevType::Malloc {
                "bdev_malloc_create"
            } else {
                "bdev_null_create"
            }
        }
    };
    call(t, methods, method, p).await
}

async fn apply_lvstore(
    t: &Arc<Target>,
    methods: &Methods,
    l: &LvstoreEntry,
) -> Result<bool, Failed> {
    if let Ok(store) = t.lvols.lvstore(&l.name) {
        if store.base_bdev() != l.bdev {
            tracing::warn!(lvstore = %l.name, file_bdev = %l.bdev, base_bdev = %store.base_bdev(),
                "lvstore exists on another bdev than the configuration file says; left as it is");
        }
        return Ok(false);
    }
    already_pending(t, "bdev_lvol_create_lvstore", &[("/lvs_name", &l.name)])?;
    let mut p = json!({"bdev_name": l.bdev, "lvs_name": l.name});
    if let Some(c) = l.cluster_size {
        p["cluster_sz"] = json!(c.0);
    }
    if let Some(m) = &l.clear_method {
        p["clear_method"] = json!(m);
    }
    call(t, methods, "bdev_lvol_create_lvstore", p).await
}

async fn apply_lvol(t: &Arc<Target>, methods: &Methods, l: &LvolEntry) -> Result<bool, Failed> {
    let alias = format!("{}/{}", l.lvstore, l.name);
    if let Ok(lvol) = t.lvols.lvol(&alias) {
        if lvol.size_bytes().is_ok_and(|s| s < l.size.0) {
            tracing::warn!(lvol = %alias, "lvol exists and is smaller than the configuration \
                file says; left as it is (lamina lvol resize grows it)");
        }
        return Ok(false);
    }
    let key = [
        ("/lvs_name", l.lvstore.as_str()),
        ("/lvol_name", l.name.as_str()),
    ];
    already_pending(t, "bdev_lvol_create", &key)?;
    let mut p = json!({"lvs_name": l.lvstore, "lvol_name": l.name,
        "size_in_mib": crate::units::to_mib_rounded_up(l.size.0), "thin_provision": l.thin});
    if let Some(m) = &l.clear_method {
        p["clear_method"] = json!(m);
    }
    call(t, methods, "bdev_lvol_create", p).await
}

/// SPDK's listen address for `addr`.
fn listen_address(addr: SocketAddr) -> Value {
    json!(ListenAddress::from_socket_addr(addr))
}

/// Applies one `[[subsystem]]` entry and its lists, recording each outcome in `done`.
async fn apply_subsystem(
    t: &Arc<Target>,
    methods: &Methods,
    s: &SubsystemEntry,
    done: &mut Applied,
) {
    let what = format!("[[subsystem]] {}", s.nqn);
    let created = create(t, methods, s).await;
    let failed = created.is_err();
    done.record(&what, created);
    if failed {
        return;
    }
    let Some(sub) = t.subsystems.get(&s.nqn) else {
        return;
    };
    for addr in &s.listeners {
        let what = format!("[[subsystem]] {} listener {addr}", s.nqn);
        let outcome = if sub.listeners().contains(addr) {
            Ok(false)
        } else {
            let p = json!({"nqn": s.nqn, "listen_address": listen_address(*addr)});
            call(t, methods, "nvmf_subsystem_add_listener", p).await
        };
        done.record(&what, outcome);
    }
    for host in &s.hosts {
        let what = format!("[[subsystem]] {} host {}", s.nqn, host.nqn);
        // A host already listed keeps its keys (nvmf_subsystem_set_keys changes them).
        let outcome = if sub.hosts().contains(&host.nqn) {
            Ok(false)
        } else {
            let mut p = json!({"nqn": s.nqn, "host": host.nqn});
            if let Some(k) = &host.psk {
                p["psk"] = json!(k);
            }
            if let Some(k) = &host.dhchap_key {
                p["dhchap_key"] = json!(k);
            }
            if let Some(k) = &host.dhchap_ctrlr_key {
                p["dhchap_ctrlr_key"] = json!(k);
            }
            call(t, methods, "nvmf_subsystem_add_host", p).await
        };
        done.record(&what, outcome);
    }
    for ns in &s.namespaces {
        let what = format!("[[subsystem]] {} namespace {}", s.nqn, ns.bdev);
        let outcome = add_namespace(t, methods, &sub, ns).await;
        done.record(&what, outcome);
        for host in ns.hosts.iter().flatten() {
            let what = format!("[[subsystem]] {} namespace {} host {host}", s.nqn, ns.bdev);
            let outcome = add_ns_host(t, methods, &sub, ns, host).await;
            done.record(&what, outcome);
        }
    }
}

/// Lists `host` for a masked namespace of the file: already listed is "existing"; a namespace
/// that every host sees (made without `hosts`, say over RPC) is left as it is, with an error;
/// a namespace still pending gets its host call pending behind it.
async fn add_ns_host(
    t: &Arc<Target>,
    methods: &Methods,
    sub: &Subsystem,
    ns: &NamespaceEntry,
    host: &str,
) -> Result<bool, Failed> {
    let Some(nsid) = ns.nsid else {
        return Err("hosts needs nsid".to_owned().into());
    };
    if let Some(live) = sub.namespace(nsid) {
        let v = live.visibility();
        if v.is_auto() {
            return Err(format!(
                "namespace {nsid} exists and every host sees it; its hosts are left as they are"
            )
            .into());
        }
        if v.hosts().iter().any(|h| h == host) {
            return Ok(false);
        }
    }
    let p = json!({"nqn": sub.nqn(), "nsid": nsid, "host": host});
    call(t, methods, "nvmf_ns_add_host", p).await
}

async fn create(t: &Arc<Target>, methods: &Methods, s: &SubsystemEntry) -> Result<bool, Failed> {
    if t.subsystems.get(&s.nqn).is_some() {
        return Ok(false);
    }
    already_pending(t, "nvmf_create_subsystem", &[("/nqn", &s.nqn)])?;
    let mut p = json!({"nqn": s.nqn, "allow_any_host": s.allow_any_host});
    if let Some(sn) = &s.serial_number {
        p["serial_number"] = json!(sn);
    }
    if let Some(mn) = &s.model_number {
        p["model_number"] = json!(mn);
    }
    if let Some(n) = s.max_namespaces {
        p["max_namespaces"] = json!(n);
    }
    call(t, methods, "nvmf_create_subsystem", p).await
}

/// The name a namespace of `bdev` carries: an lvol's UUID, else the bdev name.
fn namespace_name(t: &Target, bdev: &str) -> String {
    t.lvols
        .lvol(bdev)
        .map_or_else(|_| bdev.to_owned(), |l| l.uuid().to_string())
}

async fn add_namespace(
    t: &Arc<Target>,
    methods: &Methods,
    sub: &Subsystem,
    ns: &NamespaceEntry,
) -> Result<bool, Failed> {
    let name = namespace_name(t, &ns.bdev);
    match ns.nsid {
        Some(nsid) => {
            if let Some(existing) = sub.namespace(nsid) {
                if existing.bdev_name() != name {
                    return Err(format!(
                        "NSID {nsid} already exports {}, not {}; left as it is",
                        existing.bdev_name(),
                        ns.bdev
                    )
                    .into());
                }
                return Ok(false);
            }
            let held = t.pending.find(|e| {
                e.method == "nvmf_subsystem_add_ns"
                    && param(&e.params, "/nqn") == sub.nqn()
                    && e.params.pointer("/namespace/nsid").and_then(Value::as_u64)
                        == Some(u64::from(nsid))
            });
            if let Some(e) = held {
                return Err(Failed {
                    reason: format!("NSID {nsid} is pending as entry #{}: {}", e.id, e.reason),
                    pending: Some(e.id),
                });
            }
        }
        None => {
            if sub.namespaces().iter().any(|n| n.bdev_name() == name) {
                return Ok(false);
            }
        }
    }
    let mut spec = json!({"bdev_name": ns.bdev});
    if let Some(n) = ns.nsid {
        spec["nsid"] = json!(n);
    }
    if let Some(u) = ns.uuid {
        spec["uuid"] = json!(u.to_string());
    }
    if let Some(g) = &ns.nguid {
        spec["nguid"] = json!(g);
    }
    if ns.hosts.is_some() {
        spec["no_auto_visible"] = json!(true);
    }
    let p = json!({"nqn": sub.nqn(), "namespace": spec});
    call(t, methods, "nvmf_subsystem_add_ns", p).await
}
