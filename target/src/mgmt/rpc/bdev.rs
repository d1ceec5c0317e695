//! Base device methods, as SPDK names and shapes them: `bdev_malloc_create`,
//! `bdev_malloc_delete`, `bdev_aio_create`, `bdev_aio_delete`, `bdev_null_create`,
//! `bdev_null_delete`, `bdev_aio_rescan` and `bdev_null_resize`. Listing is in
//! [`super::bdev_info`], statistics in [`super::iostat`].
//!
//! Creating an aio bdev examines it: an lvstore found on the device is loaded with its lvols,
//! which is how lvstores come back after a restart.
//!
//! Every parameter of SPDK's schema is accepted (see [`super::fields`]). Lamina's bdevs carry no
//! metadata or protection information, report no optimal boundary or preferred granularity,
//! and have a physical block equal to their block: those parameters are accepted only at the
//! values that say so (`md_size` 0, `dif_type` 0, `physical_block_size` 0 or the block size...).

use std::path::PathBuf;
use std::sync::Arc;

use lamina_lvol::LvolError;
use lamina_lvol::device::{Device, FileDevice, FileOptions, NullDevice, RamDevice};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::dispatch::{Methods, RpcResult};
use super::error::RpcError;
use super::fields::{Described, Field, Lit, Ty, applied, only, same};
use crate::mgmt::context::Target;
use crate::plane::bdev::{Bdev, BdevKind};

/// Registers the methods.
pub fn register(m: &mut Methods, t: &Arc<Target>) {
    super::reg(m, t, "bdev_malloc_create", malloc_create);
    super::reg(m, t, "bdev_malloc_delete", delete_bdev);
    super::reg(m, t, "bdev_aio_create", aio_create);
    super::reg(m, t, "bdev_aio_delete", delete_bdev);
    super::reg(m, t, "bdev_null_create", null_create);
    super::reg(m, t, "bdev_null_delete", delete_bdev);
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MallocCreate {
    name: Option<String>,
    num_blocks: u64,
    block_size: u32,
    uuid: Option<Uuid>,
    #[serde(default)]
    physical_block_size: Option<u32>,
    /// Lamina's own: memory taken as written instead of at creation.
    #[serde(default)]
    sparse: bool,
}

/// No metadata: `md_size`.
const MD_SIZE: Field = only(
    "md_size",
    &[Lit::Int(0)],
    "Lamina bdevs carry no metadata, separate or interleaved",
);
/// No protection information: `dif_type`.
const DIF_TYPE: Field = only(
    "dif_type",
    &[Lit::Int(0)],
    "Lamina bdevs carry no protection information (DIF/DIX)",
);
/// `dif_pi_format`.
const DIF_PI_FORMAT: Field = only(
    "dif_pi_format",
    &[Lit::Int(0)],
    "Lamina bdevs carry no protection information (DIF/DIX)",
);
/// `dif_is_head_of_md`.
const DIF_HEAD: Field = only(
    "dif_is_head_of_md",
    &[Lit::Bool(false)],
    "Lamina bdevs carry no metadata to hold protection information",
);

impl Described for MallocCreate {
    const FIELDS: &'static [Field] = &[
        applied("name"),
        applied("num_blocks"),
        applied("block_size"),
        applied("uuid"),
        only(
            "optimal_io_boundary",
            &[Lit::Int(0)],
            "Lamina neither splits I/O at a boundary nor reports one (NOIOB is 0)",
        ),
        MD_SIZE,
        only(
            "md_interleave",
            &[Lit::Bool(false)],
            "Lamina bdevs carry no metadata to interleave",
        ),
        DIF_TYPE,
        DIF_HEAD,
        applied("physical_block_size"),
        applied("sparse"),
        DIF_PI_FORMAT,
        only(
            "numa_id",
            &[Lit::Int(-1)],
            "Lamina allocates a RAM bdev from any NUMA node",
        ),
    ];
}

/// Checks `physical_block_size`: a Lamina bdev's physical block is its block (0 means that too).
fn check_physical(physical: Option<u32>, block_size: u32) -> Result<(), RpcError> {
    match physical {
        None | Some(0) => Ok(()),
        Some(p) if p == block_size => Ok(()),
        Some(p) => Err(RpcError::invalid_params(format!(
            "physical_block_size {p} is not supported: a Lamina bdev's physical block is its \
             block_size ({block_size}); give that, 0, or leave it out"
        ))),
    }
}

