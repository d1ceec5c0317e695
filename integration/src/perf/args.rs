//! The command line of `lamina-perf` (the flags of issue 8 §1, in the spirit of
//! `spdk_nvme_perf` and fio) and its validation into a [`PerfConfig`].

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use clap::Parser;
use serde::Serialize;

use super::PerfError;
use super::workload::WorkloadKind;

/// `--digest` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DigestKind {
    /// Header digest (HDGST).
    Hdr,
    /// Data digest (DDGST).
    Data,
    /// No digest (the default).
    None,
}

/// NVMe/TCP load generator built on Lamina's host.
#[derive(Debug, Clone, Parser)]
#[command(name = "lamina-perf", version, about)]
pub struct PerfArgs {
    /// Target address (IP or host name, and port).
    #[arg(short = 'a', long = "addr", value_name = "ADDR:PORT")]
    pub addr: String,
    /// Subsystem NQN.
    #[arg(short = 'n', long = "subnqn", value_name = "SUBNQN")]
    pub subnqn: String,
    /// Namespace ID.
    #[arg(long, default_value_t = 1)]
    pub nsid: u32,
    /// Queue depth per connection.
    #[arg(
        short = 'q',
        long = "queue-depth",
        value_name = "N",
        default_value_t = 32
    )]
    pub queue_depth: u16,
    /// I/O size in bytes (suffixes k/K, m/M: binary units), a multiple of the block size.
    #[arg(short = 'o', long = "io-size", value_name = "BYTES", default_value = "4096", value_parser = parse_size)]
    pub io_size: u32,
    /// Workload.
    #[arg(short = 'w', long = "workload", value_enum, default_value = "randread")]
    pub workload: WorkloadKind,
    /// Read percentage for rw / randrw.
    #[arg(short = 'M', long = "read-percent", value_name = "PCT", default_value_t = 50, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub read_percent: u8,
    /// Measured run time in seconds (fractions allowed).
    #[arg(
        short = 't',
        long = "time",
        value_name = "SECS",
        default_value_t = 10.0
    )]
    pub time: f64,
    /// Warm-up before measuring, in seconds (not counted).
    #[arg(long = "warmup", value_name = "SECS", default_value_t = 0.0)]
    pub warmup: f64,
    /// Connections (I/O queues), each with its own TCP connection.
    #[arg(
        short = 'c',
        long = "connections",
        value_name = "N",
        default_value_t = 1
    )]
    pub connections: u16,
    /// Digests to negotiate: hdr, data (comma separated), or none.
    #[arg(
        long = "digest",
        value_enum,
        value_delimiter = ',',
        value_name = "hdr,data"
    )]
    pub digest: Vec<DigestKind>,
    /// Seed of the random offsets and data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Check every read against what was written; every write is read back.
    #[arg(long)]
    pub verify: bool,
    /// Print the results as JSON on stdout (no live line).
    #[arg(long)]
    pub json: bool,
    /// Keep SQ flow control (Connect CATTR bit 2 clear), as `spdk_nvme_perf` does: the target
    /// then answers every read with a response capsule after its data, instead of the C2HData
    /// SUCCESS flag alone.
    #[arg(long)]
    pub sq_flow_control: bool,
    /// Entries per I/O queue (default: queue depth + 1; `spdk_nvme_perf` asks for 128).
    #[arg(long, value_name = "N")]
    pub io_queue_size: Option<u16>,
    /// Host NQN (default: a random `nqn.2014-08.org.nvmexpress:uuid:...`).
    #[arg(long, value_name = "NQN")]
    pub hostnqn: Option<String>,
    /// Connect over TLS 1.3 with the PSK derived from this configured key (a file holding an
    /// `NVMeTLSkey-1:...` key) for --hostnqn and the subsystem.
    #[arg(long, value_name = "FILE", requires = "hostnqn")]
    pub tls_key: Option<std::path::PathBuf>,
    /// PSK identity version with --tls-key: 0 (`NVMe0R0h <host> <subsystem>`) or 1 (with the
    /// PSK digest).
    #[arg(long, value_name = "0|1", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub tls_identity: u8,
    /// Authenticate every queue with DH-HMAC-CHAP with the secret in this file (`DHHC-1:...`).
    #[arg(long, value_name = "FILE", requires = "hostnqn")]
    pub dhchap_key: Option<std::path::PathBuf>,
    /// Check the controller too, against the secret in this file (`DHHC-1:...`).
    #[arg(long, value_name = "FILE", requires = "dhchap_key")]
    pub dhchap_ctrl_key: Option<std::path::PathBuf>,
    /// The hash DH-HMAC-CHAP offers: sha256, sha384 or sha512.
    #[arg(long, value_name = "HASH", default_value = "sha512")]
    pub dhchap_hash: String,
    /// The DH group DH-HMAC-CHAP offers: null, ffdhe2048 ... ffdhe8192.
    #[arg(long, value_name = "GROUP", default_value = "ffdhe2048")]
    pub dhchap_group: String,
}

