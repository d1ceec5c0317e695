//! Lamina's declarative start-up file (`lamina serve --config lamina.toml`), for containers and
//! systemd: the transport, base bdevs, lvstores, lvols and subsystems a node must have.
//!
//! At every start Lamina **creates what is missing and leaves what exists**: an entry that is
//! already there (from the persisted state, or an earlier start) is not an error and is not
//! changed, so objects created or changed later over JSON-RPC survive, and deleting an entry
//! from the file deletes nothing. The one exception is `[transport]`: its options are settings,
//! not objects, and the file's values are applied at every start. Entries are applied in the
//! order transport, bdevs, lvstores, lvols, subsystems; an entry that fails is logged with what
//! went wrong and the others still apply. An entry that cannot apply *yet* (an aio file or
//! device that is not there, and the lvstore, lvols and namespaces on it) is kept as pending
//! configuration: persisted, retried until its device shows up, and reported on `/readyz`
//! (see `crate::mgmt::config`); a blank device that shows up gets the lvstore the file asks for, one
//! whose lvstore does not load is left alone. A file that does not parse, has an unknown key
//! or an impossible entry stops the start with a message naming it.
//!
//! Sizes are integers (bytes) or strings with a binary unit: `"256G"`, `"4M"`, `"512M"`.
//! Names are SPDK's where SPDK has one (transport options, clear methods, namespace fields).
//!
//! ```toml
//! # Process settings, read at start-up; flags and their environment variables win.
//! [runtime]
//! io_uring = true          # file bdevs use io_uring when the kernel has it (LAMINA_IO_URING)
//! conn_runtime = "shared"  # or "per-core" (LAMINA_CONN_RUNTIME)
//! io_stats = true          # per-command counters (LAMINA_IO_STATS)
//! busy_poll_us = 50        # poll for the next command before parking (LAMINA_BUSY_POLL_US)
//! zero_copy_min = 0        # MSG_ZEROCOPY for read payloads from this size; 0: off (LAMINA_ZERO_COPY_MIN)
//!
//! # NVMe/TCP transport options (nvmf_create_transport's names); all optional.
//! [transport]
//! trtype = "TCP"
//! max_queue_depth = 128
//! max_io_qpairs_per_ctrlr = 127
//! in_capsule_data_size = 8192
//! max_io_size = "128K"
//! io_unit_size = 131072
//!
//! # Named keys kept in files (keyring_file_add_key): absolute path, mode 0600.
//! [[key]]
//! name = "tls0"
//! path = "/etc/lamina/keys/tls0"
//!
//! # Base devices. type = "aio" (a file or block device), "malloc" (memory) or "null".
//! [[bdev]]
//! name = "data0"
//! type = "aio"
//! filename = "/var/lib/lamina/data0.img"
//! size = "256G"          # aio: creates a sparse file of this size if it does not exist
//! block_size = 4096      # optional
//! # sparse = true        # malloc only: memory taken as written, not all at creation
//!
//! # Lvstores: created on their bdev unless one of that name is loaded.
//! [[lvstore]]
//! name = "lvs0"
//! bdev = "data0"
//! cluster_size = "4M"    # optional, default 4 MiB
//! clear_method = "unmap" # optional: none, unmap, write_zeroes
//!
//! # Lvols: created unless lvstore/name exists.
//! [[lvol]]
//! name = "vol0"
//! lvstore = "lvs0"
//! size = "10G"
//! thin = true            # optional, default false (thick)
//! clear_method = "unmap" # optional
//!
//! # Subsystems, with what they export.
//! [[subsystem]]
//! nqn = "nqn.2026-11.io.lamina:vol0"
//! serial_number = "LAMINA0001"       # optional
//! model_number = "Lamina"            # optional
//! allow_any_host = false             # optional, default false
//! max_namespaces = 32                # optional
//! listeners = ["0.0.0.0:4420"]       # ADDR:PORT, "[::]:4420" for IPv6
//! hosts = ["nqn.2014-08.org.nvmexpress:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"]
//! # A host that must authenticate (DH-HMAC-CHAP, keys by [[key]] name), as a table:
//! # hosts = [{ nqn = "nqn...", dhchap_key = "host0", dhchap_ctrlr_key = "ctrl0" }]
//!
//! [[subsystem.namespace]]
//! bdev = "lvs0/vol0"     # an lvol (lvstore/name or UUID) or a bdev
//! nsid = 1               # optional: the lowest free NSID (required with hosts)
//! # hosts = ["nqn..."]   # optional: visible only to these hosts (SPDK's no_auto_visible)
//! # uuid = "...", nguid = "..." (32 hex digits): optional, default from the lvol's UUID
//! ```
//!
//! For a subsystem that exists, missing listeners, hosts and namespaces are added (a
//! namespace is missing when its NSID is free, or, without `nsid`, when no namespace of the
//! subsystem exports that bdev); its identity and `allow_any_host` are left as they are.
//!
//! This module is the format (parsing and checks); `apply` (in `config/apply.rs`) makes it
//! so, through the same JSON-RPC methods an operator would call.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};
use uuid::Uuid;