/// A malloc bdev holds all its memory from creation, as SPDK's does (there in hugepages, here
/// in transparent huge pages where the kernel has them): refuses (-ENOMEM) a size larger than
/// the memory this machine has available now, rather than letting the kernel overcommit and
/// kill the process when the memory is faulted in. Lamina's `sparse: true` makes one that
/// takes memory as it is written instead (tests, benchmarks, volumes larger than memory that
/// are never filled): only its chunk table is sized at creation, and refused past 1/64 of the
/// machine's memory.
fn check_memory(size: u64, sparse: bool) -> Result<(), RpcError> {
    if sparse {
        const ENTRY_BYTES: u64 = 32;
        let table = size
            .div_ceil(RamDevice::CHUNK_BYTES)
            .saturating_mul(ENTRY_BYTES);
        let Some(total) = meminfo("MemTotal:") else {
            return Ok(());
        };
        if table > total / 64 {
            return Err(RpcError::new(
                super::error::ENOMEM,
                format!(
                    "num_blocks * block_size is {size} bytes: a sparse malloc bdev's chunk \
                     table alone needs {table} bytes, more than this machine's {total} bytes \
                     of memory allow"
                ),
            ));
        }
        if size > total {
            tracing::warn!(
                size,
                memory = total,
                "sparse malloc bdev larger than memory: it is allocated as written, and \
                 writing more than the memory holds will fail"
            );
        }
        return Ok(());
    }
    match meminfo("MemAvailable:") {
        Some(available) if size > available => Err(RpcError::new(
            super::error::ENOMEM,
            format!(
                "num_blocks * block_size is {size} bytes: a malloc bdev holds all its memory \
                 from creation, and this machine has {available} bytes available (sparse: true \
                 takes memory as it is written instead)"
            ),
        )),
        _ => Ok(()),
    }
}

/// A `/proc/meminfo` figure in bytes.
fn meminfo(field: &str) -> Option<u64> {
    std::fs::read_to_string("/proc/meminfo")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib.saturating_mul(1024))
}

