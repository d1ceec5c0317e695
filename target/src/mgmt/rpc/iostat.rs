//! Per-bdev I/O statistics in SPDK's shapes: `bdev_get_iostat`, `bdev_reset_iostat`,
//! `bdev_enable_histogram` and `bdev_get_histogram`.
//!
//! Lamina counts I/O where hosts submit it, per namespace (the same counters the metrics
//! endpoint exports, see [`crate::plane::stats`]). A bdev's statistics are those of the namespaces
//! that carry its I/O: the namespace exporting it (a raw bdev or an lvol), and, for a base bdev
//! holding an lvstore, the namespaces exporting that store's lvols (the I/O SPDK's base bdev
//! would see, without lvstore metadata). A bdev that no namespace exports reports zeros. The
//! counts start when a namespace is added and go with it. Ticks are nanoseconds (`tick_rate`
//! 1e9). Resets move the RPC view's base and leave the metrics counters monotonic.
//! A histogram runs on the namespaces exporting the bdev when it is enabled (one added later
//! starts without). `per_channel` is refused when true: Lamina keeps no per-thread counters (its connections
//! move between runtime threads), so there is nothing per channel to report.

use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::dispatch::{Methods, RpcResult};
use super::error::RpcError;
use super::fields::{Described, Field, Lit, applied, only};
use crate::mgmt::context::Target;
use crate::plane::bdev::Claim;
use crate::plane::stats::iostat::EXTREME_CLASSES;
use crate::plane::stats::spdk_histogram::{
    DEFAULT_GRANULARITY, DEFAULT_MAX_NS, DEFAULT_MIN_NS, SpdkHistogram,
};
use crate::plane::stats::{IoCounts, OpClass, ResetMode, TICK_RATE};
use crate::plane::subsystem::namespace::{Backend, Namespace};

/// Registers the methods.
pub fn register(m: &mut Methods, t: &Arc<Target>) {
    super::reg(m, t, "bdev_get_iostat", get_iostat);
    super::reg(m, t, "bdev_reset_iostat", reset_iostat);
    super::reg(m, t, "bdev_enable_histogram", enable_histogram);
    super::reg(m, t, "bdev_get_histogram", get_histogram);
}

/// A bdev as statistics see it: the name SPDK lists it under and the namespaces carrying its
/// I/O.
struct Carried {
    name: String,
    namespaces: Vec<Arc<Namespace>>,
}

/// Every namespace of every subsystem.
fn all_namespaces(t: &Target) -> Vec<Arc<Namespace>> {
    t.subsystems
        .namespaces_where(|_| true)
        .into_iter()
        .map(|(_, ns)| ns)
        .collect()
}

/// The bdev or lvol `name` (an lvol by UUID or alias) with the namespaces carrying its I/O.
fn carried(t: &Target, name: &str, all: &[Arc<Namespace>]) -> Result<Carried, RpcError> {
    if let Ok(b) = t.bdevs.get(name) {
        let store = matches!(b.claim(), Some(Claim::Lvstore));
        let namespaces = all
            .iter()
            .filter(|ns| match ns.backend() {
                Backend::Bdev(nb) => Arc::ptr_eq(nb, &b),
                Backend::Lvol(d) => store && d.lvol().store().base_bdev() == b.name(),
            })
            .cloned()
            .collect();
        return Ok(Carried {
            name: b.name().to_owned(),
            namespaces,
        });
    }
    let lvol = t.lvols.lvol(name).map_err(|_| {
        RpcError::new(
            super::error::ENODEV,
            format!("bdev '{name}': No such device"),
        )
    })?;
    let uuid = lvol.uuid();
    let namespaces = all
        .iter()
        .filter(|ns| matches!(ns.backend(), Backend::Lvol(d) if d.lvol().uuid() == uuid))
        .cloned()
        .collect();
    Ok(Carried {
        name: uuid.to_string(),
        namespaces,
    })
}

