//! Target-wide NVMe/TCP transport counters: connections and queues open, keep-alive expiries,
//! C2HTermReqs sent by Fatal Error Status, digest errors, and PDUs by type and direction.
//!
//! PDU types are counted per direction the protocol allows: even types travel host to
//! controller (ICReq, H2CTermReq, CapsuleCmd, H2CData), odd ones controller to host (ICResp,
//! C2HTermReq, CapsuleResp, C2HData, R2T); anything else lands in an `other` slot, so the label
//! set stays fixed whatever a peer sends. PDU counts, bumped twice per command by every
//! connection, are sharded per thread (see [`super::shard`]); the rest changes per connection
//! or per error and stays plain.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use lamina_protocol::tcp::{Fes, PduType};

use super::shard::Sharded;

/// PDU types a target receives, with their label; the next slot is `other`.
pub const RX_PDU_TYPES: [(PduType, &str); 4] = [
    (PduType::IC_REQ, "ic_req"),
    (PduType::H2C_TERM_REQ, "h2c_term_req"),
    (PduType::CAPSULE_CMD, "capsule_cmd"),
    (PduType::H2C_DATA, "h2c_data"),
];

/// PDU types a target sends, with their label; the next slot is `other`.
pub const TX_PDU_TYPES: [(PduType, &str); 5] = [
    (PduType::IC_RESP, "ic_resp"),
    (PduType::C2H_TERM_REQ, "c2h_term_req"),
    (PduType::CAPSULE_RESP, "capsule_resp"),
    (PduType::C2H_DATA, "c2h_data"),
    (PduType::R2T, "r2t"),
];

/// Fatal Error Statuses of NVMe/TCP 1.0 with their label; the next slot is `other`.
pub const FES_LABELS: [(Fes, &str); 6] = [
    (Fes::INVALID_HEADER_FIELD, "invalid_header_field"),
    (Fes::PDU_SEQUENCE_ERROR, "pdu_sequence_error"),
    (Fes::HEADER_DIGEST_ERROR, "header_digest_error"),
    (Fes::DATA_OUT_OF_RANGE, "data_out_of_range"),
    (Fes::DATA_LIMIT_EXCEEDED, "data_limit_exceeded"),
    (Fes::UNSUPPORTED_PARAMETER, "unsupported_parameter"),
];

/// The label of values outside the tables above.
pub const OTHER: &str = "other";

/// Number of PDU type slots counted per direction (the larger table plus `other`).
pub const PDU_TYPES: usize = TX_PDU_TYPES.len() + 1;
/// Number of FES slots counted (the defined ones plus `other`).
pub const FES_SLOTS: usize = FES_LABELS.len() + 1;

/// PDU counts of one shard.
#[derive(Debug, Default)]
struct PduCounts {
    rx: [AtomicU64; PDU_TYPES],
    tx: [AtomicU64; PDU_TYPES],
}

/// Target-wide transport counters.
#[derive(Debug, Default)]
pub struct TransportStats {
    /// TCP connections open.
    pub connections: AtomicI64,
    /// Connections accepted since start.
    pub connections_total: AtomicU64,
    /// Admin queues open.
    pub admin_queues: AtomicI64,
    /// I/O queues open.
    pub io_queues: AtomicI64,
    /// Admin queues bound (Connect succeeded) since start.
    pub admin_queues_total: AtomicU64,
    /// I/O queues bound since start.
    pub io_queues_total: AtomicU64,
    /// Controllers torn down by keep-alive timeout.
    pub kato_expiries: AtomicU64,
    /// Header digest errors.
    pub header_digest_errors: AtomicU64,
    /// Data digest errors.
    pub data_digest_errors: AtomicU64,
    /// Connection tasks that panicked (caught; the connection closed).
    pub connection_panics: AtomicU64,
    /// Zero-copy sends the kernel completed without copying.
    pub zero_copy_sends: AtomicU64,
    /// Zero-copy sends the kernel completed by copying after all (loopback, or a device
    /// without scatter-gather).
    pub zero_copy_copied: AtomicU64,
    term_reqs: [AtomicU64; FES_SLOTS],
    /// DH-HMAC-CHAP results: success, then each failure reason of [`AUTH_RESULTS`].
    auth: [AtomicU64; AUTH_RESULTS.len()],
    /// TLS handshakes: success, then each failure reason of [`TLS_RESULTS`].
    tls: [AtomicU64; TLS_RESULTS.len()],
    pdus: Sharded<PduCounts>,
}

