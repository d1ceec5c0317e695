//! Probe steps on the admin queue: Identify (CNS 01h, 00h, 02h, 03h, 06h), log pages (with an
//! offset read checked against a whole read), Get/Set Features and Keep Alive.

use lamina_protocol::nvme::features::{AsyncEventConfig, FeatureId, NumberOfQueues};
use lamina_protocol::nvme::identify::{Cns, NsIdDescriptor};
use lamina_protocol::nvme::log_page::LogPageId;

use super::{ProbeArgs, Step, StepContext, ensure, ok};
use crate::host::Controller;

pub(crate) async fn run(ctrl: &Controller, args: &ProbeArgs) -> Step {
    identify(ctrl, args).await?;
    log_pages(ctrl).await?;
    features(ctrl).await?;
    ctrl.keep_alive().await.step("keep alive")?;
    ok("Keep Alive");
    Ok(())
}

async fn identify(ctrl: &Controller, args: &ProbeArgs) -> Step {
    identify_controller(ctrl).await?;
    identify_namespace(ctrl, args).await?;
    identify_lists(ctrl, args).await
}

async fn identify_controller(ctrl: &Controller) -> Step {
    let id = ctrl
        .identify_controller()
        .await
        .step("identify controller")?;
    ok(format_args!(
        "Identify Controller: MN '{}' SN '{}' FR '{}' CNTLID {:#x} VER {:#x} MDTS {} MAXCMD {} NN {} ONCS {:#x} OAES {:#x} SGLS {:#x} IOCCSZ {} IORCSZ {} ICDOFF {} MSDBD {} KAS {} CNTRLTYPE {}",
        id.model_number,
        id.serial_number,
        id.firmware_revision,
        id.cntlid,
        id.ver,
        id.mdts,
        id.maxcmd,
        id.nn,
        id.oncs,
        id.oaes,
        id.sgls,
        id.ioccsz,
        id.iorcsz,
        id.icdoff,
        id.msdbd,
        id.kas,
        id.cntrltype
    ));
    ensure(id.cntlid == ctrl.cntlid(), "identify controller", || {
        format!("CNTLID {:#x} != {:#x}", id.cntlid, ctrl.cntlid())
    })?;
    ensure(
        id.sqes == 0x66 && id.cqes == 0x44,
        "identify controller",
        || format!("SQES {:#x} CQES {:#x}", id.sqes, id.cqes),
    )?;
    Ok(())
}

async fn identify_namespace(ctrl: &Controller, args: &ProbeArgs) -> Step {
    let ns = ctrl
        .identify_namespace(args.nsid)
        .await
        .step("identify namespace")?;
    let lbaf = ns.current_format().copied().unwrap_or_default();
    ok(format_args!(
        "Identify Namespace {}: NSZE {} NCAP {} NUSE {} FLBAS {:#x} LBADS {} NSFEAT {:#x} DLFEAT {:#x} NGUID {:02x?}",
        args.nsid, ns.nsze, ns.ncap, ns.nuse, ns.flbas, lbaf.lbads, ns.nsfeat, ns.dlfeat, ns.nguid
    ));
    ensure(
        ns.nsze > 0 && lbaf.block_size().is_some(),
        "identify namespace",
        || "empty namespace or no LBA format".into(),
    )?;
    Ok(())
}

async fn identify_lists(ctrl: &Controller, args: &ProbeArgs) -> Step {
    let list = ctrl
        .active_namespaces(0)
        .await
        .step("active namespace list")?;
    ensure(list.contains(&args.nsid), "active namespace list", || {
        format!("{list:?} lacks {}", args.nsid)
    })?;
    ok(format_args!("Active Namespace ID list (CNS 02h): {list:?}"));
    let descs = ctrl
        .namespace_descriptors(args.nsid)
        .await
        .step("namespace descriptors")?;
    let has_id = descs.iter().any(|d| {
        matches!(
            d,
            NsIdDescriptor::Nguid(_) | NsIdDescriptor::Uuid(_) | NsIdDescriptor::Eui64(_)
        )
    });
    ensure(has_id, "namespace descriptors", || format!("{descs:?}"))?;
    ok(format_args!(
        "Namespace Identification Descriptors (CNS 03h): {descs:?}"
    ));
    // CNS 06h is optional for NVMe 1.3 controllers: a status is acceptable, a broken queue not.
    match ctrl.identify_raw(Cns::CSI_CONTROLLER, 0, 0).await {
        Ok(_) => ok("Identify I/O Command Set Controller (CNS 06h): 4096 bytes"),
        Err(e) if e.status().is_some() => ok(format_args!("Identify CNS 06h answered with {e}")),
        Err(e) => return Err(super::ProbeError::new("identify CNS 06h", e)),
    }
    Ok(())
}