/// A validated run configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PerfConfig {
    /// Target address.
    pub addr: SocketAddr,
    /// Subsystem NQN.
    pub subnqn: String,
    /// Namespace ID.
    pub nsid: u32,
    /// Queue depth per connection.
    pub queue_depth: u16,
    /// I/O size in bytes.
    pub io_size: u32,
    /// Workload.
    pub workload: WorkloadKind,
    /// Read percentage (100 for reads, 0 for writes).
    pub read_percent: u8,
    /// Measured time.
    #[serde(serialize_with = "as_secs")]
    pub duration: Duration,
    /// Warm-up.
    #[serde(serialize_with = "as_secs")]
    pub warmup: Duration,
    /// Connections.
    pub connections: u16,
    /// Header digest.
    pub header_digest: bool,
    /// Data digest.
    pub data_digest: bool,
    /// Seed.
    pub seed: u64,
    /// Verify reads.
    pub verify: bool,
    /// JSON output.
    pub json: bool,
    /// SQ flow control kept on (CATTR bit 2 clear).
    pub sq_flow_control: bool,
    /// Entries per I/O queue asked for in the Connect.
    pub io_queue_size: u16,
    /// Host NQN, if given.
    pub hostnqn: Option<String>,
    /// The configured TLS key file, if any.
    pub tls_key: Option<std::path::PathBuf>,
    /// The PSK identity version with a TLS key.
    pub tls_identity: u8,
    /// DH-HMAC-CHAP: the host's and the controller's secret files, hash and group names.
    pub dhchap: Option<DhchapFiles>,
}

/// DH-HMAC-CHAP as `lamina-perf` was asked for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DhchapFiles {
    /// The host's secret.
    pub key: std::path::PathBuf,
    /// The controller's secret.
    pub ctrl_key: Option<std::path::PathBuf>,
    /// The hash.
    pub hash: String,
    /// The DH group.
    pub group: String,
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Parses a byte count with an optional k/K/m/M suffix (binary units).
pub fn parse_size(text: &str) -> Result<u32, String> {
    let t = text.trim();
    let (digits, mult) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (t.get(..i).unwrap_or_default(), 1024u64),
        Some((i, 'm' | 'M')) => (t.get(..i).unwrap_or_default(), 1024 * 1024),
        _ => (t, 1),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a size (e.g. 4096, 4k, 1m)"))?;
    u32::try_from(n.saturating_mul(mult))
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("'{text}' is out of range"))
}

fn seconds(what: &str, v: f64) -> Result<Duration, PerfError> {
    Duration::try_from_secs_f64(v)
        .map_err(|_| PerfError::Config(format!("{what} {v} is not a duration")))
}

