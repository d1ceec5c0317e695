//! Asynchronous Event Requests: the AER commands the host keeps outstanding, the events
//! waiting for one, the masking rule, and the Changed Namespace List.
//!
//! NVMe Base 2.0 §5.2: the host keeps up to AERL+1 AER commands outstanding; the controller
//! completes one per event; after an event of a type is reported, further events of that type
//! are masked until the host reads the log page the event names (without Retain Asynchronous
//! Event). Events that are not enabled in Asynchronous Event Configuration are not reported,
//! but the Changed Namespace List is still kept.

use std::collections::VecDeque;

use lamina_protocol::nvme::{AsyncEvent, Cqe, Status, StatusCode};

use super::Controller;

/// AERL: at most AERL + 1 AER commands outstanding.
pub const AERL: u8 = 3;

/// The Changed Namespace List holds at most this many NSIDs; more is reported as overflow.
pub const CHANGED_NS_MAX: usize = 1024;

/// Controller-side AER state.
#[derive(Debug, Default)]
pub struct AerState {
    outstanding: VecDeque<u16>,
    pending: VecDeque<AsyncEvent>,
    masked_ns: bool,
    masked_discovery: bool,
    changed_ns: Vec<u32>,
    changed_overflow: bool,
}

impl AerState {
    fn is_masked(&self, event: AsyncEvent) -> bool {
        if event == AsyncEvent::NS_CHANGED {
            self.masked_ns
        } else if event == AsyncEvent::DISCOVERY_CHANGED {
            self.masked_discovery
        } else {
            false
        }
    }

    fn mask(&mut self, event: AsyncEvent) {
        if event == AsyncEvent::NS_CHANGED {
            self.masked_ns = true;
        } else if event == AsyncEvent::DISCOVERY_CHANGED {
            self.masked_discovery = true;
        }
    }

    /// Pairs pending events with outstanding commands.
    fn drain(&mut self) -> Vec<(u16, AsyncEvent)> {
        let mut out = Vec::new();
        while !self.outstanding.is_empty() && !self.pending.is_empty() {
            if let (Some(cid), Some(ev)) = (self.outstanding.pop_front(), self.pending.pop_front())
            {
                out.push((cid, ev));
            }
        }
        out
    }
}

impl Controller {
    /// Parks an AER command; `Err` with the status to complete it with when over the limit.
    pub fn submit_aer(&self, cid: u16) -> Result<(), Status> {
        let ready = {
            let mut s = self.aer.lock();
            if s.outstanding.len() > usize::from(AERL) {
                return Err(Status::dnr(StatusCode::ASYNC_EVENT_LIMIT_EXCEEDED));
            }
            s.outstanding.push_back(cid);
            s.drain()
        };
        self.complete_aers(ready);
        Ok(())
    }

    /// Drops the outstanding AER with `cid`, if there is one: a host that submits a command
    /// with the CID of an outstanding AER has given that AER up (SPDK's initiator aborts its
    /// AERs locally when it detaches, then reuses their CIDs). Whether there was one.
    pub fn abandon_aer(&self, cid: u16) -> bool {
        let mut s = self.aer.lock();
        let before = s.outstanding.len();
        s.outstanding.retain(|c| *c != cid);
        s.outstanding.len() != before
    }

    /// Records that namespace `nsid` changed and reports it if enabled and not masked.
    pub fn on_namespace_changed(&self, nsid: u32) {
        let enabled = self.features().async_event_config
            & lamina_protocol::nvme::features::AsyncEventConfig::NS_ATTRIBUTE
            != 0;
        let ready = {
            let mut s = self.aer.lock();
            if !s.changed_ns.contains(&nsid) {
                if s.changed_ns.len() >= CHANGED_NS_MAX {
                    s.changed_overflow = true;
                } else {
                    s.changed_ns.push(nsid);
                }
            }
            Self::queue_event(&mut s, enabled, AsyncEvent::NS_CHANGED)
        };
        self.complete_aers(ready);
    }

    /// Records that the discovery log page changed and reports it if enabled and not masked.
    pub fn on_discovery_changed(&self) {
        let enabled = self.features().async_event_config
            & lamina_protocol::nvme::features::AsyncEventConfig::DISCOVERY_LOG_CHANGE
            != 0;
        let ready = {
            let mut s = self.aer.lock();
            Self::queue_event(&mut s, enabled, AsyncEvent::DISCOVERY_CHANGED)
        };
        self.complete_aers(ready);
    }

    fn queue_event(s: &mut AerState, enabled: bool, event: AsyncEvent) -> Vec<(u16, AsyncEvent)> {
        if enabled && !s.is_masked(event) && !s.pending.contains(&event) {
            s.pending.push_back(event);
        }
        s.drain()
    }

    /// The Changed Namespace List; unless `retain`, reading clears it and unmasks the notice.
    pub fn take_changed_namespaces(&self, retain: bool) -> (Vec<u32>, bool) {
        let mut s = self.aer.lock();
        let list = (s.changed_ns.clone(), s.changed_overflow);
        if !retain {
            s.changed_ns.clear();
            s.changed_overflow = false;
            s.masked_ns = false;
        }
        list
    }

    /// Unmasks the discovery change notice after the host read the discovery log page.
    pub fn on_discovery_log_read(&self, retain: bool) {
        if !retain {
            self.aer.lock().masked_discovery = false;
        }
    }

    /// AER commands outstanding now.
    pub fn outstanding_aers(&self) -> usize {
        self.aer.lock().outstanding.len()
    }

    fn complete_aers(&self, ready: Vec<(u16, AsyncEvent)>) {
        for (cid, event) in ready {
            self.aer.lock().mask(event);
            let mut cqe = Cqe::new(cid, Status::SUCCESS);
            cqe.dw0 = event.to_dw0();
            self.send_oob(cqe);
        }
    }
}