/// A size: bytes, or a string with a binary unit (`"10G"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a size: bytes, or a string such as \"10G\" or \"512M\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Size, E> {
                crate::units::parse_size(v).map(Size).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// An allowed host: its NQN alone (`"nqn..."`), or a table with the keyring names of its
/// TLS PSK and DH-HMAC-CHAP keys (`{ nqn = "...", psk = "tls0", dhchap_key = "k0",
/// dhchap_ctrlr_key = "k1" }`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostEntry {
    /// The host NQN.
    pub nqn: String,
    /// The host's TLS PSK.
    #[serde(default)]
    pub psk: Option<String>,
    /// The key the host authenticates with.
    pub dhchap_key: Option<String>,
    /// The key the controller authenticates with.
    pub dhchap_ctrlr_key: Option<String>,
}

impl HostEntry {
    fn deserialize_any<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = HostEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a host NQN, or a table { nqn, psk, dhchap_key, dhchap_ctrlr_key }")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<HostEntry, E> {
                Ok(HostEntry {
                    nqn: v.to_owned(),
                    psk: None,
                    dhchap_key: None,
                    dhchap_ctrlr_key: None,
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<HostEntry, A::Error> {
                HostEntry::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_any(V)
    }
}

fn host_entries<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<HostEntry>, D::Error> {
    struct Entry(HostEntry);
    impl<'de> Deserialize<'de> for Entry {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            HostEntry::deserialize_any(d).map(Entry)
        }
    }
    Ok(Vec::<Entry>::deserialize(d)?
        .into_iter()
        .map(|e| e.0)
        .collect())
}

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaminaConfig {
    /// `[runtime]`: process settings, read once at start-up (see `crate::settings`).
    #[serde(default)]
    pub runtime: Option<crate::settings::RuntimeSection>,
    /// `[transport]`.
    #[serde(default)]
    pub transport: Option<TransportSection>,
    /// `[[key]]` entries.
    #[serde(default, rename = "key")]
    pub keys: Vec<KeyEntry>,
    /// `[[bdev]]` entries.
    #[serde(default, rename = "bdev")]
    pub bdevs: Vec<BdevEntry>,
    /// `[[lvstore]]` entries.
    #[serde(default, rename = "lvstore")]
    pub lvstores: Vec<LvstoreEntry>,
    /// `[[lvol]]` entries.
    #[serde(default, rename = "lvol")]
    pub lvols: Vec<LvolEntry>,
    /// `[[subsystem]]` entries.
    #[serde(default, rename = "subsystem")]
    pub subsystems: Vec<SubsystemEntry>,
}

/// `[transport]`: SPDK's `nvmf_create_transport` options.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransportSection {
    /// Must be TCP when given.
    pub trtype: Option<String>,
    /// Largest I/O queue size.
    pub max_queue_depth: Option<u16>,
    /// Most I/O queues per controller.
    pub max_io_qpairs_per_ctrlr: Option<u16>,
    /// In-capsule data size.
    pub in_capsule_data_size: Option<Size>,
    /// Largest transfer of one command.
    pub max_io_size: Option<Size>,
    /// Largest H2CData PDU.
    pub io_unit_size: Option<Size>,
    /// Largest admin queue size.
    pub max_aq_depth: Option<u16>,
    /// Use the C2HData SUCCESS flag.
    pub c2h_success: Option<bool>,
}

