//! What keeps the metrics endpoint answering whatever its clients do: an allow-list of the
//! addresses that may reach it (`--metrics-allow`), and a table of open connections that,
//! when full, closes the oldest one to let the newcomer in. A probe is a fresh connection
//! that finishes in milliseconds; a client holding a connection open without completing a
//! request (a slow-headers attack) or idling on keep-alive is older, and goes first, so
//! neither 100 slow clients nor 64 idle keep-alive connections can starve `/healthz`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

/// One network, `ADDR/BITS` (a bare address is one host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    bits: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (ip, bits) = match s.split_once('/') {
            Some((ip, bits)) => (ip, Some(bits)),
            None => (s, None),
        };
        let addr: IpAddr = ip
            .trim()
            .parse()
            .map_err(|_| format!("'{s}': not an address or ADDR/BITS network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(b) => b
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| format!("'{s}': the prefix length must be 0..={max}"))?,
        };
        Ok(Self { addr, bits })
    }
}

impl Cidr {
    /// Whether `ip` is in the network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 @ IpAddr::V4(_) => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(
                u128::from(u32::from(net)) << 96,
                u128::from(u32::from(ip)) << 96,
                self.bits,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(u128::from(net), u128::from(ip), self.bits)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: u128, b: u128, bits: u8) -> bool {
    let shift = 128 - u32::from(bits);
    bits == 0 || a.checked_shr(shift) == b.checked_shr(shift)
}

/// The scrapers allowed to connect; empty means everyone who can reach the address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList(Vec<Cidr>);

impl AllowList {
    /// A list of networks.
    pub fn new(nets: Vec<Cidr>) -> Self {
        Self(nets)
    }

    /// Whether `ip` may connect.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.0.is_empty() || self.0.iter().any(|n| n.contains(ip))
    }
}

/// Open connections, oldest first.
#[derive(Debug)]
pub struct ConnTable {
    cap: usize,
    open: Mutex<(u64, BTreeMap<u64, CancellationToken>)>,
}

/// One connection's place; dropping it frees the place.
#[derive(Debug)]
pub struct ConnSlot<'a> {
    table: &'a ConnTable,
    seq: u64,
    /// Cancelled when the connection is closed to make room.
    pub token: CancellationToken,
}

impl ConnTable {
    /// A table of at most `cap` connections.
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            open: Mutex::new((0, BTreeMap::new())),
        }
    }

    /// Takes a place for a new connection, closing the oldest one if the table is full;
    /// whether one was closed.
    pub fn admit(&self) -> (ConnSlot<'_>, bool) {
        let mut g = self.open.lock();
        let mut evicted = false;
        while g.1.len() >= self.cap {
            if let Some((_, oldest)) = g.1.pop_first() {
                oldest.cancel();
                evicted = true;
            }
        }
        let seq = g.0;
        g.0 += 1;
        let token = CancellationToken::new();
        g.1.insert(seq, token.clone());
        (
            ConnSlot {
                table: self,
                seq,
                token,
            },
            evicted,
        )
    }

    /// Connections open now.
    pub fn len(&self) -> usize {
        self.open.lock().1.len()
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for ConnSlot<'_> {
    fn drop(&mut self) {
        self.table.open.lock().1.remove(&self.seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_and_hosts() {
        let n: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(n.contains("10.1.200.3".parse().unwrap()));
        assert!(!n.contains("10.2.0.1".parse().unwrap()));
        assert!(
            n.contains("::ffff:10.1.0.9".parse().unwrap()),
            "IPv4-mapped"
        );
        let h: Cidr = "127.0.0.1".parse().unwrap();
        assert!(
            h.contains("127.0.0.1".parse().unwrap()) && !h.contains("127.0.0.2".parse().unwrap())
        );
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(
            v6.contains("fd12::1".parse().unwrap()) && !v6.contains("fe80::1".parse().unwrap())
        );
        assert!(
            "0.0.0.0/0"
                .parse::<Cidr>()
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nowhere".parse::<Cidr>().is_err());
        assert!(AllowList::default().allows("1.2.3.4".parse().unwrap()));
        let l = AllowList::new(vec![n, h]);
        assert!(
            l.allows("127.0.0.1".parse().unwrap()) && !l.allows("192.168.0.1".parse().unwrap())
        );
    }

    #[test]
    fn a_full_table_closes_its_oldest_connection() {
        let t = ConnTable::new(2);
        let (a, _) = t.admit();
        let (b, _) = t.admit();
        let (c, evicted) = t.admit();
        assert!(evicted && a.token.is_cancelled());
        assert!(!b.token.is_cancelled() && !c.token.is_cancelled());
        drop(a);
        assert_eq!(t.len(), 2);
        drop((b, c));
        assert!(t.is_empty());
    }
}