/// Every bdev, in `bdev_get_bdevs` order.
fn every_bdev(t: &Target, all: &[Arc<Namespace>]) -> Vec<Carried> {
    // A bdev deleted since the list was taken is skipped, as a listing skips it.
    t.bdev_names()
        .iter()
        .filter_map(|n| carried(t, n, all).ok())
        .collect()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct GetIostat {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    names: Option<Vec<String>>,
    #[serde(default)]
    reset_mode: Option<ResetMode>,
}

impl Described for GetIostat {
    const FIELDS: &'static [Field] = &[
        applied("name"),
        applied("names"),
        applied("reset_mode"),
        only(
            "per_channel",
            &[Lit::Bool(false)],
            "Lamina keeps no per-channel (per-thread) counters: its connections move between \
             runtime threads, so only the per-bdev totals exist",
        ),
    ];
}

async fn get_iostat(t: Arc<Target>, p: GetIostat) -> RpcResult {
    let all = all_namespaces(&t);
    let bdevs = match (p.name, p.names) {
        (Some(_), Some(_)) => {
            return Err(RpcError::invalid_params(
                "give either name or names, not both",
            ));
        }
        (Some(n), None) => vec![carried(&t, &n, &all)?],
        (None, Some(ns)) => ns
            .iter()
            .map(|n| carried(&t, n, &all))
            .collect::<Result<_, _>>()?,
        (None, None) => every_bdev(&t, &all),
    };
    let out: Vec<Value> = bdevs.iter().map(iostat_json).collect();
    if let Some(mode) = p.reset_mode {
        for b in &bdevs {
            for ns in &b.namespaces {
                ns.stats().reset_iostat(mode);
            }
        }
    }
    Ok(json!({
        "tick_rate": TICK_RATE,
        "ticks": ticks_now(),
        "bdevs": out,
    }))
}

/// Nanoseconds since the first statistics call (SPDK's `ticks` count from an arbitrary
/// origin too: its TSC).
fn ticks_now() -> u64 {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let elapsed = ORIGIN.get_or_init(std::time::Instant::now).elapsed();
    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
}