/// A base device type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BdevType {
    /// A file or block device.
    Aio,
    /// Memory.
    Malloc,
    /// Reads zeros, discards writes.
    Null,
}

/// `[[bdev]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BdevEntry {
    /// The bdev name.
    pub name: String,
    /// What it is.
    #[serde(rename = "type")]
    pub kind: BdevType,
    /// aio: the file or block device.
    pub filename: Option<PathBuf>,
    /// aio: size of the sparse file created when missing; malloc, null: the size.
    pub size: Option<Size>,
    /// Block size in bytes.
    pub block_size: Option<u32>,
    /// The bdev UUID (default: random).
    pub uuid: Option<Uuid>,
    /// malloc: memory taken as it is written instead of all at creation.
    #[serde(default)]
    pub sparse: bool,
}

/// `[[key]]`: `keyring_file_add_key`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// The key's name.
    pub name: String,
    /// The absolute path of the file holding it.
    pub path: PathBuf,
}

/// `[[lvstore]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LvstoreEntry {
    /// The lvstore name.
    pub name: String,
    /// The base bdev.
    pub bdev: String,
    /// Cluster size.
    pub cluster_size: Option<Size>,
    /// none, unmap or write_zeroes.
    pub clear_method: Option<String>,
}

/// `[[lvol]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LvolEntry {
    /// The lvol name within its lvstore.
    pub name: String,
    /// The lvstore name.
    pub lvstore: String,
    /// The size.
    pub size: Size,
    /// Thin-provisioned.
    #[serde(default)]
    pub thin: bool,
    /// none, unmap or write_zeroes.
    pub clear_method: Option<String>,
}

/// `[[subsystem]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubsystemEntry {
    /// The NQN.
    pub nqn: String,
    /// Serial number.
    pub serial_number: Option<String>,
    /// Model number.
    pub model_number: Option<String>,
    /// Any host may connect.
    #[serde(default)]
    pub allow_any_host: bool,
    /// Most namespaces.
    pub max_namespaces: Option<u32>,
    /// Listen addresses.
    #[serde(default)]
    pub listeners: Vec<SocketAddr>,
    /// Allowed hosts: NQNs, or tables with DH-HMAC-CHAP keys.
    #[serde(default, deserialize_with = "host_entries")]
    pub hosts: Vec<HostEntry>,
    /// `[[subsystem.namespace]]` entries.
    #[serde(default, rename = "namespace")]
    pub namespaces: Vec<NamespaceEntry>,
}

/// `[[subsystem.namespace]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceEntry {
    /// The lvol (`lvstore/name` or UUID) or bdev.
    pub bdev: String,
    /// The NSID (default: the lowest free one).
    pub nsid: Option<u32>,
    /// The namespace UUID.
    pub uuid: Option<Uuid>,
    /// The namespace NGUID (32 hex digits).
    pub nguid: Option<String>,
    /// Visible only to these hosts (`no_auto_visible` and `nvmf_ns_add_host`); absent:
    /// every host of the subsystem sees it.
    pub hosts: Option<Vec<String>>,
}

impl LaminaConfig {
    /// Parses and checks a file's text; the error names the entry or the line.
    pub fn parse(text: &str) -> Result<Self, String> {
        let cfg: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        cfg.check()?;
        Ok(cfg)
    }

