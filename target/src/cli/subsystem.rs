//! `lamina subsystem create|list|delete|add-ns|remove-ns|ns-add-host|ns-remove-host|
//! add-listener|remove-listener|add-host|set-keys|remove-host|allow-any-host`: NVMe-oF subsystems, over
//! the `nvmf_*` methods. A namespace added with `add-ns --hidden` is seen only by the hosts
//! `ns-add-host` lists. Listeners are
//! `ADDR:PORT` (`[::1]:4420` for IPv6); namespaces name an lvol (`lvstore/name` or UUID) or a
//! bdev.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use super::session::{CliError, ClientOpts, Session, bool_of, finish, items, str_of, u64_of};
use super::table::{Align, Table};

/// `lamina subsystem`.
#[derive(Debug, Clone, Args)]
pub struct SubsystemArgs {
    #[command(flatten)]
    client: ClientOpts,
    #[command(subcommand)]
    action: SubsystemAction,
}

/// On or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Toggle {
    /// Any host may connect.
    On,
    /// Only hosts on the allow-list may connect.
    Off,
}

/// `lamina subsystem create`.
#[derive(Debug, Clone, Args)]
struct CreateArgs {
    /// The subsystem NQN, e.g. nqn.2026-11.io.lamina:vol1.
    nqn: String,
    /// Serial number reported to hosts (up to 20 ASCII characters).
    #[arg(long)]
    serial_number: Option<String>,
    /// Model number reported to hosts (up to 40 ASCII characters).
    #[arg(long)]
    model_number: Option<String>,
    /// Let any host connect (otherwise only hosts added with add-host).
    #[arg(long)]
    allow_any_host: bool,
    /// Most namespaces (and the largest NSID).
    #[arg(long)]
    max_namespaces: Option<u32>,
}

/// `lamina subsystem add-ns`.
#[derive(Debug, Clone, Args)]
struct AddNsArgs {
    /// The subsystem NQN.
    nqn: String,
    /// The lvol (`lvstore/name` or UUID) or bdev to export.
    bdev: String,
    /// The namespace ID (default: the lowest free one).
    #[arg(long)]
    nsid: Option<u32>,
    /// The namespace UUID (default: the lvol's or bdev's UUID).
    #[arg(long)]
    uuid: Option<String>,
    /// The namespace NGUID, 32 hex digits (default: from the UUID).
    #[arg(long)]
    nguid: Option<String>,
    /// Visible only to the hosts added with ns-add-host (SPDK's no_auto_visible).
    #[arg(long)]
    hidden: bool,
}

