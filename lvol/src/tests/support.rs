//! Shared helpers for the crate tests.

use bytes::{Bytes, BytesMut};

use crate::device::{Device, RamDevice};
use crate::{LvolDesc, LvolOptions, LvolStore, LvstoreOptions, Registry};

pub(crate) const MIB: u64 = 1 << 20;

/// Options with 1 MiB clusters (the smallest allowed) for small test devices.
pub(crate) fn small_opts() -> LvstoreOptions {
    LvstoreOptions {
        cluster_size: MIB,
        ..LvstoreOptions::default()
    }
}

pub(crate) fn thin() -> LvolOptions {
    LvolOptions {
        thin: true,
        ..LvolOptions::default()
    }
}

pub(crate) fn thick() -> LvolOptions {
    LvolOptions::default()
}

/// A registry with one lvstore `lvs` on a RAM device of `mib` MiB with 1 MiB clusters.
pub(crate) async fn ram_store(mib: u64) -> (Registry, LvolStore, RamDevice) {
    let ram = RamDevice::new(mib * MIB, 512).unwrap();
    let reg = Registry::new();
    let store = reg
        .create_lvstore(Device::Ram(ram.clone()), "ram0", "lvs", &small_opts())
        .await
        .unwrap();
    (reg, store, ram)
}

/// Deterministic bytes for a seed.
pub(crate) fn pattern(seed: u64, len: usize) -> Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let v: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    Bytes::from(v)
}

pub(crate) async fn read(desc: &LvolDesc, offset: u64, len: usize) -> Vec<u8> {
    let mut buf = BytesMut::new();
    desc.read(offset, len, &mut buf).await.unwrap();
    assert_eq!(buf.len(), len);
    buf.to_vec()
}

pub(crate) fn zeros(len: usize) -> Vec<u8> {
    vec![0; len]
}

/// Environment-scaled iteration count.
pub(crate) fn scaled(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