/// The `result` labels of DH-HMAC-CHAP transactions: `success` first, then the failure
/// reasons.
pub const AUTH_RESULTS: [&str; 7] = [
    "success",
    "bad_response",
    "host_refused",
    "unusable",
    "protocol",
    "timeout",
    "keys",
];

/// The `result` labels of TLS handshakes: `success` first, then why one failed (`not_tls`: a
/// clear-text connection on a TLS port; the PSK identity's problems, as
/// `crate::plane::tls::Refusal` labels them; `handshake`: anything else TLS refused,
/// such as a wrong key; `timeout`).
pub const TLS_RESULTS: [&str; 9] = [
    "success",
    "not_tls",
    "bad_identity",
    "generated_psk",
    "unknown_identity",
    "wrong_psk",
    "keys",
    "handshake",
    "timeout",
];

/// Counts `result` in the counter of its label in `labels` (an unknown label: the first).
fn count_result(labels: &[&str], counters: &[AtomicU64], result: &str) {
    let i = labels.iter().position(|r| *r == result).unwrap_or(0);
    if let Some(c) = counters.get(i) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Each label with its counter's value.
fn results(labels: &[&'static str], counters: &[AtomicU64]) -> Vec<(&'static str, u64)> {
    labels
        .iter()
        .zip(counters)
        .map(|(l, c)| (*l, c.load(Ordering::Relaxed)))
        .collect()
}

fn slot<T: PartialEq>(table: &[(T, &str)], value: &T) -> usize {
    table
        .iter()
        .position(|(t, _)| t == value)
        .unwrap_or(table.len())
}

fn labelled<T>(
    table: &[(T, &'static str)],
    counts: impl IntoIterator<Item = u64>,
) -> Vec<(&'static str, u64)> {
    table
        .iter()
        .map(|(_, l)| *l)
        .chain([OTHER])
        .zip(counts)
        .collect()
}

/// Per-slot sums over the shards of one direction.
fn summed<'a>(shards: impl Iterator<Item = &'a [AtomicU64; PDU_TYPES]>) -> [u64; PDU_TYPES] {
    let mut sum = [0u64; PDU_TYPES];
    for shard in shards {
        for (total, c) in sum.iter_mut().zip(shard) {
            *total = total.wrapping_add(c.load(Ordering::Relaxed));
        }
    }
    sum
}

impl TransportStats {
    /// Counts a DH-HMAC-CHAP transaction by result (a label of [`AUTH_RESULTS`]).
    pub fn on_authentication(&self, result: &str) {
        count_result(&AUTH_RESULTS, &self.auth, result);
    }

    /// DH-HMAC-CHAP results by label.
    pub fn authentications(&self) -> Vec<(&'static str, u64)> {
        results(&AUTH_RESULTS, &self.auth)
    }

    /// Counts a TLS handshake by result (a label of [`TLS_RESULTS`]).
    pub fn on_tls_handshake(&self, result: &str) {
        count_result(&TLS_RESULTS, &self.tls, result);
    }

    /// TLS handshake results by label.
    pub fn tls_handshakes(&self) -> Vec<(&'static str, u64)> {
        results(&TLS_RESULTS, &self.tls)
    }

    /// Counts a C2HTermReq sent with `fes`.
    pub fn on_term_req(&self, fes: u16) {
        if let Some(c) = self.term_reqs.get(slot(&FES_LABELS, &Fes(fes))) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a PDU received (skipped while counting is off).
    pub fn on_pdu_rx(&self, pdu_type: u8) {
        if !super::is_counting() {
            return;
        }
        let shard = self.pdus.local();
        if let Some(c) = shard.and_then(|s| s.rx.get(slot(&RX_PDU_TYPES, &PduType(pdu_type)))) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a PDU sent (skipped while counting is off).
    pub fn on_pdu_tx(&self, pdu_type: u8) {
        if !super::is_counting() {
            return;
        }
        let shard = self.pdus.local();
        if let Some(c) = shard.and_then(|s| s.tx.get(slot(&TX_PDU_TYPES, &PduType(pdu_type)))) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// C2HTermReqs sent, per FES label (the defined ones, then `other`).
    pub fn term_reqs(&self) -> Vec<(&'static str, u64)> {
        labelled(
            &FES_LABELS,
            self.term_reqs.iter().map(|c| c.load(Ordering::Relaxed)),
        )
    }

    /// PDUs received, per type label (host-to-controller types, then `other`).
    pub fn pdus_received(&self) -> Vec<(&'static str, u64)> {
        labelled(&RX_PDU_TYPES, summed(self.pdus.iter().map(|s| &s.rx)))
    }

    /// PDUs sent, per type label (controller-to-host types, then `other`).
    pub fn pdus_sent(&self) -> Vec<(&'static str, u64)> {
        labelled(&TX_PDU_TYPES, summed(self.pdus.iter().map(|s| &s.tx)))
    }

    /// PDUs received and sent per PDU type code `0..=9` (`(code, received, sent)`), for tests
    /// and tools that think in codes; a code counts in the direction the protocol allows it.
    pub fn pdus(&self) -> Vec<(usize, u64, u64)> {
        let (rx, tx) = (self.pdus_received(), self.pdus_sent());
        let find = |table: &[(PduType, &str)], counts: &[(&str, u64)], code: u8| {
            table
                .iter()
                .position(|(t, _)| t.0 == code)
                .and_then(|i| counts.get(i))
                .map_or(0, |(_, n)| *n)
        };
        (0..=PduType::R2T.0)
            .map(|code| {
                (
                    usize::from(code),
                    find(&RX_PDU_TYPES, &rx, code),
                    find(&TX_PDU_TYPES, &tx, code),
                )
            })
            .collect()
    }

    /// Reads a gauge, never below zero (a racing decrement can show -1 for an instant).
    pub fn gauge(g: &AtomicI64) -> i64 {
        g.load(Ordering::Relaxed).max(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(v: &[(&str, u64)], label: &str) -> u64 {
        v.iter().find(|(l, _)| *l == label).unwrap().1
    }

    #[test]
    fn pdus_by_direction_and_type() {
        let s = TransportStats::default();
        s.on_pdu_rx(PduType::CAPSULE_CMD.0);
        s.on_pdu_rx(PduType::CAPSULE_CMD.0);
        s.on_pdu_rx(PduType::CAPSULE_RESP.0); // wrong direction: other
        s.on_pdu_rx(0xEE);
        s.on_pdu_tx(PduType::R2T.0);
        let rx = s.pdus_received();
        assert_eq!(rx.len(), RX_PDU_TYPES.len() + 1);
        assert_eq!(get(&rx, "capsule_cmd"), 2);
        assert_eq!(get(&rx, OTHER), 2);
        assert_eq!(get(&s.pdus_sent(), "r2t"), 1);
        let by_code = s.pdus();
        assert_eq!(by_code.len(), 10);
        assert_eq!(by_code[usize::from(PduType::CAPSULE_CMD.0)], (4, 2, 0));
        assert_eq!(by_code[usize::from(PduType::R2T.0)], (9, 0, 1));
    }

    #[test]
    fn term_reqs_by_fes() {
        let s = TransportStats::default();
        s.on_term_req(Fes::HEADER_DIGEST_ERROR.0);
        s.on_term_req(0);
        s.on_term_req(0x99);
        let t = s.term_reqs();
        assert_eq!(get(&t, "header_digest_error"), 1);
        assert_eq!(get(&t, OTHER), 2);
        assert_eq!(get(&t, "pdu_sequence_error"), 0);
    }

    #[test]
    fn gauges_never_read_negative() {
        let g = AtomicI64::new(-1);
        assert_eq!(TransportStats::gauge(&g), 0);
    }
}
