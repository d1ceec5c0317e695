//! Every metric Lamina exposes: name, type, help and label names, in one table.
//!
//! The collector builds its families only from these definitions and registers their
//! descriptors, and the tests check that each one is exposed with its type and labels and that
//! nothing outside the table is; the module documentation of `crate::observe::metrics` lists them for
//! operators (a test checks that too).

/// A metric's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic, ends in `_total`.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Buckets, sum and count.
    Histogram,
}

impl Kind {
    /// The name in the text format's `# TYPE` line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// One metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDef {
    /// Full name, `lamina_` prefixed.
    pub name: &'static str,
    /// The `# HELP` text.
    pub help: &'static str,
    /// Its type.
    pub kind: Kind,
    /// Label names, in order.
    pub labels: &'static [&'static str],
}

macro_rules! metrics {
    ($( $(#[$m:meta])* $id:ident: $kind:ident $name:literal [$($label:literal),*] $help:literal; )*) => {
        $( $(#[$m])* pub const $id: MetricDef = MetricDef {
            name: $name,
            help: $help,
            kind: Kind::$kind,
            labels: &[$($label),*],
        }; )*
        /// Every metric, in documentation order.
        pub const CATALOG: &[MetricDef] = &[$($id),*];
    };
}

metrics! {
    /// Build information.
    BUILD_INFO: Gauge "lamina_build_info" ["version", "git_commit"]
        "Lamina build information; always 1";
    /// Whether per-command counters are on.
    IO_STATS_ENABLED: Gauge "lamina_io_stats_enabled" []
        "1 when per-command counters are kept, 0 when the io_stats setting turned them off";

    /// Namespaces per subsystem.
    SUBSYSTEM_NAMESPACES: Gauge "lamina_subsystem_namespaces" ["subsystem"]
        "Namespaces in the subsystem";
    /// Controllers per subsystem.
    CONTROLLERS: Gauge "lamina_controllers" ["subsystem"]
        "NVMe controllers connected to the subsystem";
    /// Admin commands per subsystem.
    ADMIN_COMMANDS: Counter "lamina_admin_commands_total" ["subsystem"]
        "Admin commands submitted to controllers of the subsystem";

    /// Namespace identity.
    NAMESPACE_INFO: Gauge "lamina_namespace_info" ["subsystem", "nsid", "bdev", "uuid"]
        "Namespace of a subsystem with its backing bdev and that bdev's UUID (for an lvol, the uuid label of its lamina_lvol_* series); always 1";
    /// Namespace size.
    NAMESPACE_SIZE: Gauge "lamina_namespace_size_bytes" ["subsystem", "nsid"]
        "Size of the namespace";
    /// I/O commands completed.
    COMMANDS: Counter "lamina_commands_total" ["subsystem", "nsid", "opcode"]
        "I/O commands completed (failed ones included), by opcode class";
    /// I/O command latency.
    COMMAND_DURATION: Histogram "lamina_command_duration_seconds" ["subsystem", "nsid", "opcode"]
        "Time from command dispatch to completion, by opcode class";
    /// I/O command failures.
    COMMAND_ERRORS: Counter "lamina_command_errors_total" ["subsystem", "nsid", "status"]
        "I/O commands completed with an error, by NVMe status";
    /// Bytes read by hosts.
    READ_BYTES: Counter "lamina_read_bytes_total" ["subsystem", "nsid"]
        "Bytes read by hosts";
    /// Bytes written by hosts.
    WRITTEN_BYTES: Counter "lamina_written_bytes_total" ["subsystem", "nsid"]
        "Bytes written by hosts";
    /// I/O commands in flight.
    COMMANDS_IN_FLIGHT: Gauge "lamina_commands_in_flight" ["subsystem", "nsid"]
        "I/O commands executing against the namespace now";

    /// Open TCP connections.
    CONNECTIONS: Gauge "lamina_connections" []
        "NVMe/TCP connections open";
    /// Accepted TCP connections.
    CONNECTIONS_ACCEPTED: Counter "lamina_connections_accepted_total" []
        "NVMe/TCP connections accepted";
    /// Open queues.
    QUEUES: Gauge "lamina_queues" ["type"]
        "Queues bound to a controller, by type (admin, io)";
    /// Keep-alive expiries.
    KEEP_ALIVE_EXPIRIES: Counter "lamina_keep_alive_expiries_total" []
        "Controllers torn down because the host sent nothing for the keep-alive timeout";
    /// TermReqs sent.
    TERM_REQS_SENT: Counter "lamina_term_reqs_sent_total" ["fes"]
        "C2HTermReq PDUs sent (the connection then closes), by Fatal Error Status";
    /// Connections refused at accept.
    CONNECTIONS_REFUSED: Counter "lamina_connections_refused_total" ["reason"]
        "NVMe/TCP connections closed at accept because a limit was full of connected queues, by limit (total, per_source)";
    /// Unconnected connections evicted.
    CONNECTIONS_EVICTED: Counter "lamina_connections_evicted_total" []
        "NVMe/TCP connections closed before their Connect to make room for new ones";
    /// Connect timeouts.
    CONNECT_TIMEOUTS: Counter "lamina_connect_timeouts_total" []
        "NVMe/TCP connections closed for not completing ICReq and Connect within the connect timeout";
    /// Unconnected connections.
    CONNECTIONS_UNCONNECTED: Gauge "lamina_connections_unconnected" []
        "NVMe/TCP connections that have not completed a Fabrics Connect yet";
    /// Panics caught.
    CONNECTION_PANICS: Counter "lamina_connection_panics_total" []
        "Connection tasks that panicked (the connection was closed, the target went on)";
    /// Zero-copy sends completed.
    ZERO_COPY_SENDS: Counter "lamina_zero_copy_sends_total" ["outcome"]
        "MSG_ZEROCOPY sends the kernel completed, by outcome (zero_copy: sent from the buffer itself; copied: the kernel copied it after all, as over loopback)";
    /// Digest errors.
    DIGEST_ERRORS: Counter "lamina_digest_errors_total" ["type"]
        "PDUs received with a wrong CRC32C digest, by digest (header, data)";
    /// DH-HMAC-CHAP transactions.
    AUTHENTICATIONS: Counter "lamina_authentications_total" ["result"]
        "DH-HMAC-CHAP transactions finished on a queue, by result (success, or why it failed: bad_response, host_refused, unusable, protocol, timeout, keys)";
    /// TLS handshakes.
    TLS_HANDSHAKES: Counter "lamina_tls_handshakes_total" ["result"]
        "TLS handshakes on secure-channel ports, by result (success, or why one failed: not_tls, bad_identity, generated_psk, unknown_identity, wrong_psk, keys, handshake, timeout)";
    /// PDUs received.
    PDUS_RECEIVED: Counter "lamina_pdus_received_total" ["type"]
        "NVMe/TCP PDUs received, by PDU type";
    /// PDUs sent.
    PDUS_SENT: Counter "lamina_pdus_sent_total" ["type"]
        "NVMe/TCP PDUs sent, by PDU type";

    /// Lvstore identity.
    LVSTORE_INFO: Gauge "lamina_lvstore_info" ["lvstore", "uuid", "bdev"]
        "Lvstore with its UUID and base bdev; always 1";
    /// Lvstore data clusters.
    LVSTORE_CLUSTERS: Gauge "lamina_lvstore_data_clusters" ["lvstore"]
        "Clusters of the lvstore available to lvols (metadata excluded)";
    /// Lvstore free clusters.
    LVSTORE_FREE_CLUSTERS: Gauge "lamina_lvstore_free_clusters" ["lvstore"]
        "Clusters of the lvstore not allocated to any lvol";
    /// Lvstore cluster size.
    LVSTORE_CLUSTER_SIZE: Gauge "lamina_lvstore_cluster_size_bytes" ["lvstore"]
        "Cluster size of the lvstore";
    /// Lvstore capacity.
    LVSTORE_SIZE: Gauge "lamina_lvstore_size_bytes" ["lvstore"]
        "Capacity of the lvstore available to lvols (data clusters times cluster size)";
    /// Lvstore free space.
    LVSTORE_FREE: Gauge "lamina_lvstore_free_bytes" ["lvstore"]
        "Free space of the lvstore (free clusters times cluster size)";
    /// Lvols per lvstore.
    LVSTORE_LVOLS: Gauge "lamina_lvstore_lvols" ["lvstore"]
        "Lvols in the lvstore, snapshots and clones included";

    /// Lvol size.
    LVOL_SIZE: Gauge "lamina_lvol_size_bytes" ["lvstore", "lvol", "uuid"]
        "Size of the lvol as hosts see it";
    /// Lvol allocated clusters.
    LVOL_ALLOCATED_CLUSTERS: Gauge "lamina_lvol_allocated_clusters" ["lvstore", "lvol", "uuid"]
        "Clusters the lvol owns (for a thin lvol, what it has written so far)";
    /// Lvol allocated bytes.
    LVOL_ALLOCATED: Gauge "lamina_lvol_allocated_bytes" ["lvstore", "lvol", "uuid"]
        "Space the lvol owns in its lvstore (allocated clusters times cluster size)";
    /// Lvol thin flag.
    LVOL_THIN: Gauge "lamina_lvol_thin_provisioned" ["lvstore", "lvol", "uuid"]
        "1 when the lvol is thin-provisioned";
    /// Lvol snapshot flag.
    LVOL_SNAPSHOT: Gauge "lamina_lvol_snapshot" ["lvstore", "lvol", "uuid"]
        "1 when the lvol is a snapshot";
    /// Lvol clone flag.
    LVOL_CLONE: Gauge "lamina_lvol_clone" ["lvstore", "lvol", "uuid"]
        "1 when the lvol is a clone of a snapshot";
    /// Lvol read-only flag.
    LVOL_READ_ONLY: Gauge "lamina_lvol_read_only" ["lvstore", "lvol", "uuid"]
        "1 when the lvol refuses writes (snapshots, read-only lvols)";

    /// Pending configuration entries.
    CONFIG_PENDING: Gauge "lamina_config_pending_entries" []
        "Configuration entries not applied yet (a device missing at start-up): kept in lamina.json, retried, and holding /readyz at 503";

    /// RPC calls.
    RPC_REQUESTS: Counter "lamina_rpc_requests_total" ["method", "result"]
        "JSON-RPC calls answered, by method and result (ok, error)";
    /// RPC latency.
    RPC_DURATION: Histogram "lamina_rpc_request_duration_seconds" ["method"]
        "Time to answer a JSON-RPC call, by method";
}

/// The definition of `name`, if it is one of Lamina's.
pub fn find(name: &str) -> Option<&'static MetricDef> {
    CATALOG.iter().find(|d| d.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_rules() {
        let mut names: Vec<&str> = CATALOG.iter().map(|d| d.name).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate metric name");
        for d in CATALOG {
            assert!(d.name.starts_with("lamina_"), "{}", d.name);
            assert!(
                d.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()),
                "{}",
                d.name
            );
            assert_eq!(
                d.kind == Kind::Counter,
                d.name.ends_with("_total"),
                "only counters end in _total: {}",
                d.name
            );
            for suffix in ["_bucket", "_count", "_sum"] {
                assert!(!d.name.ends_with(suffix), "{}", d.name);
            }
            assert!(!d.help.is_empty());
            assert!(!d.labels.contains(&"le"));
            for banned in ["cid", "lba", "port", "cntlid", "peer"] {
                assert!(!d.labels.contains(&banned), "unbounded label {banned}");
            }
        }
    }
}