async fn log_pages(ctrl: &Controller) -> Step {
    let all = 0xffff_ffff;
    let smart = ctrl
        .get_log_page(LogPageId::SMART, all, 0, 512, 0, false)
        .await
        .step("SMART log")?;
    ensure(smart.len() == 512, "SMART log", || {
        format!("{} bytes", smart.len())
    })?;
    ok("Get Log Page SMART / Health (512 bytes)");
    let err = ctrl
        .get_log_page(LogPageId::ERROR_INFO, all, 0, 64, 0, false)
        .await
        .step("error log")?;
    ensure(err.len() == 64, "error log", || {
        format!("{} bytes", err.len())
    })?;
    ok("Get Log Page Error Information (one 64-byte entry)");
    let fw = ctrl
        .get_log_page(LogPageId::FIRMWARE_SLOT, all, 0, 512, 0, false)
        .await
        .step("firmware slot log")?;
    let part = ctrl
        .get_log_page(LogPageId::FIRMWARE_SLOT, all, 8, 16, 0, false)
        .await
        .step("firmware slot log at offset 8")?;
    ensure(
        fw.get(8..24) == Some(&part[..]),
        "firmware slot log offset",
        || format!("offset read {:02x?} != {:02x?}", &part[..], fw.get(8..24)),
    )?;
    ok(format_args!(
        "Get Log Page Firmware Slot, and 16 bytes at offset 8 match: {:?}",
        String::from_utf8_lossy(&part[..8])
    ));
    let changed = ctrl
        .get_log_page(LogPageId::CHANGED_NS_LIST, all, 0, 4096, 0, false)
        .await
        .step("changed namespace list")?;
    ok(format_args!(
        "Get Log Page Changed Namespace List ({} bytes)",
        changed.len()
    ));
    let effects = ctrl
        .get_log_page(LogPageId::COMMANDS_EFFECTS, all, 0, 4096, 0, false)
        .await
        .step("commands supported and effects")?;
    ok(format_args!(
        "Get Log Page Commands Supported and Effects ({} bytes)",
        effects.len()
    ));
    Ok(())
}

async fn features(ctrl: &Controller) -> Step {
    let noq = ctrl
        .get_features(FeatureId::NUMBER_OF_QUEUES, 0, 0)
        .await
        .step("get features number of queues")?;
    let noq = NumberOfQueues::from_dword(noq);
    ok(format_args!(
        "Get Features Number of Queues: NSQA {} NCQA {} (0's based)",
        noq.nsq, noq.ncq
    ));
    let kato = ctrl
        .get_features(FeatureId::KEEP_ALIVE_TIMER, 0, 0)
        .await
        .step("get features keep alive timer")?;
    ensure(
        kato == ctrl.options().kato_ms,
        "get features keep alive timer",
        || format!("KATO {kato} ms, Connect asked {}", ctrl.options().kato_ms),
    )?;
    ok(format_args!("Get Features Keep Alive Timer: {kato} ms"));
    ctrl.set_features(
        FeatureId::ASYNC_EVENT_CONFIG,
        AsyncEventConfig::NS_ATTRIBUTE,
        false,
    )
    .await
    .step("set features async event configuration")?;
    let aec = ctrl
        .get_features(FeatureId::ASYNC_EVENT_CONFIG, 0, 0)
        .await
        .step("get features async event configuration")?;
    ensure(
        AsyncEventConfig(aec).contains(AsyncEventConfig::NS_ATTRIBUTE),
        "async event configuration",
        || format!("{aec:#x}"),
    )?;
    ok(format_args!(
        "Set/Get Features Asynchronous Event Configuration: {aec:#x}"
    ));
    let vwc = ctrl
        .get_features(FeatureId::VOLATILE_WRITE_CACHE, 0, 0)
        .await
        .step("get features volatile write cache")?;
    ok(format_args!("Get Features Volatile Write Cache: {vwc:#x}"));
    Ok(())
}
