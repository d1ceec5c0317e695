//! `bdev_get_bdevs`: every base bdev, then every lvol (as SPDK lists lvol bdevs, with their
//! `driver_specific.lvol` section), each in the shape SPDK's `rpc_dump_bdev_info` writes.
//!
//! The fields describe what Lamina does, not what it could: `assigned_rate_limits` are all 0
//! (SPDK's "no limit": Lamina has no QoS and refuses `bdev_set_qos_limit` by not offering it),
//! the preferred sizes and alignments are 0 (none reported to hosts either), there is no
//! metadata so no `md_size`/`dif_*` fields, and `supported_io_types` names every SPDK I/O type
//! with whether Lamina serves it. `timeout` waits up to that many milliseconds for the bdev
//! named to appear.

use std::sync::Arc;

use lamina_lvol::LvolInfo;
use serde::Deserialize;
use serde_json::{Value, json};

use super::dispatch::{Methods, RpcResult};
use super::error::RpcError;
use super::fields::{Described, Field, applied};
use crate::mgmt::context::Target;
use crate::plane::bdev::{Bdev, BdevKind, Claim};

/// Registers the method.
pub fn register(m: &mut Methods, t: &Arc<Target>) {
    super::reg(m, t, "bdev_get_bdevs", get_bdevs);
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct GetBdevs {
    name: Option<String>,
    /// Milliseconds to wait for the bdev `name` to appear.
    #[serde(default)]
    timeout: Option<u64>,
}

impl Described for GetBdevs {
    const FIELDS: &'static [Field] = &[applied("name"), applied("timeout")];
}

/// How often `bdev_get_bdevs` with a `timeout` looks for the bdev again.
const APPEAR_POLL: std::time::Duration = std::time::Duration::from_millis(10);

async fn get_bdevs(t: Arc<Target>, p: GetBdevs) -> RpcResult {
    let Some(name) = &p.name else {
        return Ok(Value::Array(all_bdevs(&t)));
    };
    let deadline =
        tokio::time::Instant::now() + std::time::Duration::from_millis(p.timeout.unwrap_or(0));
    loop {
        if let Some(found) = one_bdev(&t, name) {
            return Ok(json!([found]));
        }
        if tokio::time::Instant::now() >= deadline {
            let waited = p
                .timeout
                .map(|ms| format!(" after waiting {ms} ms"))
                .unwrap_or_default();
            return Err(RpcError::not_found(format!(
                "bdev '{name}' not found{waited}"
            )));
        }
        tokio::time::sleep(APPEAR_POLL.min(deadline - tokio::time::Instant::now())).await;
    }
}

/// The `bdev_get_bdevs` element of the bdev or lvol `name`, if it exists now.
fn one_bdev(t: &Target, name: &str) -> Option<Value> {
    if let Ok(b) = t.bdevs.get(name) {
        return Some(base_bdev_json(&b));
    }
    let info = t.lvols.lvol(name).ok()?.info().ok()?;
    Some(lvol_bdev_json(&info))
}

/// Every base bdev, then every lvol.
fn all_bdevs(t: &Target) -> Vec<Value> {
    let mut out = Vec::new();
    out.extend(t.bdevs.list().iter().map(|b| base_bdev_json(b)));
    // Listings read each lvol through its own handle: a deleted one is skipped, never half-read.
    out.extend(t.lvols.list_lvols(None).iter().map(lvol_bdev_json));
    out
}

/// The fields every bdev carries, whatever its kind.
fn common(
    name: &str,
    aliases: Value,
    product: &str,
    block_size: u32,
    num_blocks: u64,
    uuid: &str,
) -> Value {
    json!({
        "name": name,
        "aliases": aliases,
        "product_name": product,
        "block_size": block_size,
        "num_blocks": num_blocks,
        "preferred_write_alignment": 0,
        "preferred_write_granularity": 0,
        "optimal_write_size": 0,
        "preferred_unmap_alignment": 0,
        "preferred_unmap_granularity": 0,
        "uuid": uuid,
        "assigned_rate_limits": {
            "rw_ios_per_sec": 0,
            "rw_mbytes_per_sec": 0,
            "r_mbytes_per_sec": 0,
            "w_mbytes_per_sec": 0,
        },
        "claimed": false,
        "zoned": false,
        "supported_io_types": io_types(),
        "driver_specific": {},
    })
}

fn base_bdev_json(b: &Bdev) -> Value {
    let uuid = b.uuid().to_string();
    let mut v = common(
        b.name(),
        json!([]),
        b.kind().product_name(),
        b.block_size(),
        b.num_blocks(),
        &uuid,
    );
    if let Some(c) = b.claim() {
        v["claimed"] = json!(true);
        v["claim_type"] = json!(match c {
            Claim::Lvstore => "read_many_write_one",
            Claim::Namespace { .. } => "exclusive_write",
        });
    }
    if let BdevKind::Aio { filename } = b.kind() {
        v["driver_specific"] = json!({"aio": {"filename": filename.display().to_string(),
            "block_size_override": true, "readonly": false, "fallocate": true}});
    }
    v
}

fn lvol_bdev_json(i: &LvolInfo) -> Value {
    let uuid = i.uuid.to_string();
    let mut v = common(
        &uuid,
        json!([i.alias]),
        "Logical Volume",
        i.block_size,
        i.size_bytes / u64::from(i.block_size.max(1)),
        &uuid,
    );
    v["driver_specific"] = json!({"lvol": {
        "lvol_store_uuid": i.lvs_uuid.to_string(),
        "base_bdev": i.base_bdev,
        "thin_provision": i.is_thin_provisioned,
        "num_allocated_clusters": i.num_allocated_clusters,
        "snapshot": i.is_snapshot,
        "clone": i.is_clone,
        "esnap_clone": false,
        "base_snapshot": i.parent.as_ref().map(|p| p.name.clone()),
        "clones": i.clones.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
    }});
    v
}

/// Every I/O type SPDK names, with whether Lamina serves it on every bdev.
fn io_types() -> Value {
    let served = [
        "read",
        "write",
        "unmap",
        "write_zeroes",
        "flush",
        "reset",
        "compare",
    ];
    let all = [
        "read",
        "write",
        "unmap",
        "flush",
        "reset",
        "nvme_admin",
        "nvme_io",
        "nvme_io_md",
        "write_zeroes",
        "zcopy",
        "get_zone_info",
        "zone_management",
        "zone_append",
        "compare",
        "compare_and_write",
        "abort",
        "seek_hole",
        "seek_data",
        "copy",
        "nvme_iov_md",
    ];
    Value::Object(
        all.iter()
            .map(|t| ((*t).to_owned(), json!(served.contains(t))))
            .collect(),
    )
}
