//! Mutations of a whole session: of its steps (drop, duplicate, swap, splice a step from
//! another session, garbage) and of the bytes of the PDUs it sends (bit flips, fields
//! overwritten with boundary values, truncation), plus how the bytes go out (segmentation,
//! hang-ups in the middle).

use bytes::{Bytes, BytesMut};

use super::Rng;
use super::script::{ConnScript, Step};

/// Values that find off-by-ones and overflows in length, offset and count fields.
const INTERESTING: [u32; 12] = [
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x1000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
];

/// Mutates the steps of `scripts` (taking spare steps from `donor`).
pub fn steps(rng: &mut Rng, scripts: &mut [ConnScript], donor: &[ConnScript]) {
    let rounds = rng.below(4);
    for _ in 0..rounds {
        let Some(s) = pick_mut(rng, scripts) else {
            return;
        };
        let n = s.steps.len();
        if n == 0 {
            continue;
        }
        let i = usize::try_from(rng.below(n as u64)).unwrap_or(0);
        match rng.below(6) {
            0 if n > 1 => {
                s.steps.remove(i);
            }
            1 => {
                let step = s.steps[i].clone();
                s.steps.insert(i, step);
            }
            2 if i + 1 < n => s.steps.swap(i, i + 1),
            3 => {
                if let Some(d) =
                    donor.get(usize::try_from(rng.below(donor.len() as u64)).unwrap_or(0))
                    && !d.steps.is_empty()
                {
                    let j = usize::try_from(rng.below(d.steps.len() as u64)).unwrap_or(0);
                    s.steps.insert(i, d.steps[j].clone());
                }
            }
            4 => {
                let len = usize::try_from(rng.below(96)).unwrap_or(8);
                let junk: Vec<u8> = (0..len)
                    .map(|_| u8::try_from(rng.below(256)).unwrap_or(0))
                    .collect();
                s.steps.insert(i, Step::Raw(Bytes::from(junk)));
            }
            _ => {}
        }
    }
}

fn pick_mut<'a>(rng: &mut Rng, v: &'a mut [ConnScript]) -> Option<&'a mut ConnScript> {
    if v.is_empty() {
        return None;
    }
    let i = usize::try_from(rng.below(v.len() as u64)).unwrap_or(0);
    v.get_mut(i)
}

/// Mutates the bytes of one encoded PDU, or leaves them (most of the time, so sessions go on).
pub fn bytes(rng: &mut Rng, pdu: Bytes, rate: u64) -> Bytes {
    if pdu.is_empty() || rng.below(rate.max(1)) != 0 {
        return pdu;
    }
    let mut b = BytesMut::from(&pdu[..]);
    let len = b.len() as u64;
    match rng.below(5) {
        0 => {
            for _ in 0..=rng.below(4) {
                let i = usize::try_from(rng.below(len)).unwrap_or(0);
                b[i] ^= 1 << rng.below(8);
            }
        }
        1 => {
            // A boundary value over a 1-, 2- or 4-byte field, mostly in the headers.
            let width = [1usize, 2, 4][usize::try_from(rng.below(3)).unwrap_or(0)];
            let span = len.min(80).saturating_sub(width as u64).max(1);
            let at = usize::try_from(rng.below(span)).unwrap_or(0);
            let v = INTERESTING[usize::try_from(rng.below(12)).unwrap_or(0)].to_le_bytes();
            if let Some(dst) = b.get_mut(at..at + width) {
                dst.copy_from_slice(&v[..width]);
            }
        }
        2 => b.truncate(usize::try_from(rng.below(len)).unwrap_or(0)),
        3 => {
            let extra = b.clone();
            b.extend_from_slice(&extra[..extra.len().min(64)]);
        }
        _ => {
            // PLEN (bytes 4..8) set to a boundary value.
            let v = INTERESTING[usize::try_from(rng.below(12)).unwrap_or(0)].to_le_bytes();
            if let Some(dst) = b.get_mut(4..8) {
                dst.copy_from_slice(&v);
            }
        }
    }
    b.freeze()
}

/// Splits `data` into the chunks it is written in: whole, or cut at random places.
pub fn segments(rng: &mut Rng, data: &Bytes) -> Vec<Bytes> {
    if data.len() < 2 || rng.below(3) != 0 {
        return vec![data.clone()];
    }
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let left = (data.len() - at) as u64;
        let n = usize::try_from(1 + rng.below(left)).unwrap_or(1);
        out.push(data.slice(at..at + n));
        at += n;
    }
    out
}
