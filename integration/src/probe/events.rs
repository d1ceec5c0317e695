//! Probe steps about controller life: an asynchronous event after a namespace change, Fabrics
//! Disconnect of an I/O queue, normal shutdown (CC.SHN, CSTS.SHST), and KATO expiry when the
//! host stops sending Keep Alive.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use lamina_protocol::nvme::AsyncEvent;
use lamina_protocol::nvme::identify::NsIdList;
use lamina_protocol::nvme::log_page::LogPageId;

use super::{ProbeArgs, ProbeError, Step, StepContext, ensure, ok, options};
use crate::host::{Controller, HostError};

/// Arms an AER, runs `command` (which changes a namespace), expects Namespace Attribute
/// Changed and reads the Changed Namespace List.
pub(crate) async fn aen(ctrl: &Controller, command: &str) -> Step {
    let event = ctrl.async_event_request().await.step("AER")?;
    let waiter = tokio::spawn(event);
    let status = tokio::process::Command::new("sh")
        .args(["-c", command])
        .status()
        .await
        .map_err(|e| ProbeError::new("AEN trigger", e))?;
    ensure(status.success(), "AEN trigger", || {
        format!("'{command}' exited with {status}")
    })?;
    let got = tokio::time::timeout(Duration::from_secs(30), waiter)
        .await
        .map_err(|_| ProbeError::new("AEN", "no event within 30 s"))?
        .map_err(|e| ProbeError::new("AEN", e))?
        .step("AEN")?;
    ensure(got == AsyncEvent::NS_CHANGED, "AEN", || format!("{got:?}"))?;
    ok(format_args!("AER completed with {got:?} after '{command}'"));
    let log = ctrl
        .get_log_page(LogPageId::CHANGED_NS_LIST, 0xffff_ffff, 0, 4096, 0, false)
        .await
        .step("changed namespace list")?;
    let list = NsIdList::decode(&log).map_err(|e| ProbeError::new("changed namespace list", e))?;
    ensure(!list.nsids.is_empty(), "changed namespace list", || {
        "empty".into()
    })?;
    ok(format_args!("Changed Namespace List: {:?}", list.nsids));
    Ok(())
}

/// Fabrics Disconnect on the last I/O queue; the other queues must keep working.
pub(crate) async fn disconnect_queue(ctrl: &Controller) -> Step {
    let Some(last) = ctrl.io_queues().last() else {
        return Ok(());
    };
    let qid = last.qid();
    match last.disconnect().await {
        Ok(()) => ok(format_args!("Fabrics Disconnect of I/O queue {qid}")),
        // NVMe-oF 1.1 makes Disconnect optional; Linux nvmet 6.1 does not implement it.
        Err(e @ HostError::Status(_)) => ok(format_args!(
            "Fabrics Disconnect of I/O queue {qid} refused ({e}); connection closed instead"
        )),
        Err(e) => return Err(ProbeError::new("disconnect", e)),
    }
    ensure(
        last.is_closed() || wait_closed(last).await,
        "disconnect",
        || "queue still open".into(),
    )?;
    if ctrl.io_queues().len() > 1 {
        let ns = ctrl.namespace(1).await.step("namespace after disconnect")?;
        let q = ctrl.io_queue(0).step("queue after disconnect")?;
        q.read(&ns, 0, 1, BytesMut::new())
            .await
            .step("read after disconnect")?;
        ok("the other I/O queue still serves reads");
    }
    Ok(())
}

async fn wait_closed(q: &crate::host::Queue) -> bool {
    tokio::time::timeout(Duration::from_secs(5), q.closed())
        .await
        .is_ok()
}

/// Normal shutdown: CC.SHN = 01b, CSTS.SHST polled until complete, connections closed.
pub(crate) async fn shutdown(ctrl: Controller) -> Step {
    let started = Instant::now();
    ctrl.shutdown().await.step("shutdown")?;
    ok(format_args!(
        "shutdown: CSTS.SHST complete after {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    ));
    Ok(())
}

/// A fresh controller with KATO 3 s: alive while Keep Alive runs, torn down by the target
/// once it stops.
pub(crate) async fn kato_expiry(args: &ProbeArgs) -> Step {
    let mut o = options(args)?;
    o.kato_ms = 3000;
    o.io_queues = 1;
    let ctrl = Controller::connect(args.addr, o)
        .await
        .step("KATO connect")?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    ensure(!ctrl.admin().is_closed(), "KATO", || {
        "closed while Keep Alive ran".into()
    })?;
    let sent = ctrl.keep_alives_sent();
    ensure(sent >= 2, "KATO", || format!("{sent} Keep Alive(s) in 5 s"))?;
    ok(format_args!(
        "controller alive after 5 s with KATO 3 s ({sent} Keep Alives sent)"
    ));
    ctrl.set_keep_alive(false);
    let stopped = Instant::now();
    let why = tokio::time::timeout(Duration::from_secs(30), ctrl.admin().closed())
        .await
        .map_err(|_| ProbeError::new("KATO", "target did not act within 30 s of silence"))?;
    ensure(
        matches!(
            why,
            HostError::ConnectionClosed | HostError::Terminated { .. } | HostError::Io { .. }
        ),
        "KATO",
        || format!("admin queue ended with {why}"),
    )?;
    ok(format_args!(
        "Keep Alive stopped: the target closed the admin queue after {:.1} s ({why})",
        stopped.elapsed().as_secs_f64()
    ));
    ctrl.close();
    Ok(())
}
