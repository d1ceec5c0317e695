//! Size changes of base bdevs: `bdev_aio_rescan` (adopt the size the file or block device has
//! now) and `bdev_null_resize` (set a null bdev's size, in MiB as SPDK takes it).
//!
//! As in SPDK, a bdev that someone holds (an lvstore on it, or a namespace exporting it) may
//! grow but not shrink: shrinking would cut off blocks its user may be addressing, so it is
//! refused with EBUSY and the size stays. A namespace exporting the bdev raw announces the new
//! size to hosts (Namespace Attribute Changed), as an lvol resize does; an lvstore on it uses
//! the new space after `bdev_lvol_grow_lvstore`, as in SPDK.

use std::sync::Arc;

use lamina_lvol::device::{BlockDevice, Device};
use serde::Deserialize;
use serde_json::json;

use super::dispatch::{Methods, RpcResult};
use super::error::RpcError;
use super::fields::{Described, Field, applied};
use crate::mgmt::context::Target;
use crate::plane::bdev::{Bdev, BdevKind};
use crate::plane::subsystem::SubsystemEvent;
use crate::plane::subsystem::namespace::Backend;

/// Registers the methods.
pub fn register(m: &mut Methods, t: &Arc<Target>) {
    super::reg(m, t, "bdev_aio_rescan", aio_rescan);
    super::reg(m, t, "bdev_null_resize", null_resize);
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rescan {
    name: String,
}

impl Described for Rescan {
    const FIELDS: &'static [Field] = &[applied("name")];
}

async fn aio_rescan(t: Arc<Target>, p: Rescan) -> RpcResult {
    let bdev = t.bdevs.get(&p.name).map_err(RpcError::from)?;
    let (BdevKind::Aio { .. }, Device::File(file)) = (bdev.kind(), bdev.device()) else {
        return Err(RpcError::new(
            super::error::ENODEV,
            format!("bdev '{}' is not an aio bdev", p.name),
        ));
    };
    let old = file.size_bytes();
    let probe = file.clone();
    let new = tokio::task::spawn_blocking(move || probe.probe_size())
        .await
        .map_err(RpcError::internal)?
        .map_err(|e| RpcError::new(super::error::EIO, format!("{}: {e}", p.name)))?;
    if new == old {
        return Ok(json!(true));
    }
    check_shrink(&bdev, old, new)?;
    file.refresh_size()
        .map_err(|e| RpcError::new(super::error::EIO, format!("{}: {e}", p.name)))?;
    announce(&t, &bdev, old, new);
    Ok(json!(true))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NullResize {
    name: String,
    new_size: u64,
}

impl Described for NullResize {
    const FIELDS: &'static [Field] = &[applied("name"), applied("new_size")];
}

async fn null_resize(t: Arc<Target>, p: NullResize) -> RpcResult {
    let bdev = t.bdevs.get(&p.name).map_err(RpcError::from)?;
    let (BdevKind::Null, Device::Null(dev)) = (bdev.kind(), bdev.device()) else {
        return Err(RpcError::new(
            super::error::ENODEV,
            format!("bdev '{}' is not a null bdev", p.name),
        ));
    };
    let new = p
        .new_size
        .checked_mul(1 << 20)
        .filter(|s| *s > 0)
        .ok_or_else(|| {
            RpcError::invalid_params(format!(
                "new_size {} MiB is not a size (1 MiB or more, below 2^44 MiB)",
                p.new_size
            ))
        })?;
    let old = dev.size_bytes();
    if new == old {
        return Ok(json!(true));
    }
    check_shrink(&bdev, old, new)?;
    dev.set_size(new)
        .map_err(|e| RpcError::invalid_params(format!("new_size: {e}")))?;
    announce(&t, &bdev, old, new);
    Ok(json!(true))
}

/// Refuses to shrink a held bdev.
fn check_shrink(bdev: &Bdev, old: u64, new: u64) -> Result<(), RpcError> {
    match bdev.claim() {
        Some(holder) if new < old => Err(RpcError::busy(format!(
            "bdev '{}' is held by {holder}: it may grow but not shrink (from {old} to {new} \
             bytes)",
            bdev.name()
        ))),
        _ => Ok(()),
    }
}

/// Logs the change and tells the hosts of every namespace exporting the bdev.
fn announce(t: &Target, bdev: &Arc<Bdev>, old: u64, new: u64) {
    tracing::info!(bdev = %bdev.name(), old, new, "bdev resized");
    let carrying = t
        .subsystems
        .namespaces_where(|ns| matches!(ns.backend(), Backend::Bdev(b) if Arc::ptr_eq(b, bdev)));
    for (s, ns) in carrying {
        s.notify(SubsystemEvent::NamespaceChanged(ns.nsid()));
    }
}