impl PerfArgs {
    /// Validates the arguments.
    pub fn into_config(self) -> Result<PerfConfig, PerfError> {
        let addr = self
            .addr
            .to_socket_addrs()
            .map_err(|e| PerfError::Config(format!("-a {}: {e}", self.addr)))?
            .next()
            .ok_or_else(|| PerfError::Config(format!("-a {}: no address", self.addr)))?;
        if self.queue_depth == 0 || self.connections == 0 {
            return Err(PerfError::Config("-q and -c must be at least 1".into()));
        }
        let duration = seconds("-t", self.time)?;
        if duration.is_zero() {
            return Err(PerfError::Config("-t must be positive".into()));
        }
        if self.read_percent != 50 && !self.workload.is_mixed() {
            return Err(PerfError::Config(
                "-M applies to -w rw and randrw only".into(),
            ));
        }
        let none = self.digest.contains(&DigestKind::None);
        let hdr = self.digest.contains(&DigestKind::Hdr);
        let data = self.digest.contains(&DigestKind::Data);
        if none && (hdr || data) {
            return Err(PerfError::Config(
                "--digest none excludes hdr and data".into(),
            ));
        }
        let io_queue_size = self
            .io_queue_size
            .unwrap_or(self.queue_depth.saturating_add(1));
        if io_queue_size <= self.queue_depth {
            return Err(PerfError::Config(format!(
                "--io-queue-size {io_queue_size} must exceed -q {} (one entry stays free)",
                self.queue_depth
            )));
        }
        Ok(PerfConfig {
            addr,
            subnqn: self.subnqn,
            nsid: self.nsid,
            queue_depth: self.queue_depth,
            io_size: self.io_size,
            workload: self.workload,
            read_percent: self.workload.read_percent(self.read_percent),
            duration,
            warmup: seconds("--warmup", self.warmup)?,
            connections: self.connections,
            header_digest: hdr,
            data_digest: data,
            seed: self.seed,
            verify: self.verify,
            json: self.json,
            sq_flow_control: self.sq_flow_control,
            io_queue_size,
            hostnqn: self.hostnqn,
            tls_key: self.tls_key,
            tls_identity: self.tls_identity,
            dhchap: self.dhchap_key.map(|key| DhchapFiles {
                key,
                ctrl_key: self.dhchap_ctrl_key,
                hash: self.dhchap_hash,
                group: self.dhchap_group,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<PerfConfig, String> {
        let mut full = vec!["lamina-perf", "-a", "127.0.0.1:4420", "-n", "nqn.x"];
        full.extend_from_slice(args);
        PerfArgs::try_parse_from(full)
            .map_err(|e| e.to_string())?
            .into_config()
            .map_err(|e| e.to_string())
    }

    #[test]
    fn spdk_perf_queue_settings() {
        let c = parse(&["-q", "32", "--sq-flow-control", "--io-queue-size", "128"]).unwrap();
        assert!(c.sq_flow_control);
        assert_eq!(c.io_queue_size, 128);
        let e = parse(&["-q", "32", "--io-queue-size", "32"]).unwrap_err();
        assert!(e.contains("--io-queue-size 32 must exceed -q 32"), "{e}");
    }

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("128k"), Ok(131_072));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert!(parse_size("0").is_err());
        assert!(parse_size("8g").is_err());
        assert!(parse_size("4096m").is_err());
    }

    #[test]
    fn every_issue_flag_is_accepted() {
        let c = parse(&[
            "--nsid", "2", "-q", "8", "-o", "128k", "-w", "rw", "-M", "70", "-t", "1.5",
            "--warmup", "2", "-c", "4", "--digest", "hdr,data", "--seed", "9", "--verify",
            "--json",
        ])
        .unwrap();
        assert_eq!(c.nsid, 2);
        assert_eq!((c.queue_depth, c.io_size, c.connections), (8, 131_072, 4));
        assert_eq!((c.workload, c.read_percent), (WorkloadKind::Rw, 70));
        assert_eq!(c.duration, Duration::from_millis(1500));
        assert_eq!(c.warmup, Duration::from_secs(2));
        assert!(c.header_digest && c.data_digest && c.verify && c.json);
        assert!(!c.sq_flow_control);
        assert_eq!(c.io_queue_size, 9);
        assert_eq!(c.seed, 9);
    }

    #[test]
    fn defaults_and_refusals() {
        let c = parse(&[]).unwrap();
        assert_eq!((c.workload, c.read_percent), (WorkloadKind::Randread, 100));
        assert!(!c.header_digest && !c.data_digest);
        assert!(parse(&["-M", "70"]).is_err(), "-M without a mixed workload");
        assert!(parse(&["-M", "101", "-w", "rw"]).is_err());
        assert!(parse(&["-q", "0"]).is_err());
        assert!(parse(&["-t", "0"]).is_err());
        assert!(parse(&["--digest", "none,hdr"]).is_err());
        assert!(parse(&["-w", "trim"]).is_err());
    }

    #[test]
    fn security_options_need_a_host_nqn() {
        assert!(
            parse(&["--tls-key", "/k"]).is_err(),
            "a PSK is bound to a host NQN"
        );
        assert!(parse(&["--dhchap-key", "/k"]).is_err());
        assert!(parse(&["--hostnqn", "h", "--dhchap-ctrl-key", "/c"]).is_err());
        assert!(parse(&["--hostnqn", "h", "--tls-key", "/k", "--tls-identity", "2"]).is_err());
        let c = parse(&[
            "--hostnqn",
            "h",
            "--tls-key",
            "/k",
            "--tls-identity",
            "1",
            "--dhchap-key",
            "/d",
            "--dhchap-ctrl-key",
            "/c",
            "--dhchap-group",
            "null",
        ])
        .unwrap();
        assert_eq!(c.tls_identity, 1);
        let d = c.dhchap.unwrap();
        assert_eq!((d.hash.as_str(), d.group.as_str()), ("sha512", "null"));
        assert_eq!(d.ctrl_key.as_deref(), Some(std::path::Path::new("/c")));
    }
}
