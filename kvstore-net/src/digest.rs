//! `DIGEST`: one hash over every key and value in key order, so that a replica can be compared
//! with its master by a single command.
//!
//! FNV-1a with 128-bit state over `len(key) key len(value) value` for each pair (lengths as
//! 8 little-endian bytes, so `("ab","c")` and `("a","bc")` differ). Deterministic across
//! builds and platforms, dependency-free; 128 bits make an accidental collision between two
//! different stores negligible. It is not a cryptographic hash.

use kvstore_core::KvStore;

const FNV_OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
const FNV_PRIME: u128 = 0x0000000001000000000000000000013B;

/// An incremental digest of key/value pairs.
#[derive(Debug, Clone, Copy)]
pub struct Digest {
    state: u128,
    pairs: u64,
}

impl Default for Digest {
    fn default() -> Self {
        Digest {
            state: FNV_OFFSET,
            pairs: 0,
        }
    }
}

impl Digest {
    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.state ^= u128::from(b);
            self.state = self.state.wrapping_mul(FNV_PRIME);
        }
    }

    /// Adds one pair; pairs must be added in key order for digests to be comparable.
    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        self.feed(&(key.len() as u64).to_le_bytes());
        self.feed(key);
        self.feed(&(value.len() as u64).to_le_bytes());
        self.feed(value);
        self.pairs += 1;
    }

    /// The digest as 32 lowercase hex digits.
    pub fn hex(&self) -> String {
        format!("{:032x}", self.state)
    }

    /// Pairs added.
    pub fn pairs(&self) -> u64 {
        self.pairs
    }

    /// The digest of everything in `store`, read in key order. Writes made meanwhile may or
    /// may not be included; compare quiescent stores.
    pub fn of_store(store: &KvStore) -> kvstore_core::Result<Digest> {
        let mut digest = Digest::default();
        for item in store.iter() {
            let (key, value) = item?;
            digest.add(&key, &value);
        }
        Ok(digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_between_key_and_value_matter() {
        let mut a = Digest::default();
        a.add(b"ab", b"c");
        let mut b = Digest::default();
        b.add(b"a", b"bc");
        assert_ne!(a.hex(), b.hex());
        assert_eq!(a.hex().len(), 32);
        assert_ne!(a.hex(), Digest::default().hex());
    }
}
