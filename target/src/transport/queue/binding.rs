//! Binding the queue at Connect: Connect binds it to a controller as its admin queue or one
//! of its I/O queues (the core allows it once, and nothing else before it), and the queue's
//! hold on its controller is released when it ends.

use std::future::Future;

use lamina_protocol::fabrics::{ConnectCommand, ConnectData, ConnectSuccess};
use lamina_protocol::nvme::{Status, StatusCode};
use lamina_protocol::target::{Binding, Command};

use super::{Bound, Completion, Queue, QueueCtx};
use crate::plane::connect::{Joined, connect};

impl<F: Future<Output = Completion> + Send + 'static> Queue<F> {
    pub(super) fn on_connect(&mut self, req: &Command) -> Completion {
        let cid = req.sqe.cid;
        let Ok(cmd) = ConnectCommand::try_from(&req.sqe) else {
            return Completion::error(cid, StatusCode::INVALID_FIELD);
        };
        let data = match ConnectData::decode(&req.data) {
            Ok(d) => d,
            Err(e) => {
                let mut c = Completion::error(cid, StatusCode::CONNECT_INVALID_PARAMETERS);
                if let Some(p) =
                    lamina_protocol::fabrics::ConnectInvalidParameter::from_data_error(&e)
                {
                    c.dw0 = p.dw0();
                } else {
                    c.status = Status::dnr(StatusCode::INVALID_FIELD);
                }
                return c;
            }
        };
        match connect(&self.plane, &cmd, &data, &self.site) {
            Ok((joined, cqe)) => {
                let auth_required =
                    ConnectSuccess::from_cqe(&cqe).authreq & ConnectSuccess::AUTHREQ_ATR != 0;
                self.bind(joined, cmd.sqsize.saturating_add(1), auth_required);
                Completion {
                    dw0: cqe.dw0,
                    ..Completion::ok(cid)
                }
            }
            Err(cqe) => {
                tracing::info!(subnqn = %data.subnqn.as_str(), hostnqn = %data.hostnqn.as_str(),
                    qid = cmd.qid, status = ?cqe.status.code, "connect refused");
                Completion {
                    dw0: cqe.dw0,
                    ..Completion::with_status(cid, cqe.status)
                }
            }
        }
    }

    pub(super) fn bind(&mut self, joined: Joined, sqsize: u16, auth_required: bool) {
        let span = tracing::Span::current();
        let ctrl = joined.controller().clone();
        span.record("cntlid", ctrl.cntlid());
        span.record("hostnqn", ctrl.host().hostnqn.as_str());
        let (qid, token, oob, registration, hold) = match joined {
            Joined::Admin { ctrl, oob, hold } => {
                (0, ctrl.cancel_token().child_token(), Some(oob), None, hold)
            }
            Joined::Io {
                qid,
                registration,
                token,
                hold,
                ..
            } => (qid, token, None, Some(registration), hold),
        };
        span.record("qid", qid);
        self.core.bind(Binding {
            qid,
            sq_entries: sqsize,
            sq_flow_control_disabled: ctrl.sq_flow_control_disabled(),
        });
        let stats = &self.plane.transport_stats;
        let (gauge, total) = if qid == 0 {
            (&stats.admin_queues, &stats.admin_queues_total)
        } else {
            (&stats.io_queues, &stats.io_queues_total)
        };
        crate::plane::stats::gauge_add(gauge, 1);
        total.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if qid == 0 {
            tracing::info!(subnqn = %ctrl.subsystem().nqn(), "host connected: controller created");
        } else {
            tracing::debug!("I/O queue connected");
        }
        let auth = std::sync::Arc::new(crate::plane::auth::QueueAuth::new(
            auth_required,
            crate::plane::auth::step_timeout(ctrl.kato_ms()),
        ));
        ctrl.set_queue_auth(qid, &auth);
        if auth_required {
            self.plane.tracker.spawn(crate::plane::auth::watchdog(
                std::sync::Arc::downgrade(&auth),
                std::sync::Arc::downgrade(&ctrl),
                ctrl.cancel_token().clone(),
                std::sync::Arc::downgrade(&self.plane),
                qid,
            ));
        }
        let ctx = QueueCtx {
            plane: self.plane.clone(),
            ctrl,
            qid,
            max_io_size: self.max_io_size,
            auth,
        };
        self.bound = Some(Bound {
            ctx,
            token,
            oob,
            registration,
            _hold: hold,
        });
    }

    /// Releases the queue's hold on its controller.
    pub fn unbind(&mut self) {
        let Some(b) = self.bound.take() else { return };
        let stats = &self.plane.transport_stats;
        let gauge = if b.ctx.qid == 0 {
            &stats.admin_queues
        } else {
            &stats.io_queues
        };
        crate::plane::stats::gauge_add(gauge, -1);
        let ctrl = &b.ctx.ctrl;
        if b.ctx.qid == 0 {
            if !ctrl.is_torn_down() {
                tracing::info!(
                    "host disconnected: admin queue closed, tearing the controller down"
                );
            }
            ctrl.tear_down();
        } else if let Some(reg) = b.registration {
            ctrl.remove_io_queue(b.ctx.qid, reg);
        }
    }
}