fn iostat_json(b: &Carried) -> Value {
    let mut c = IoCounts::default();
    let mut extremes = [(0u64, u64::MAX); EXTREME_CLASSES.len()];
    for ns in &b.namespaces {
        c.add(&ns.stats().iostat());
        for (e, class) in extremes.iter_mut().zip(EXTREME_CLASSES) {
            let (max, min) = ns.stats().extremes(class);
            e.0 = e.0.max(max);
            if max > 0 {
                e.1 = e.1.min(min);
            }
        }
    }
    let [(max_r, min_r), (max_w, min_w), (max_u, min_u)] =
        extremes.map(|(max, min)| (max, if min == u64::MAX { 0 } else { min }));
    let errors: Map<String, Value> = c
        .error_labels()
        .map(|(l, n)| (l.to_owned(), json!(n)))
        .collect();
    json!({
        "name": b.name,
        "bytes_read": c.bytes_read,
        "num_read_ops": c.read_ops,
        "bytes_written": c.bytes_written,
        "num_write_ops": c.write_ops,
        "bytes_unmapped": c.bytes_unmapped,
        "num_unmap_ops": c.unmap_ops,
        "bytes_copied": 0,
        "num_copy_ops": 0,
        "read_latency_ticks": c.read_latency_ns,
        "max_read_latency_ticks": max_r,
        "min_read_latency_ticks": min_r,
        "write_latency_ticks": c.write_latency_ns,
        "max_write_latency_ticks": max_w,
        "min_write_latency_ticks": min_w,
        "unmap_latency_ticks": c.unmap_latency_ns,
        "max_unmap_latency_ticks": max_u,
        "min_unmap_latency_ticks": min_u,
        "copy_latency_ticks": 0,
        "max_copy_latency_ticks": 0,
        "min_copy_latency_ticks": 0,
        "io_error": errors,
        "queue_depth": b.namespaces.iter().map(|ns| ns.in_flight()).sum::<u64>(),
        "namespaces": b.namespaces.len(),
    })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ResetIostat {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    mode: Option<ResetMode>,
}

impl Described for ResetIostat {
    const FIELDS: &'static [Field] = &[applied("name"), applied("mode")];
}

async fn reset_iostat(t: Arc<Target>, p: ResetIostat) -> RpcResult {
    let all = all_namespaces(&t);
    let bdevs = match &p.name {
        Some(n) => vec![carried(&t, n, &all)?],
        None => every_bdev(&t, &all),
    };
    let mode = p.mode.unwrap_or(ResetMode::All);
    for b in &bdevs {
        for ns in &b.namespaces {
            ns.stats().reset_iostat(mode);
        }
    }
    Ok(json!(true))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnableHistogram {
    name: String,
    enable: bool,
    #[serde(default)]
    opc: Option<String>,
    #[serde(default)]
    granularity: Option<u32>,
    #[serde(default)]
    min_nsec: Option<u64>,
    #[serde(default)]
    max_nsec: Option<u64>,
}

impl Described for EnableHistogram {
    const FIELDS: &'static [Field] = &[
        applied("name"),
        applied("enable"),
        applied("opc"),
        applied("granularity"),
        applied("min_nsec"),
        applied("max_nsec"),
    ];
}

async fn enable_histogram(t: Arc<Target>, p: EnableHistogram) -> RpcResult {
    let all = all_namespaces(&t);
    let b = carried(&t, &p.name, &all)?;
    if !p.enable {
        for ns in &b.namespaces {
            ns.stats().set_histogram(None);
        }
        return Ok(json!(true));
    }
    let only = match p.opc.as_deref() {
        None => None,
        Some(name) => Some(OpClass::from_spdk_io_type(name).ok_or_else(|| {
            RpcError::invalid_params(format!(
                "opc '{name}' is not an I/O type Lamina serves (read, write, unmap, flush, \
                 write_zeroes, compare)"
            ))
        })?),
    };
    if b.namespaces.is_empty() {
        return Err(RpcError::new(
            super::error::ENODEV,
            format!(
                "bdev '{}' is not exported by any namespace: Lamina measures latency where \
                 hosts submit I/O, so add a namespace for it first",
                p.name
            ),
        ));
    }
    let granularity = p.granularity.unwrap_or(DEFAULT_GRANULARITY);
    let (min, max) = (
        p.min_nsec.unwrap_or(DEFAULT_MIN_NS),
        p.max_nsec.unwrap_or(DEFAULT_MAX_NS),
    );
    for ns in &b.namespaces {
        let h =
            SpdkHistogram::new(granularity, min, max, only).map_err(RpcError::invalid_params)?;
        ns.stats().set_histogram(Some(Arc::new(h)));
    }
    tracing::info!(bdev = %p.name, granularity, min_nsec = min, max_nsec = max, "histogram enabled");
    Ok(json!(true))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetHistogram {
    name: String,
}

impl Described for GetHistogram {
    const FIELDS: &'static [Field] = &[applied("name")];
}

async fn get_histogram(t: Arc<Target>, p: GetHistogram) -> RpcResult {
    let all = all_namespaces(&t);
    let b = carried(&t, &p.name, &all)?;
    let running: Vec<Arc<SpdkHistogram>> = b
        .namespaces
        .iter()
        .filter_map(|ns| ns.stats().histogram())
        .collect();
    let Some(first) = running.first() else {
        return Err(RpcError::new(
            super::error::EINVAL,
            format!(
                "histogram is not enabled on bdev '{}' (bdev_enable_histogram)",
                p.name
            ),
        ));
    };
    let mut buckets = vec![0u64; first.len()];
    for h in &running {
        if !h.add_into(&mut buckets) {
            return Err(RpcError::internal(
                "the namespaces of this bdev run histograms of different shapes",
            ));
        }
    }
    let bytes: Vec<u8> = buckets.iter().flat_map(|b| b.to_le_bytes()).collect();
    Ok(json!({
        "histogram": base64::engine::general_purpose::STANDARD.encode(bytes),
        "granularity": first.granularity(),
        "min_range": first.min_range(),
        "max_range": first.max_range(),
        "tsc_rate": TICK_RATE,
    }))
}