    /// What serde cannot check: required combinations and cross references.
    fn check(&self) -> Result<(), String> {
        for b in &self.bdevs {
            match (b.kind, &b.filename, b.size) {
                (BdevType::Aio, None, _) => {
                    return Err(format!("[[bdev]] '{}': type aio needs filename", b.name));
                }
                (BdevType::Malloc | BdevType::Null, _, None) => {
                    return Err(format!("[[bdev]] '{}': this type needs size", b.name));
                }
                (BdevType::Malloc | BdevType::Null, Some(_), _) => {
                    return Err(format!("[[bdev]] '{}': filename is for aio only", b.name));
                }
                _ => {}
            }
            if b.sparse && b.kind != BdevType::Malloc {
                return Err(format!("[[bdev]] '{}': sparse is for malloc only", b.name));
            }
        }
        for s in &self.subsystems {
            if let Some(ns) = s
                .namespaces
                .iter()
                .find(|n| n.hosts.is_some() && n.nsid.is_none())
            {
                return Err(format!(
                    "[[subsystem]] '{}' namespace '{}': hosts needs nsid (the host lists name \
                     the namespace by NSID)",
                    s.nqn, ns.bdev
                ));
            }
        }
        if let Some(tr) = self.transport.as_ref().and_then(|t| t.trtype.as_deref())
            && !tr.eq_ignore_ascii_case("tcp")
        {
            return Err(format!("[transport] trtype '{tr}': Lamina serves TCP only"));
        }
        for (i, a) in self.subsystems.iter().enumerate() {
            if self.subsystems[..i].iter().any(|b| b.nqn == a.nqn) {
                return Err(format!("[[subsystem]] '{}' is listed twice", a.nqn));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
[transport]
trtype = "TCP"
max_io_size = "128K"
io_unit_size = 131072

[[bdev]]
name = "data0"
type = "aio"
filename = "/var/lib/lamina/data0.img"
size = "256G"

[[bdev]]
name = "m0"
type = "malloc"
size = "64M"
block_size = 4096

[[lvstore]]
name = "lvs0"
bdev = "data0"
cluster_size = "4M"

[[lvol]]
name = "vol0"
lvstore = "lvs0"
size = "10G"
thin = true

[[subsystem]]
nqn = "nqn.2026-11.io.lamina:vol0"
listeners = ["0.0.0.0:4420", "[::]:4420"]
hosts = ["nqn.2014-08.org.nvmexpress:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
    { nqn = "nqn.2014-08.org.nvmexpress:uuid:0c1d2e3f-0000-4000-8000-000000000001", dhchap_key = "h0", dhchap_ctrlr_key = "c0" }]

[[subsystem.namespace]]
bdev = "lvs0/vol0"
nsid = 1
"#;

    #[test]
    fn parses_the_documented_shape() {
        let c = LaminaConfig::parse(EXAMPLE).unwrap();
        let tr = c.transport.unwrap();
        assert_eq!(tr.max_io_size, Some(Size(128 << 10)));
        assert_eq!(tr.io_unit_size, Some(Size(131_072)));
        assert_eq!(c.bdevs[0].size, Some(Size(256 << 30)));
        assert_eq!(c.bdevs[1].kind, BdevType::Malloc);
        assert_eq!(c.lvstores[0].cluster_size, Some(Size(4 << 20)));
        assert!(c.lvols[0].thin);
        assert_eq!(c.subsystems[0].listeners.len(), 2);
        let hosts = &c.subsystems[0].hosts;
        assert_eq!(hosts[0].dhchap_key, None);
        assert_eq!(hosts[1].dhchap_key.as_deref(), Some("h0"));
        assert_eq!(hosts[1].dhchap_ctrlr_key.as_deref(), Some("c0"));
        let p = LaminaConfig::parse(
            "[[subsystem]]\nnqn = \"n\"\nhosts = [{ nqn = \"h\", psk = \"k\" }]\n",
        )
        .unwrap();
        assert_eq!(p.subsystems[0].hosts[0].psk.as_deref(), Some("k"));
        let e = LaminaConfig::parse(
            "[[subsystem]]\nnqn = \"n\"\nhosts = [{ nqn = \"h\", pks = \"k\" }]\n",
        )
        .unwrap_err();
        assert!(e.contains("pks"), "{e}");
        assert_eq!(c.subsystems[0].namespaces[0].nsid, Some(1));
        assert!(LaminaConfig::parse("").unwrap().bdevs.is_empty());
    }

    #[test]
    fn mistakes_are_named() {
        let e = LaminaConfig::parse("[[bdev]]\nname = \"a\"\ntype = \"aio\"\nfilname = \"x\"\n")
            .unwrap_err();
        assert!(e.contains("filname"), "{e}");
        let e = LaminaConfig::parse("[[bdev]]\nname = \"a\"\ntype = \"aio\"\n").unwrap_err();
        assert!(e.contains("needs filename"), "{e}");
        let e = LaminaConfig::parse("[[bdev]]\nname = \"a\"\ntype = \"malloc\"\n").unwrap_err();
        assert!(e.contains("needs size"), "{e}");
        let e = LaminaConfig::parse("[[bdev]]\nname = \"a\"\ntype = \"nvme\"\n").unwrap_err();
        assert!(e.contains("nvme"), "{e}");
        let e = LaminaConfig::parse("[[lvol]]\nname = \"v\"\nlvstore = \"l\"\nsize = \"10Q\"\n")
            .unwrap_err();
        assert!(e.contains("10Q"), "{e}");
        let e = LaminaConfig::parse("[transport]\ntrtype = \"RDMA\"\n").unwrap_err();
        assert!(e.contains("TCP only"), "{e}");
        let e =
            LaminaConfig::parse("[[subsystem]]\nnqn = \"nqn.a\"\n[[subsystem]]\nnqn = \"nqn.a\"\n")
                .unwrap_err();
        assert!(e.contains("twice"), "{e}");
        let e = LaminaConfig::parse("[[subsystem]]\nnqn = \"n\"\nlisteners = [\"nowhere\"]\n")
            .unwrap_err();
        assert!(e.contains("listeners"), "{e}");
        let e = LaminaConfig::parse(
            "[[bdev]]\nname = \"a\"\ntype = \"aio\"\nfilename = \"/x\"\nsparse = true\n",
        )
        .unwrap_err();
        assert!(e.contains("malloc only"), "{e}");
        let e = LaminaConfig::parse(
            "[[subsystem]]\nnqn = \"n\"\n[[subsystem.namespace]]\nbdev = \"b\"\nhosts = []\n",
        )
        .unwrap_err();
        assert!(e.contains("hosts needs nsid"), "{e}");
    }

    /// The example in this module's documentation must stay valid.
    #[test]
    fn documented_example_parses() {
        let src = include_str!("declarative.rs");
        let (_, rest) = src.split_once("//! ```toml\n").unwrap();
        let (block, _) = rest.split_once("//! ```\n").unwrap();
        let toml: String = block
            .lines()
            .map(|l| {
                l.strip_prefix("//! ")
                    .unwrap_or(l.trim_start_matches("//!"))
            })
            .collect::<Vec<_>>()
            .join("\n");
        let c = LaminaConfig::parse(&toml).unwrap();
        assert_eq!(c.bdevs.len(), 1);
        assert_eq!(c.lvols[0].size, Size(10 << 30));
        assert_eq!(c.subsystems[0].namespaces[0].bdev, "lvs0/vol0");
    }

    /// The Kubernetes ConfigMap ships a file in this format: it must keep parsing.
    #[test]
    fn kubernetes_configmap_parses() {
        let yaml = include_str!("../../../../deploy/kubernetes/configmap.yaml");
        let (_, rest) = yaml.split_once("lamina.toml: |").unwrap();
        let toml: String = rest
            .lines()
            .map(|l| l.strip_prefix("    ").unwrap_or(l.trim()))
            .collect::<Vec<_>>()
            .join("\n");
        let c = LaminaConfig::parse(&toml).unwrap();
        assert_eq!(c.bdevs.len(), 1);
        assert_eq!(c.lvstores[0].bdev, c.bdevs[0].name);
    }
}
