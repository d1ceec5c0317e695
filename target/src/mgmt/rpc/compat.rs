//! The methods SPDK's `save_config` writes for its framework's other subsystems (`iobuf`,
//! `sock`, `accel`, `bdev` options, `scheduler`, and the NVMe and RAID bdev modules), so a
//! configuration saved by SPDK loads into Lamina with `load_config`.
//!
//! Each is taken with its real meaning where Lamina has one: `sock_impl_set_options` sets the
//! socket buffer sizes and quick-ack of accepted connections (and keeps the TLS
//! implementation's options for when TLS exists), `bdev_wait_for_examine` answers once examine
//! is done (Lamina examines a bdev as it is created, so at once). The rest tune machinery Lamina
//! does not have (shared buffer pools, the accel framework, reactors, NVMe and RAID bdevs): any
//! value means the same to Lamina, and the reason is in each catalogue; switches that would
//! change behaviour Lamina does not provide are accepted only off.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use super::dispatch::{Methods, RpcResult};
use super::error::RpcError;
use super::fields::{Described, Field, Lit, NoParams, Ty, applied, only, same};
use crate::mgmt::context::Target;
use crate::options::SockOptions;

/// Registers the methods.
pub fn register(m: &mut Methods, t: &Arc<Target>) {
    super::reg(m, t, "iobuf_set_options", iobuf_set_options);
    super::reg(m, t, "sock_set_default_impl", sock_set_default_impl);
    super::reg(m, t, "sock_impl_set_options", sock_impl_set_options);
    super::reg(m, t, "accel_set_options", accel_set_options);
    super::reg(m, t, "bdev_set_options", bdev_set_options);
    super::reg(m, t, "bdev_wait_for_examine", bdev_wait_for_examine);
    super::reg(m, t, "framework_set_scheduler", framework_set_scheduler);
    super::reg(m, t, "bdev_nvme_set_options", bdev_nvme_set_options);
    super::reg(m, t, "bdev_nvme_set_hotplug", bdev_nvme_set_hotplug);
    super::reg(m, t, "bdev_raid_set_options", bdev_raid_set_options);
}

/// Why iobuf pool sizes make no difference.
const NO_IOBUF: &str = "Lamina has no shared iobuf pools: data buffers are pooled per queue and \
     grow with its depth";

/// `iobuf_set_options`: every parameter sizes pools Lamina does not have.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IobufOptions {}

impl Described for IobufOptions {
    const FIELDS: &'static [Field] = &[
        same("small_pool_count", Ty::Int, NO_IOBUF),
        same("large_pool_count", Ty::Int, NO_IOBUF),
        same("small_bufsize", Ty::Int, NO_IOBUF),
        same("large_bufsize", Ty::Int, NO_IOBUF),
        same("enable_numa", Ty::Bool, NO_IOBUF),
    ];
}

async fn iobuf_set_options(_t: Arc<Target>, _p: IobufOptions) -> RpcResult {
    Ok(json!(true))
}

/// The socket implementations SPDK names: `posix` is the kernel's TCP sockets (Lamina's),
/// `ssl` SPDK's TLS one.
const POSIX: &str = "posix";
const SSL: &str = "ssl";

/// `sock_set_default_impl`'s parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DefaultImpl {}

impl Described for DefaultImpl {
    const FIELDS: &'static [Field] = &[only(
        "impl_name",
        &[Lit::Str(POSIX)],
        "Lamina's listeners use the kernel's TCP sockets, SPDK's posix implementation",
    )];
}

async fn sock_set_default_impl(_t: Arc<Target>, _p: DefaultImpl) -> RpcResult {
    Ok(json!(true))
}

/// `sock_impl_set_options`' parameters Lamina applies.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImplOptions {
    impl_name: String,
    recv_buf_size: Option<u32>,
    send_buf_size: Option<u32>,
    enable_quickack: Option<bool>,
}

/// Why the zero-copy switches make no difference.
const NO_ZCOPY: &str = "Lamina sends with writev; whether the kernel copies the data is \
     invisible to hosts";

