//! The command identifiers in flight on one queue, to answer a reused CID with Command ID
//! Conflict: one bit per possible CID (8 KiB per queue, allocated once), so the check on
//! every command is a shift and a mask instead of hashing into a set.

/// A set of `u16` command identifiers.
#[derive(Debug)]
pub struct CidSet {
    words: Box<[u64]>,
}

impl Default for CidSet {
    fn default() -> Self {
        Self::new()
    }
}

impl CidSet {
    /// An empty set.
    pub fn new() -> Self {
        Self {
            words: vec![0; (usize::from(u16::MAX) + 1) / 64].into_boxed_slice(),
        }
    }

    fn locate(cid: u16) -> (usize, u64) {
        (usize::from(cid / 64), 1 << (cid % 64))
    }

    /// Adds `cid`; false if it was already in the set.
    pub fn insert(&mut self, cid: u16) -> bool {
        let (word, bit) = Self::locate(cid);
        match self.words.get_mut(word) {
            Some(w) if *w & bit == 0 => {
                *w |= bit;
                true
            }
            _ => false,
        }
    }

    /// Removes `cid`; false if it was not in the set.
    pub fn remove(&mut self, cid: u16) -> bool {
        let (word, bit) = Self::locate(cid);
        match self.words.get_mut(word) {
            Some(w) if *w & bit != 0 => {
                *w &= !bit;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_and_remove_every_cid_edge() {
        let mut s = CidSet::new();
        for cid in [0, 1, 63, 64, 4095, u16::MAX] {
            assert!(s.insert(cid));
            assert!(!s.insert(cid), "a CID in flight is a conflict");
        }
        assert!(s.remove(64));
        assert!(!s.remove(64));
        assert!(s.insert(64));
        assert!(!s.remove(2));
        assert!(s.remove(u16::MAX) && s.remove(0));
    }
}
