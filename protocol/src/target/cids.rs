//! The command identifiers in flight on one queue, to refuse a CID still in use and a host
//! that submits more commands than its SQ holds: one bit per possible CID (8 KiB per queue,
//! allocated once), so the check on every command is a shift and a mask instead of hashing
//! into a set, plus a count.

/// A set of `u16` command identifiers.
#[derive(Debug)]
pub struct CidSet {
    words: Box<[u64]>,
    len: usize,
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
            len: 0,
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
                self.len += 1;
                true
            }
            _ => false,
        }
    }

    /// Whether `cid` is in the set.
    #[cfg(test)]
    pub fn contains(&self, cid: u16) -> bool {
        let (word, bit) = Self::locate(cid);
        self.words.get(word).is_some_and(|w| w & bit != 0)
    }

    /// How many CIDs are in the set.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Removes `cid`; false if it was not in the set.
    pub fn remove(&mut self, cid: u16) -> bool {
        let (word, bit) = Self::locate(cid);
        match self.words.get_mut(word) {
            Some(w) if *w & bit != 0 => {
                *w &= !bit;
                self.len -= 1;
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
        assert_eq!(s.len(), 6);
        assert!(s.contains(4095) && !s.contains(2));
        assert!(s.remove(u16::MAX) && s.remove(0));
        assert_eq!(s.len(), 4);
    }
}
