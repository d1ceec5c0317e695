//! Authentication Send and Authentication Receive on a queue: each feeds the queue's
//! DH-HMAC-CHAP transaction ([`super::session`]) with the host's message or answers with the
//! controller's, reading the host's keys from the keyring when a transaction starts, and
//! counting and logging each transaction that fails.

use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use lamina_protocol::fabrics::dhchap::HostMessage;
use lamina_protocol::fabrics::{AuthReceive, AuthSend};
use lamina_protocol::nvme::{Status, StatusCode};
use zeroize::Zeroizing;

use super::next_seqnum;
use super::session::{self, ChapSecret, Credentials, FailReason, Step};
use crate::plane::command::{After, CommandFuture, Completion, QueueCtx, Request, ready};
use crate::plane::keyring::Key;
use crate::plane::keyring::interchange::KeyKind;

fn chap_secret(key: &Key) -> Result<ChapSecret, String> {
    let secret = key.secret().map_err(|e| e.to_string())?;
    match secret.kind() {
        KeyKind::Dhchap { transform } => Ok(ChapSecret {
            bytes: Zeroizing::new(secret.bytes().to_vec()),
            transform,
        }),
        other @ KeyKind::TlsPsk { .. } => Err(format!("key {} now holds a {other}", key.name())),
    }
}

/// The credentials of the queue's host, read from their key files now (so a rewritten file
/// takes effect at the next authentication).
fn credentials(ctx: &QueueCtx) -> Result<Credentials, String> {
    let ctrl = &ctx.ctrl;
    let hostnqn = ctrl.host().hostnqn.clone();
    let keys = ctrl
        .subsystem()
        .host_keys(&hostnqn)
        .ok_or_else(|| format!("host {hostnqn} is no longer on the allow-list"))?;
    let host = keys
        .dhchap
        .as_deref()
        .ok_or_else(|| format!("host {hostnqn} has no dhchap_key"))?;
    Ok(Credentials {
        host: chap_secret(host)?,
        ctrl: keys.dhchap_ctrlr.as_deref().map(chap_secret).transpose()?,
        hostnqn,
        subnqn: ctrl.subsystem().nqn().to_owned(),
    })
}

fn invalid_field(cid: u16) -> Completion {
    Completion::with_status(cid, Status::dnr(StatusCode::INVALID_FIELD))
}

/// Authentication Send: the host's message goes into the queue's transaction.
pub fn send(ctx: &QueueCtx, req: &Request) -> CommandFuture {
    let cid = req.sqe.cid;
    let Ok(cmd) = AuthSend::try_from(&req.sqe) else {
        return ready(invalid_field(cid));
    };
    if session::check_protocol(cmd.secp, cmd.spsp).is_err()
        || cmd.tl == 0
        || u64::from(cmd.tl) != req.data.len() as u64
    {
        return ready(invalid_field(cid));
    }
    let ctx = ctx.clone();
    let data = req.data.clone();
    // DH arithmetic takes milliseconds: off the connection's thread.
    Box::pin(async move {
        let done = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let message = HostMessage::decode(&data);
            let kind = message_kind(message.as_ref().ok());
            let policy = ctx.plane.subsystems.settings.auth_policy();
            let mut s = ctx.auth.session.lock();
            let before = s.step();
            s.on_send(
                message,
                || credentials(&ctx),
                &policy,
                next_seqnum,
                Instant::now(),
            );
            tracing::debug!(
                qid = ctx.qid,
                message = kind,
                step = s.step().name(),
                took_us = started.elapsed().as_micros(),
                "DH-HMAC-CHAP: authentication send"
            );
            // Success2: the host accepted the controller, the transaction is complete.
            if before == Step::Success2 && s.step() == Step::Completed {
                authenticated(&ctx);
            }
            // Failure2: the host refused the controller; it closes the queue, so do we.
            let refused = s.step() == Step::Failed;
            if refused {
                report_failure(&ctx, s.failure().unwrap_or(FailReason::HostRefused));
            }
            refused
        })
        .await;
        match done {
            Ok(false) => Completion::ok(cid),
            Ok(true) => Completion {
                after: After::CloseQueue,
                ..Completion::ok(cid)
            },
            Err(_) => Completion::error(cid, StatusCode::INTERNAL_ERROR),
        }
    })
}

/// Authentication Receive: the controller's next message. After Failure1 the queue closes.
pub fn receive(ctx: &QueueCtx, req: &Request) -> CommandFuture {
    let cid = req.sqe.cid;
    let Ok(cmd) = AuthReceive::try_from(&req.sqe) else {
        return ready(invalid_field(cid));
    };
    if session::check_protocol(cmd.secp, cmd.spsp).is_err() || cmd.al == 0 || cmd.al != req.c2h_len
    {
        return ready(invalid_field(cid));
    }
    let sent = ctx.auth.session.lock().on_receive(Instant::now());
    tracing::debug!(
        qid = ctx.qid,
        message = sent.message_kind(),
        "DH-HMAC-CHAP: authentication receive"
    );
    let mut buf = BytesMut::new();
    sent.message.encode(&mut buf);
    if buf.len() > cmd.al as usize {
        // Too small for the message (the Linux host gives 4 KiB, more than any needs).
        return ready(invalid_field(cid));
    }
    if sent.authenticated {
        authenticated(ctx);
    }
    if sent.failed {
        let why = ctx
            .auth
            .session
            .lock()
            .failure()
            .unwrap_or(FailReason::Protocol);
        report_failure(ctx, why);
    }
    ready(Completion {
        data: Some(Bytes::from(buf)),
        after: if sent.failed {
            After::CloseQueue
        } else {
            After::Continue
        },
        ..Completion::ok(cid)
    })
}

/// The queue's transaction completed: it takes every command from now on.
fn authenticated(ctx: &QueueCtx) {
    let first = !ctx.auth.authenticated.swap(true, Ordering::AcqRel);
    ctx.plane.transport_stats.on_authentication("success");
    tracing::info!(
        qid = ctx.qid,
        reauthentication = !first,
        "DH-HMAC-CHAP: host authenticated"
    );
}

/// The name of a host message, for the debug log.
fn message_kind(m: Option<&HostMessage>) -> &'static str {
    match m {
        Some(HostMessage::Negotiate(_)) => "negotiate",
        Some(HostMessage::Reply(_)) => "reply",
        Some(HostMessage::Success2 { .. }) => "success2",
        Some(HostMessage::Failure2 { .. }) => "failure2",
        None => "malformed",
    }
}

/// Counts a failed transaction and logs it once, with the peer and never a key.
fn report_failure(ctx: &QueueCtx, why: FailReason) {
    ctx.auth.authenticated.store(false, Ordering::Release);
    ctx.plane.transport_stats.on_authentication(why.label());
    let host = ctx.ctrl.host();
    tracing::warn!(qid = ctx.qid, peer = %host.peer, hostnqn = %host.hostnqn,
        reason = why.label(), "DH-HMAC-CHAP: authentication failed; closing the queue");
}