#[derive(Debug, Clone, Subcommand)]
enum SubsystemAction {
    /// Create a subsystem.
    Create(CreateArgs),
    /// List subsystems with their listeners, hosts and namespaces.
    List {
        /// Only this subsystem.
        nqn: Option<String>,
        /// Include the discovery subsystem.
        #[arg(long)]
        all: bool,
    },
    /// Delete a subsystem (its hosts are disconnected).
    Delete {
        /// The subsystem NQN.
        nqn: String,
    },
    /// Export an lvol or bdev as a namespace (prints the NSID).
    AddNs(AddNsArgs),
    /// Remove a namespace (in-flight commands finish first).
    RemoveNs {
        /// The subsystem NQN.
        nqn: String,
        /// The namespace ID.
        nsid: u32,
    },
    /// Let a host see a namespace added with --hidden.
    NsAddHost {
        /// The subsystem NQN.
        nqn: String,
        /// The namespace ID.
        nsid: u32,
        /// The host NQN.
        host: String,
    },
    /// Hide a namespace added with --hidden from a host again.
    NsRemoveHost {
        /// The subsystem NQN.
        nqn: String,
        /// The namespace ID.
        nsid: u32,
        /// The host NQN.
        host: String,
    },
    /// Make the subsystem reachable on an address.
    AddListener {
        /// The subsystem NQN.
        nqn: String,
        /// ADDR:PORT, e.g. 0.0.0.0:4420 or [::1]:4420.
        address: SocketAddr,
        /// A secure channel: TLS 1.3 with the hosts' PSKs (add-host --psk), nothing in clear.
        #[arg(long)]
        secure_channel: bool,
    },
    /// Stop offering the subsystem on an address.
    RemoveListener {
        /// The subsystem NQN.
        nqn: String,
        /// ADDR:PORT.
        address: SocketAddr,
    },
    /// Allow a host NQN to connect.
    AddHost {
        /// The subsystem NQN.
        nqn: String,
        /// The host NQN (see /etc/nvme/hostnqn on the host).
        host: String,
        /// Keyring key (NVMeTLSkey-1) the host's TLS PSK derives from, for secure channels.
        #[arg(long)]
        psk: Option<String>,
        #[command(flatten)]
        keys: ChapKeys,
    },
    /// Replace an allowed host's DH-HMAC-CHAP keys (none: it connects without them).
    SetKeys {
        /// The subsystem NQN.
        nqn: String,
        /// The host NQN.
        host: String,
        #[command(flatten)]
        keys: ChapKeys,
    },
    /// Remove a host NQN from the allow-list (its connections are closed).
    RemoveHost {
        /// The subsystem NQN.
        nqn: String,
        /// The host NQN.
        host: String,
    },
    /// Let any host connect (on), or only the allow-list (off).
    AllowAnyHost {
        /// The subsystem NQN.
        nqn: String,
        /// on or off.
        #[arg(value_enum)]
        state: Toggle,
    },
}

/// A host's DH-HMAC-CHAP keys, by keyring name.
#[derive(Debug, Clone, clap::Args)]
pub struct ChapKeys {
    /// Keyring key (DHHC-1) the host must authenticate with (DH-HMAC-CHAP).
    #[arg(long)]
    dhchap_key: Option<String>,
    /// Keyring key (DHHC-1) the controller authenticates to the host with.
    #[arg(long, requires = "dhchap_key")]
    dhchap_ctrlr_key: Option<String>,
}

impl ChapKeys {
    /// `params` with the keys given.
    fn with(&self, mut params: serde_json::Value) -> serde_json::Value {
        if let Some(k) = &self.dhchap_key {
            params["dhchap_key"] = json!(k);
        }
        if let Some(k) = &self.dhchap_ctrlr_key {
            params["dhchap_ctrlr_key"] = json!(k);
        }
        params
    }
}

/// Runs `lamina subsystem`.
pub async fn run(args: SubsystemArgs) -> ExitCode {
    finish(exec(&args).await)
}

/// SPDK's `listen_address` object for `addr`.
fn listen_address(addr: SocketAddr) -> Value {
    json!({"trtype": "TCP", "adrfam": if addr.is_ipv4() { "IPv4" } else { "IPv6" },
        "traddr": addr.ip().to_string(), "trsvcid": addr.port().to_string()})
}

