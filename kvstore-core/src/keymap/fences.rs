//! The fence keys that route a probe to its leaf of the [`KeyMap`](super::KeyMap).

use std::cmp::Ordering;

use super::leaf::{compare, order_by_common, prefix, shared_len};

/// `keys[i]` ≤ every key of leaf `i` < every key of leaf `i + 1`.
///
/// Routing is a binary search over 8-byte prefixes in one dense array; a fence's own bytes
/// (a heap allocation each, so a likely cache miss) are read only on a prefix tie, apart
/// from the first fence's shared bytes, which every lookup reads and so stay cached. Like a
/// leaf, the fences skip the bytes they all share before taking prefixes: keys such as
/// Redis's `key:000000123456` share their first 8 bytes, so prefixes taken from the start
/// would all tie and every step would compare whole keys (measured: half a replica's time
/// applying `redis-benchmark` writes went to routing and `memcmp`).
#[derive(Debug, Default, Clone)]
pub(super) struct Fences {
    keys: Vec<Box<[u8]>>,
    /// Bytes every fence starts with (at least: they may share more).
    skip: usize,
    /// `prefix(&key[skip..])` of each fence.
    prefixes: Vec<u64>,
}

impl Fences {
    /// Inserts `key` as fence `i`.
    pub fn insert(&mut self, i: usize, key: &[u8]) {
        self.admit(key);
        self.keys.insert(i, key.into());
        self.prefixes.insert(i, prefix(&key[self.skip..]));
    }

    /// Replaces fence `i` with `key`.
    pub fn set(&mut self, i: usize, key: &[u8]) {
        self.admit(key);
        self.keys[i] = key.into();
        self.prefixes[i] = prefix(&key[self.skip..]);
    }

    pub fn remove(&mut self, i: usize) {
        self.keys.remove(i);
        self.prefixes.remove(i);
    }

    /// Appends `right`, every fence of which follows every fence here.
    pub fn append(&mut self, mut right: Fences) {
        let (Some(first), Some(right_first)) = (self.keys.first(), right.keys.first()) else {
            if self.keys.is_empty() {
                *self = right;
            }
            return;
        };
        let skip = self
            .skip
            .min(right.skip)
            .min(shared_len(first, right_first));
        let retake = skip != self.skip || skip != right.skip;
        self.keys.append(&mut right.keys);
        self.prefixes.append(&mut right.prefixes);
        self.skip = skip;
        if retake {
            self.retake_prefixes();
        }
    }

    /// The leaf that holds `key` if it is present (and where it would go otherwise): the last
    /// leaf whose fence is at most `key`, or the first.
    pub fn route(&self, key: &[u8]) -> usize {
        let Some(first) = self.keys.first() else {
            return 0;
        };
        match order_by_common(key, &first[..self.skip]) {
            Ordering::Less => return 0,
            Ordering::Greater => return self.keys.len() - 1,
            Ordering::Equal => {}
        }
        let probe = prefix(&key[self.skip..]);
        let (mut lo, mut hi) = (0, self.keys.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let order = compare(
                self.prefixes[mid],
                || self.keys[mid][self.skip..].cmp(&key[self.skip..]),
                probe,
            );
            if order == Ordering::Greater {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo.saturating_sub(1)
    }

    /// Bytes of heap the fences hold.
    pub fn heap_bytes(&self) -> usize {
        let keys: usize = self.keys.iter().map(|k| k.len()).sum();
        keys + self.keys.capacity() * std::mem::size_of::<Box<[u8]>>()
            + self.prefixes.capacity() * 8
    }

    /// Narrows `skip` to what `key` shares with the fences, before it joins them.
    fn admit(&mut self, key: &[u8]) {
        let Some(first) = self.keys.first() else {
            self.skip = key.len();
            return;
        };
        let shared = shared_len(key, &first[..self.skip]);
        if shared < self.skip {
            self.skip = shared;
            self.retake_prefixes();
        }
    }

    fn retake_prefixes(&mut self) {
        let skip = self.skip;
        self.prefixes = self.keys.iter().map(|k| prefix(&k[skip..])).collect();
    }
}
