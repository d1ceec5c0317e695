//! What a queue core reports, turned into the transport's counters
//! (`lamina_nvmf_tcp_*` metrics) and rate-limited log lines.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use lamina_protocol::target::Observer;
use lamina_protocol::tcp::{Fes, PduType};

use crate::logs::telemetry::ViolationLog;
use crate::plane::stats::TransportStats;

/// The observer of one connection's queue core.
#[derive(Debug)]
pub struct ConnObserver {
    stats: Arc<TransportStats>,
    violations: ViolationLog,
}

impl ConnObserver {
    /// Counts into `stats`.
    pub fn new(stats: Arc<TransportStats>) -> Self {
        Self {
            stats,
            violations: ViolationLog::default(),
        }
    }
}

impl Observer for ConnObserver {
    fn pdu_received(&mut self, pdu_type: PduType) {
        self.stats.on_pdu_rx(pdu_type.0);
    }

    fn pdu_sent(&mut self, pdu_type: PduType) {
        self.stats.on_pdu_tx(pdu_type.0);
    }

    fn header_digest_error(&mut self) {
        self.stats
            .header_digest_errors
            .fetch_add(1, Ordering::Relaxed);
    }

    fn data_digest_error(&mut self, pdu_type: PduType, cid: u16) {
        self.stats
            .data_digest_errors
            .fetch_add(1, Ordering::Relaxed);
        crate::violation!(
            self.violations,
            cid,
            ?pdu_type,
            "data digest error: completing the command with Transient Transport Error"
        );
    }

    fn term_req_sent(&mut self, fes: Fes) {
        self.stats.on_term_req(fes.0);
    }
}