async fn exec(args: &SubsystemArgs) -> Result<(), CliError> {
    let mut s = Session::connect(&args.client).await?;
    let (method, params, text) = match &args.action {
        SubsystemAction::Create(c) => create_params(c),
        SubsystemAction::List { nqn, all } => return list(&mut s, nqn.as_deref(), *all).await,
        SubsystemAction::Delete { nqn } => (
            "nvmf_delete_subsystem",
            json!({"nqn": nqn}),
            format!("Deleted subsystem {nqn}"),
        ),
        SubsystemAction::AddNs(a) => return add_ns(&mut s, a).await,
        SubsystemAction::RemoveNs { nqn, nsid } => (
            "nvmf_subsystem_remove_ns",
            json!({"nqn": nqn, "nsid": nsid}),
            format!("Removed namespace {nsid} from {nqn}"),
        ),
        SubsystemAction::NsAddHost { nqn, nsid, host } => (
            "nvmf_ns_add_host",
            json!({"nqn": nqn, "nsid": nsid, "host": host}),
            format!("Host {host} now sees namespace {nsid} of {nqn}"),
        ),
        SubsystemAction::NsRemoveHost { nqn, nsid, host } => (
            "nvmf_ns_remove_host",
            json!({"nqn": nqn, "nsid": nsid, "host": host}),
            format!("Host {host} no longer sees namespace {nsid} of {nqn}"),
        ),
        SubsystemAction::AddListener {
            nqn,
            address,
            secure_channel,
        } => (
            "nvmf_subsystem_add_listener",
            json!({"nqn": nqn, "listen_address": listen_address(*address),
                "secure_channel": secure_channel}),
            if *secure_channel {
                format!("{nqn} now listens on {address} (TLS)")
            } else {
                format!("{nqn} now listens on {address}")
            },
        ),
        SubsystemAction::RemoveListener { nqn, address } => (
            "nvmf_subsystem_remove_listener",
            json!({"nqn": nqn, "listen_address": listen_address(*address)}),
            format!("{nqn} no longer listens on {address}"),
        ),
        SubsystemAction::AddHost {
            nqn,
            host,
            psk,
            keys,
        } => (
            "nvmf_subsystem_add_host",
            {
                let mut p = keys.with(json!({"nqn": nqn, "host": host}));
                if let Some(k) = psk {
                    p["psk"] = json!(k);
                }
                p
            },
            if keys.dhchap_key.is_some() {
                format!("Host {host} may now connect to {nqn}, authenticating (DH-HMAC-CHAP)")
            } else {
                format!("Host {host} may now connect to {nqn}")
            },
        ),
        SubsystemAction::SetKeys { nqn, host, keys } => (
            "nvmf_subsystem_set_keys",
            keys.with(json!({"nqn": nqn, "host": host})),
            format!("Keys of host {host} on {nqn} replaced"),
        ),
        SubsystemAction::RemoveHost { nqn, host } => (
            "nvmf_subsystem_remove_host",
            json!({"nqn": nqn, "host": host}),
            format!("Host {host} removed from {nqn}"),
        ),
        SubsystemAction::AllowAnyHost { nqn, state } => {
            let on = *state == Toggle::On;
            let text = if on {
                format!("Any host may now connect to {nqn}")
            } else {
                format!("Only allowed hosts may now connect to {nqn}")
            };
            (
                "nvmf_subsystem_allow_any_host",
                json!({"nqn": nqn, "allow_any_host": on}),
                text,
            )
        }
    };
    let r = s.call(method, params).await?;
    s.emit(&r, &text);
    Ok(())
}

fn create_params(c: &CreateArgs) -> (&'static str, Value, String) {
    let mut p = json!({"nqn": c.nqn, "allow_any_host": c.allow_any_host});
    if let Some(sn) = &c.serial_number {
        p["serial_number"] = json!(sn);
    }
    if let Some(mn) = &c.model_number {
        p["model_number"] = json!(mn);
    }
    if let Some(n) = c.max_namespaces {
        p["max_namespaces"] = json!(n);
    }
    let text = format!("Created subsystem {}", c.nqn);
    ("nvmf_create_subsystem", p, text)
}

async fn add_ns(s: &mut Session, a: &AddNsArgs) -> Result<(), CliError> {
    let mut ns = json!({"bdev_name": a.bdev});
    if let Some(n) = a.nsid {
        ns["nsid"] = json!(n);
    }
    if let Some(u) = &a.uuid {
        ns["uuid"] = json!(u);
    }
    if let Some(g) = &a.nguid {
        ns["nguid"] = json!(g);
    }
    if a.hidden {
        ns["no_auto_visible"] = json!(true);
    }
    let r = s
        .call(
            "nvmf_subsystem_add_ns",
            json!({"nqn": a.nqn, "namespace": ns}),
        )
        .await?;
    let text = format!("Exported {} as namespace {r} of {}", a.bdev, a.nqn);
    s.emit(&r, &text);
    Ok(())
}