impl Described for ImplOptions {
    const FIELDS: &'static [Field] = &[
        applied("impl_name"),
        applied("recv_buf_size"),
        applied("send_buf_size"),
        same(
            "enable_recv_pipe",
            Ty::Bool,
            "SPDK's receive pipe buffers socket reads in user space; Lamina reads into its \
             queues' own buffers either way",
        ),
        applied("enable_quickack"),
        only(
            "enable_placement_id",
            &[Lit::Int(0)],
            "Lamina does not group connections by NAPI or CPU placement ID",
        ),
        same("enable_zerocopy_send_server", Ty::Bool, NO_ZCOPY),
        same("enable_zerocopy_send_client", Ty::Bool, NO_ZCOPY),
        same("zerocopy_threshold", Ty::Int, NO_ZCOPY),
        only(
            "tls_version",
            &[Lit::Int(0)],
            "TLS is not implemented yet: 0 (the implementation chooses) is the only version",
        ),
        only(
            "enable_ktls",
            &[Lit::Bool(false)],
            "TLS is not implemented yet, so neither is kernel TLS",
        ),
    ];
}

async fn sock_impl_set_options(t: Arc<Target>, p: ImplOptions) -> RpcResult {
    let mut all = t.sock_options.write();
    let opts = match p.impl_name.as_str() {
        POSIX => &mut all.posix,
        // Kept for the TLS listeners Lamina does not have yet, as SPDK keeps them when no
        // listener uses ssl: they take effect with the implementation.
        SSL => &mut all.ssl,
        other => {
            return Err(RpcError::invalid_params(format!(
                "impl_name '{other}': Lamina has the posix (and, for its options, ssl) \
                 implementations"
            )));
        }
    };
    *opts = SockOptions {
        recv_buf_size: p.recv_buf_size.unwrap_or(opts.recv_buf_size),
        send_buf_size: p.send_buf_size.unwrap_or(opts.send_buf_size),
        enable_quickack: p.enable_quickack.unwrap_or(opts.enable_quickack),
    };
    Ok(json!(true))
}

/// Why accel options make no difference.
const NO_ACCEL: &str = "Lamina has no accel framework: CRC32C and copies run inline on the \
     connection's thread";

/// `accel_set_options`: every parameter sizes the accel framework's caches.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccelOptions {}

impl Described for AccelOptions {
    const FIELDS: &'static [Field] = &[
        same("small_cache_size", Ty::Int, NO_ACCEL),
        same("large_cache_size", Ty::Int, NO_ACCEL),
        same("task_count", Ty::Int, NO_ACCEL),
        same("sequence_count", Ty::Int, NO_ACCEL),
        same("buf_count", Ty::Int, NO_ACCEL),
    ];
}

async fn accel_set_options(_t: Arc<Target>, _p: AccelOptions) -> RpcResult {
    Ok(json!(true))
}

/// Why bdev I/O pool sizes make no difference.
const NO_BDEV_IO_POOL: &str = "Lamina keeps no pool of bdev I/O descriptors: a command's state \
     lives in its queue's slot";

/// `bdev_set_options`' parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BdevOptions {}

impl Described for BdevOptions {
    const FIELDS: &'static [Field] = &[
        same("bdev_io_pool_size", Ty::Int, NO_BDEV_IO_POOL),
        same("bdev_io_cache_size", Ty::Int, NO_BDEV_IO_POOL),
        only(
            "bdev_auto_examine",
            &[Lit::Bool(true)],
            "Lamina always examines a new aio bdev for an lvstore",
        ),
        same("iobuf_small_cache_size", Ty::Int, NO_IOBUF),
        same("iobuf_large_cache_size", Ty::Int, NO_IOBUF),
    ];
}

async fn bdev_set_options(_t: Arc<Target>, _p: BdevOptions) -> RpcResult {
    Ok(json!(true))
}

/// Examine runs inside `bdev_aio_create` (an lvstore on the bdev is loaded before it answers),
/// so there is never an examine to wait for.
async fn bdev_wait_for_examine(_t: Arc<Target>, _p: NoParams) -> RpcResult {
    Ok(json!(true))
}

/// Why scheduler options are refused.
const NO_DYNAMIC_SCHEDULER: &str = "Lamina's connections run on tokio's work-stealing \
     runtime; SPDK's dynamic scheduler is not implemented";

/// `framework_set_scheduler`'s parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetScheduler {}

impl Described for SetScheduler {
    const FIELDS: &'static [Field] = &[
        only(
            "name",
            &[Lit::Str("static")],
            "Lamina does not move work between reactors on a schedule (SPDK's static \
             scheduler); tokio balances its worker threads by itself",
        ),
        same(
            "period",
            Ty::Int,
            "the static scheduler has no period to run at",
        ),
        only("load_limit", &[], NO_DYNAMIC_SCHEDULER),
        only("core_limit", &[], NO_DYNAMIC_SCHEDULER),
        only("core_busy", &[], NO_DYNAMIC_SCHEDULER),
        only("mappings", &[], NO_DYNAMIC_SCHEDULER),
    ];
}