async fn malloc_create(t: Arc<Target>, p: MallocCreate) -> RpcResult {
    check_physical(p.physical_block_size, p.block_size)?;
    let size = p
        .num_blocks
        .checked_mul(u64::from(p.block_size))
        .filter(|s| *s > 0)
        .ok_or_else(|| RpcError::invalid_params("num_blocks * block_size must be positive"))?;
    check_memory(size, p.sparse)?;
    // Faulting the memory in takes from a few tenths of a second per GiB to several seconds on
    // memory a fresh VM never touched: not on a runtime thread.
    let (block_size, sparse) = (p.block_size, p.sparse);
    let dev = tokio::task::spawn_blocking(move || {
        if sparse {
            RamDevice::new(size, block_size)
        } else {
            RamDevice::allocated(size, block_size)
        }
    })
    .await
    .map_err(|e| RpcError::internal(format!("allocating the malloc bdev: {e}")))?
    .map_err(|e| match e {
        lamina_lvol::DeviceError::Io { .. } => RpcError::new(
            super::error::ENOMEM,
            format!("the malloc bdev's memory could not be allocated: {e}"),
        ),
        e => RpcError::invalid(e.to_string()),
    })?;
    let name = p.name.unwrap_or_else(|| next_name(&t, "Malloc"));
    let bdev = t
        .bdevs
        .insert(&name, p.uuid, BdevKind::Malloc, dev.into())
        .map_err(RpcError::from)?;
    tracing::info!(bdev = %name, size, "malloc bdev created");
    Ok(json!(bdev.name()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AioCreate {
    name: String,
    filename: PathBuf,
    #[serde(default)]
    block_size: Option<u32>,
    #[serde(default)]
    uuid: Option<Uuid>,
}

impl Described for AioCreate {
    const FIELDS: &'static [Field] = &[
        applied("name"),
        applied("filename"),
        applied("block_size"),
        only(
            "readonly",
            &[Lit::Bool(false)],
            "Lamina opens aio files read-write; read-only aio bdevs are not implemented",
        ),
        same(
            "fallocate",
            Ty::Bool,
            "Lamina always serves UNMAP and WRITE ZEROES on files, through io_uring (SPDK \
             leaves them off by default only because its fallocate call blocks), so both \
             values give SPDK's fallocate=true behaviour",
        ),
        applied("uuid"),
        only(
            "nowait",
            &[Lit::Bool(false)],
            "Lamina does not submit with RWF_NOWAIT",
        ),
    ];
}

async fn aio_create(t: Arc<Target>, p: AioCreate) -> RpcResult {
    if t.bdevs.contains(&p.name) {
        return Err(RpcError::exists(format!(
            "bdev '{}' already exists",
            p.name
        )));
    }
    let filename = t
        .paths
        .read()
        .check(&p.filename)
        .map_err(|why| RpcError::new(super::error::EPERM, format!("filename {why}")))?;
    let opts = FileOptions {
        block_size: p.block_size.filter(|b| *b != 0),
        io_uring: t.settings.io_uring,
        ..FileOptions::default()
    };
    // A missing or unreadable path says so in the system's words ("No such file or
    // directory"): that is what an operator reads when a device is not there.
    let dev = tokio::task::spawn_blocking(move || {
        std::fs::metadata(&filename).map_err(|e| e.to_string())?;
        FileDevice::open(&filename, &opts).map_err(|e| e.to_string())
    })
    .await
    .map_err(RpcError::internal)?
    .map_err(|e| {
        RpcError::new(
            super::error::ENOENT,
            format!("{}: {e}", p.filename.display()),
        )
    })?;
    let kind = BdevKind::Aio {
        filename: p.filename.clone(),
    };
    let bdev = t
        .bdevs
        .insert(&p.name, p.uuid, kind, dev.into())
        .map_err(RpcError::from)?;
    tracing::info!(bdev = %p.name, file = %p.filename.display(), "aio bdev created");
    examine(&t, &bdev).await;
    Ok(json!(bdev.name()))
}

/// Looks for an lvstore on a new bdev and loads it (SPDK's examine). An lvstore found but not
/// loaded is logged and recorded on the bdev ([`Bdev::lvstore_error`]): the bdev stays, as in
/// SPDK, but a restore keeps such a bdev pending instead (see `crate::mgmt::config::replay`).
pub async fn examine(t: &Arc<Target>, bdev: &Arc<Bdev>) {
    match t
        .lvols
        .load_lvstore(bdev.device().clone(), bdev.name())
        .await
    {
        Ok(store) => {
            if bdev.try_claim(crate::plane::bdev::Claim::Lvstore).is_err() {
                tracing::warn!(bdev = %bdev.name(), "bdev already claimed while loading its lvstore");
            }
            tracing::info!(bdev = %bdev.name(), lvstore = %store.name(),
                lvols = store.lvols().len(), "lvstore loaded");
        }
        Err(LvolError::NoLvstore) => {}
        Err(e) => {
            tracing::warn!(bdev = %bdev.name(), error = %e, "lvstore on bdev not loaded");
            bdev.set_lvstore_error(Some(e.to_string()));
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NullCreate {
    name: String,
    num_blocks: u64,
    block_size: u32,
    #[serde(default)]
    uuid: Option<Uuid>,
    #[serde(default)]
    physical_block_size: Option<u32>,
}

/// Lamina's namespaces report no preferred sizes or alignments.
const NO_PREFERENCE: &str = "Lamina reports no preferred write or deallocate granularity, \
     alignment or optimal write size (NPWG, NPWA, NOWS, NPDG and NPDA are 0)";

impl Described for NullCreate {
    const FIELDS: &'static [Field] = &[
        applied("name"),
        applied("num_blocks"),
        applied("block_size"),
        applied("uuid"),
        MD_SIZE,
        DIF_TYPE,
        DIF_HEAD,
        applied("physical_block_size"),
        DIF_PI_FORMAT,
        only("preferred_write_granularity", &[Lit::Int(0)], NO_PREFERENCE),
        only("preferred_write_alignment", &[Lit::Int(0)], NO_PREFERENCE),
        only("optimal_write_size", &[Lit::Int(0)], NO_PREFERENCE),
        only("preferred_unmap_granularity", &[Lit::Int(0)], NO_PREFERENCE),
        only("preferred_unmap_alignment", &[Lit::Int(0)], NO_PREFERENCE),
    ];
}

async fn null_create(t: Arc<Target>, p: NullCreate) -> RpcResult {
    check_physical(p.physical_block_size, p.block_size)?;
    let size = p
        .num_blocks
        .checked_mul(u64::from(p.block_size))
        .filter(|s| *s > 0)
        .ok_or_else(|| RpcError::invalid_params("num_blocks * block_size must be positive"))?;
    let dev = NullDevice::new(size, p.block_size).map_err(|e| RpcError::invalid(e.to_string()))?;
    let bdev = t
        .bdevs
        .insert(&p.name, p.uuid, BdevKind::Null, dev.into())
        .map_err(RpcError::from)?;
    Ok(json!(bdev.name()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteBdev {
    name: String,
}

impl Described for DeleteBdev {
    const FIELDS: &'static [Field] = &[applied("name")];
}

async fn delete_bdev(t: Arc<Target>, p: DeleteBdev) -> RpcResult {
    let bdev = t.bdevs.remove(&p.name).map_err(RpcError::from)?;
    if let Device::File(f) = bdev.device() {
        tracing::info!(bdev = %p.name, file = %f.path().display(), "aio bdev deleted");
    } else {
        tracing::info!(bdev = %p.name, "bdev deleted");
    }
    Ok(json!(true))
}

fn next_name(t: &Target, prefix: &str) -> String {
    (0..u32::MAX)
        .map(|i| format!("{prefix}{i}"))
        .find(|n| !t.bdevs.contains(n) && !t.pending.holds_bdev_name(n))
        .unwrap_or_else(|| format!("{prefix}{}", Uuid::new_v4()))
}