async fn list(s: &mut Session, nqn: Option<&str>, all: bool) -> Result<(), CliError> {
    let p = nqn.map_or(Value::Null, |n| json!({"nqn": n}));
    let subs = s.call("nvmf_get_subsystems", p).await?;
    if s.opts().json {
        s.emit(&subs, "");
        return Ok(());
    }
    // Namespaces refer to lvols by UUID; show their aliases, which people recognise.
    let lvols = s.call("bdev_lvol_get_lvols", Value::Null).await?;
    let aliases: HashMap<&str, &str> = items(&lvols)
        .iter()
        .map(|l| (str_of(l, "uuid"), str_of(l, "alias")))
        .collect();
    let shown: Vec<&Value> = items(&subs)
        .iter()
        .filter(|v| all || nqn.is_some() || str_of(v, "subtype") != "Discovery")
        .collect();
    s.emit(&subs, &render(&shown, &aliases));
    Ok(())
}

fn render(subs: &[&Value], aliases: &HashMap<&str, &str>) -> String {
    let mut t = Table::new(&[
        ("NQN", Align::Left),
        ("LISTENERS", Align::Left),
        ("HOSTS", Align::Left),
        ("NAMESPACES", Align::Left),
    ]);
    for sub in subs {
        let listeners: Vec<String> = items(sub.get("listen_addresses").unwrap_or(&Value::Null))
            .iter()
            .map(|a| {
                let ip = str_of(a, "traddr");
                let port = str_of(a, "trsvcid");
                if ip.contains(':') {
                    format!("[{ip}]:{port}")
                } else {
                    format!("{ip}:{port}")
                }
            })
            .collect();
        let mut hosts: Vec<String> = items(sub.get("hosts").unwrap_or(&Value::Null))
            .iter()
            .map(|h| str_of(h, "nqn").to_owned())
            .collect();
        if bool_of(sub, "allow_any_host") {
            hosts.insert(0, "any".to_owned());
        }
        let namespaces: Vec<String> = items(sub.get("namespaces").unwrap_or(&Value::Null))
            .iter()
            .map(|n| {
                let bdev = str_of(n, "bdev_name");
                let name = aliases.get(bdev).copied().unwrap_or(bdev);
                format!("{}={name}", u64_of(n, "nsid"))
            })
            .collect();
        t.row(vec![
            str_of(sub, "nqn").to_owned(),
            or_dash(&listeners.join(",")),
            or_dash(&hosts.join(",")),
            or_dash(&namespaces.join(",")),
        ]);
    }
    if t.is_empty() {
        "No subsystems.".to_owned()
    } else {
        t.render()
    }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".to_owned()
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_lvols_by_alias() {
        let sub = json!({"nqn": "nqn.a", "subtype": "NVMe", "allow_any_host": false,
            "listen_addresses": [{"traddr": "::1", "trsvcid": "4420"},
                                 {"traddr": "127.0.0.1", "trsvcid": "4421"}],
            "hosts": [{"nqn": "nqn.h"}],
            "namespaces": [{"nsid": 1, "bdev_name": "u1"}, {"nsid": 2, "bdev_name": "Malloc0"}]});
        let aliases = HashMap::from([("u1", "lvs0/vol0")]);
        let out = render(&[&sub], &aliases);
        let line = out.lines().nth(1).unwrap();
        assert!(line.contains("[::1]:4420,127.0.0.1:4421"), "{out}");
        assert!(line.contains("nqn.h"), "{out}");
        assert!(line.ends_with("1=lvs0/vol0,2=Malloc0"), "{out}");
        assert_eq!(
            listen_address("[::1]:4420".parse().unwrap())["adrfam"],
            "IPv6"
        );
    }
}