async fn framework_set_scheduler(_t: Arc<Target>, _p: SetScheduler) -> RpcResult {
    Ok(json!(true))
}

/// Why NVMe bdev options make no difference.
const NO_NVME_BDEV: &str = "Lamina has no NVMe bdev module yet: no remote or local NVMe \
     controller is ever attached, so these options govern nothing";

/// `bdev_nvme_set_options`: the options of a module Lamina does not have.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NvmeOptions {}

impl Described for NvmeOptions {
    const FIELDS: &'static [Field] = &[
        same("action_on_timeout", Ty::Str, NO_NVME_BDEV),
        same("timeout_us", Ty::Int, NO_NVME_BDEV),
        same("timeout_admin_us", Ty::Int, NO_NVME_BDEV),
        same("keep_alive_timeout_ms", Ty::Int, NO_NVME_BDEV),
        same("arbitration_burst", Ty::Int, NO_NVME_BDEV),
        same("low_priority_weight", Ty::Int, NO_NVME_BDEV),
        same("medium_priority_weight", Ty::Int, NO_NVME_BDEV),
        same("high_priority_weight", Ty::Int, NO_NVME_BDEV),
        same("nvme_adminq_poll_period_us", Ty::Int, NO_NVME_BDEV),
        same("nvme_ioq_poll_period_us", Ty::Int, NO_NVME_BDEV),
        same("io_queue_requests", Ty::Int, NO_NVME_BDEV),
        same("delay_cmd_submit", Ty::Bool, NO_NVME_BDEV),
        same("transport_retry_count", Ty::Int, NO_NVME_BDEV),
        same("bdev_retry_count", Ty::Int, NO_NVME_BDEV),
        same("transport_ack_timeout", Ty::Int, NO_NVME_BDEV),
        same("ctrlr_loss_timeout_sec", Ty::Int, NO_NVME_BDEV),
        same("reconnect_delay_sec", Ty::Int, NO_NVME_BDEV),
        same("fast_io_fail_timeout_sec", Ty::Int, NO_NVME_BDEV),
        same("disable_auto_failback", Ty::Bool, NO_NVME_BDEV),
        same("generate_uuids", Ty::Bool, NO_NVME_BDEV),
        same("transport_tos", Ty::Int, NO_NVME_BDEV),
        same("nvme_error_stat", Ty::Bool, NO_NVME_BDEV),
        same("rdma_srq_size", Ty::Int, NO_NVME_BDEV),
        same("io_path_stat", Ty::Bool, NO_NVME_BDEV),
        same("allow_accel_sequence", Ty::Bool, NO_NVME_BDEV),
        same("rdma_max_cq_size", Ty::Int, NO_NVME_BDEV),
        same("rdma_cm_event_timeout_ms", Ty::Int, NO_NVME_BDEV),
        same("dhchap_digests", Ty::StrList, NO_NVME_BDEV),
        same("dhchap_dhgroups", Ty::StrList, NO_NVME_BDEV),
        same("rdma_umr_per_io", Ty::Bool, NO_NVME_BDEV),
        same("tcp_connect_timeout_ms", Ty::Int, NO_NVME_BDEV),
        same("enable_flush", Ty::Bool, NO_NVME_BDEV),
        same("multipath_opts", Ty::Object, NO_NVME_BDEV),
    ];
}

async fn bdev_nvme_set_options(_t: Arc<Target>, _p: NvmeOptions) -> RpcResult {
    Ok(json!(true))
}

/// `bdev_nvme_set_hotplug`'s parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NvmeHotplug {}

impl Described for NvmeHotplug {
    const FIELDS: &'static [Field] = &[
        only(
            "enable",
            &[Lit::Bool(false)],
            "Lamina does not attach local PCIe NVMe devices, so there is nothing to hot-plug",
        ),
        same("period_us", Ty::Int, NO_NVME_BDEV),
    ];
}

async fn bdev_nvme_set_hotplug(_t: Arc<Target>, _p: NvmeHotplug) -> RpcResult {
    Ok(json!(true))
}

/// Why RAID options make no difference.
const NO_RAID: &str = "Lamina has no RAID bdevs yet, so there is no rebuild to pace";

/// `bdev_raid_set_options`' parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RaidOptions {}

impl Described for RaidOptions {
    const FIELDS: &'static [Field] = &[
        same("process_window_size_kb", Ty::Int, NO_RAID),
        same("process_max_bandwidth_mb_sec", Ty::Int, NO_RAID),
    ];
}

async fn bdev_raid_set_options(_t: Arc<Target>, _p: RaidOptions) -> RpcResult {
    Ok(json!(true))
}
