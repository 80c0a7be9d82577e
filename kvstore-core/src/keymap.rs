//! `KeyMap`: the ordered map from key to [`Location`] that is the in-memory index.
//!
//! A `BTreeMap<Box<[u8]>, Location>` costs about 96 bytes per 16-byte key (a heap allocation
//! per key, 24-byte locations, half-empty nodes). `KeyMap` keeps keys in sorted leaves of up
//! to [`MAX_LEAF`] entries, each leaf storing its keys back to back in one buffer, their ends
//! and packed 20-byte locations in two more; a sorted vector of fence keys routes to leaves.
//! That is about 40 bytes plus the key length per entry, and it is built in one pass from
//! sorted input, which is what recovery produces.

use std::cmp::Ordering;
use std::ops::Bound;

use crate::index::Location;

/// Entries per leaf before it splits in two.
const MAX_LEAF: usize = 128;
/// Entries per leaf when built from sorted input: room to grow before the first split.
const BULK_LEAF: usize = 100;
/// Extra entries a full leaf reserves at a time (growth without doubling keeps memory tight).
const GROW_STEP: usize = 16;

/// A [`Location`] in 20 bytes (5 × u32) instead of 24.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PackedLoc([u32; 5]);

impl From<Location> for PackedLoc {
    fn from(l: Location) -> Self {
        PackedLoc([
            l.segment,
            l.value_offset,
            l.value_len,
            l.lsn as u32,
            (l.lsn >> 32) as u32,
        ])
    }
}

impl From<PackedLoc> for Location {
    fn from(p: PackedLoc) -> Self {
        let [segment, value_offset, value_len, lo, hi] = p.0;
        Location {
            segment,
            value_offset,
            value_len,
            lsn: u64::from(lo) | (u64::from(hi) << 32),
        }
    }
}

/// The first 8 bytes of a key, big-endian, zero-padded: `prefix(a) < prefix(b)` implies
/// `a < b`, so searches compare integers and look at whole keys only on a tie.
fn prefix(key: &[u8]) -> u64 {
    let mut p = [0u8; 8];
    let n = key.len().min(8);
    p[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(p)
}

/// Orders a stored key (with its prefix) against a probe.
fn compare(stored_prefix: u64, stored: impl FnOnce() -> Ordering, probe_prefix: u64) -> Ordering {
    stored_prefix.cmp(&probe_prefix).then_with(stored)
}

#[derive(Debug, Default, Clone)]
struct Leaf {
    keys: Vec<u8>,
    /// End offset in `keys` of each key.
    ends: Vec<u32>,
    /// Bytes every key of the leaf starts with (at least: it may share more). Keys such as
    /// `user:0000123` share their first 8 bytes, which would make every prefix equal and every
    /// comparison a byte comparison; a leaf's prefixes start after what its keys share.
    skip: usize,
    /// `prefix(&key[skip..])` of each key.
    prefixes: Vec<u64>,
    locs: Vec<PackedLoc>,
}

/// How many leading bytes `a` and `b` share.
fn shared_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl Leaf {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn start(&self, i: usize) -> usize {
        if i == 0 {
            0
        } else {
            self.ends[i - 1] as usize
        }
    }

    fn key(&self, i: usize) -> &[u8] {
        &self.keys[self.start(i)..self.ends[i] as usize]
    }

    fn search(&self, key: &[u8]) -> Result<usize, usize> {
        if self.skip > 0 && !self.ends.is_empty() {
            // Every key here starts with `common`: a probe that does not sorts before or
            // after all of them.
            let common = &self.key(0)[..self.skip];
            let head = &key[..key.len().min(self.skip)];
            match head.cmp(common) {
                Ordering::Less => return Err(0),
                Ordering::Greater => return Err(self.len()),
                Ordering::Equal => {}
            }
        }
        let probe = prefix(&key[self.skip.min(key.len())..]);
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match compare(self.prefixes[mid], || self.key(mid).cmp(key), probe) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    /// Appends `key`, which must follow every key here and start with the leaf's `skip`
    /// shared bytes.
    fn push(&mut self, key: &[u8], loc: PackedLoc) {
        self.keys.extend_from_slice(key);
        self.ends.push(self.keys.len() as u32);
        self.prefixes.push(prefix(&key[self.skip..]));
        self.locs.push(loc);
    }

    /// Makes room for `key`: if it does not start with the bytes all keys here share, the
    /// shared part shrinks to what it does share and every prefix is taken again.
    fn admit(&mut self, key: &[u8]) {
        if self.ends.is_empty() {
            self.skip = key.len();
            return;
        }
        let shared = shared_len(key, &self.key(0)[..self.skip]);
        if shared < self.skip {
            self.skip = shared;
            let prefixes: Vec<u64> = (0..self.len())
                .map(|i| prefix(&self.key(i)[shared..]))
                .collect();
            self.prefixes = prefixes;
        }
    }

    fn insert_at(&mut self, i: usize, key: &[u8], loc: PackedLoc) {
        self.admit(key);
        if self.ends.len() == self.ends.capacity() {
            self.ends.reserve_exact(GROW_STEP);
            self.prefixes.reserve_exact(GROW_STEP);
            self.locs.reserve_exact(GROW_STEP);
        }
        if self.keys.capacity() - self.keys.len() < key.len() {
            self.keys.reserve_exact(key.len() * GROW_STEP);
        }
        let at = self.start(i);
        let old_len = self.keys.len();
        self.keys.resize(old_len + key.len(), 0);
        self.keys.copy_within(at..old_len, at + key.len());
        self.keys[at..at + key.len()].copy_from_slice(key);
        self.ends.insert(i, (at + key.len()) as u32);
        for end in &mut self.ends[i + 1..] {
            *end += key.len() as u32;
        }
        self.prefixes.insert(i, prefix(&key[self.skip..]));
        self.locs.insert(i, loc);
    }

    fn remove_at(&mut self, i: usize) -> PackedLoc {
        let (start, end) = (self.start(i), self.ends[i] as usize);
        self.keys.drain(start..end);
        self.ends.remove(i);
        for e in &mut self.ends[i..] {
            *e -= (end - start) as u32;
        }
        self.prefixes.remove(i);
        self.locs.remove(i)
    }

    /// Moves the upper half into a new leaf.
    fn split(&mut self) -> Leaf {
        let mid = self.len() / 2;
        let cut = self.start(mid);
        // Both halves still share what the whole leaf shared.
        let mut right = Leaf {
            skip: self.skip,
            keys: self.keys[cut..].to_vec(),
            ends: self.ends[mid..].iter().map(|e| e - cut as u32).collect(),
            prefixes: self.prefixes[mid..].to_vec(),
            locs: self.locs[mid..].to_vec(),
        };
        right.keys.shrink_to_fit();
        self.keys.truncate(cut);
        self.ends.truncate(mid);
        self.prefixes.truncate(mid);
        self.locs.truncate(mid);
        self.keys.shrink_to_fit();
        self.ends.shrink_to_fit();
        self.prefixes.shrink_to_fit();
        self.locs.shrink_to_fit();
        right
    }
}

/// Builds a [`KeyMap`] from entries pushed in strictly increasing key order.
#[derive(Debug, Default)]
pub(crate) struct KeyMapBuilder {
    map: KeyMap,
    /// The next leaf's keys, back to back, and each key's end and location.
    keys: Vec<u8>,
    pending: Vec<(usize, Location)>,
}

impl KeyMapBuilder {
    pub fn push(&mut self, key: &[u8], loc: Location) {
        self.keys.extend_from_slice(key);
        self.pending.push((self.keys.len(), loc));
        if self.pending.len() == BULK_LEAF {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let mut start = 0;
        let entries: Vec<(&[u8], Location)> = self
            .pending
            .iter()
            .map(|(end, loc)| {
                let key = &self.keys[start..*end];
                start = *end;
                (key, *loc)
            })
            .collect();
        if !entries.is_empty() {
            self.map.push_bulk_leaf(&entries);
        }
        self.keys.clear();
        self.pending.clear();
    }

    pub fn finish(mut self) -> KeyMap {
        self.flush();
        self.map
    }
}

/// The ordered key → [`Location`] map of the index.
#[derive(Debug, Default, Clone)]
pub(crate) struct KeyMap {
    leaves: Vec<Leaf>,
    /// `fences[i]` ≤ every key of leaf `i` < every key of leaf `i + 1`.
    fences: Vec<Box<[u8]>>,
    /// `prefix(fences[i])`.
    fence_prefixes: Vec<u64>,
    len: usize,
}

impl KeyMap {
    /// Builds a map from entries in strictly increasing key order.
    #[cfg(test)]
    pub fn from_sorted<'a>(entries: impl IntoIterator<Item = (&'a [u8], Location)>) -> Self {
        let mut builder = KeyMapBuilder::default();
        for (key, loc) in entries {
            builder.push(key, loc);
        }
        builder.finish()
    }

    /// Appends a leaf allocated at its exact size (growing vectors and shrinking them after
    /// would leave the allocator's heap full of holes).
    fn push_bulk_leaf(&mut self, entries: &[(&[u8], Location)]) {
        let key_bytes = entries.iter().map(|(k, _)| k.len()).sum();
        let skip = match (entries.first(), entries.last()) {
            (Some((first, _)), Some((last, _))) => shared_len(first, last),
            _ => 0,
        };
        let mut leaf = Leaf {
            skip,
            keys: Vec::with_capacity(key_bytes),
            ends: Vec::with_capacity(entries.len()),
            prefixes: Vec::with_capacity(entries.len()),
            locs: Vec::with_capacity(entries.len()),
        };
        for (key, loc) in entries {
            leaf.push(key, (*loc).into());
        }
        self.len += entries.len();
        self.set_fence(self.leaves.len(), leaf.key(0), true);
        self.leaves.push(leaf);
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Appends `right`, every key of which follows every key of `self`.
    pub fn append(&mut self, mut right: KeyMap) {
        self.leaves.append(&mut right.leaves);
        self.fences.append(&mut right.fences);
        self.fence_prefixes.append(&mut right.fence_prefixes);
        self.len += right.len;
    }

    /// Sets (or with `insert`, inserts) the fence of leaf `i`.
    fn set_fence(&mut self, i: usize, key: &[u8], insert: bool) {
        if insert {
            self.fences.insert(i, key.into());
            self.fence_prefixes.insert(i, prefix(key));
        } else {
            self.fences[i] = key.into();
            self.fence_prefixes[i] = prefix(key);
        }
    }

    /// The leaf that holds `key` if it is present (and where it would go otherwise): the last
    /// leaf whose fence is at most `key`, or the first.
    fn leaf_for(&self, key: &[u8]) -> usize {
        let probe = prefix(key);
        let (mut lo, mut hi) = (0, self.fences.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let order = compare(
                self.fence_prefixes[mid],
                || (*self.fences[mid]).cmp(key),
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

    pub fn get(&self, key: &[u8]) -> Option<Location> {
        let leaf = self.leaves.get(self.leaf_for(key))?;
        leaf.search(key).ok().map(|i| leaf.locs[i].into())
    }

    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` to `loc`; returns the location it replaced.
    pub fn insert(&mut self, key: &[u8], loc: Location) -> Option<Location> {
        if self.leaves.is_empty() {
            self.leaves.push(Leaf::default());
            self.set_fence(0, key, true);
        }
        let li = self.leaf_for(key);
        let leaf = &mut self.leaves[li];
        match leaf.search(key) {
            Ok(i) => Some(std::mem::replace(&mut leaf.locs[i], loc.into()).into()),
            Err(i) => {
                leaf.insert_at(i, key, loc.into());
                self.len += 1;
                let split = (leaf.len() > MAX_LEAF).then(|| leaf.split());
                if li == 0 && i == 0 {
                    self.set_fence(0, key, false);
                }
                if let Some(right) = split {
                    self.set_fence(li + 1, right.key(0), true);
                    self.leaves.insert(li + 1, right);
                }
                None
            }
        }
    }

    /// Replaces the location of `key` only if it still is `expected`.
    pub fn replace_if(&mut self, key: &[u8], expected: Location, new: Location) -> bool {
        let li = self.leaf_for(key);
        let Some(leaf) = self.leaves.get_mut(li) else {
            return false;
        };
        match leaf.search(key) {
            Ok(i) if Location::from(leaf.locs[i]) == expected => {
                leaf.locs[i] = new.into();
                true
            }
            _ => false,
        }
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Location> {
        let li = self.leaf_for(key);
        let leaf = self.leaves.get_mut(li)?;
        let i = leaf.search(key).ok()?;
        let loc = leaf.remove_at(i);
        self.len -= 1;
        if leaf.len() == 0 {
            self.leaves.remove(li);
            self.fences.remove(li);
            self.fence_prefixes.remove(li);
        }
        Some(loc.into())
    }

    /// Up to `limit` entries inside `(lo, hi)`, from the low end, or from the high end
    /// (largest first) when `from_high`.
    pub fn chunk(
        &self,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        limit: usize,
        from_high: bool,
    ) -> Vec<(Box<[u8]>, Location)> {
        let mut out = Vec::new();
        self.visit(lo, hi, limit, from_high, |k, l| out.push((k.into(), l)));
        out
    }

    /// Hands up to `limit` entries inside `(lo, hi)` to `f`, in key order from the low end, or
    /// from the high end when `from_high`; returns how many.
    pub fn visit(
        &self,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        limit: usize,
        from_high: bool,
        mut f: impl FnMut(&[u8], Location),
    ) -> usize {
        let above_lo = |k: &[u8]| match lo {
            Bound::Included(b) => k >= b,
            Bound::Excluded(b) => k > b,
            Bound::Unbounded => true,
        };
        let below_hi = |k: &[u8]| match hi {
            Bound::Included(b) => k <= b,
            Bound::Excluded(b) => k < b,
            Bound::Unbounded => true,
        };
        let mut seen = 0;
        if self.leaves.is_empty() {
            return seen;
        }
        if !from_high {
            let (mut li, mut i) = match lo {
                Bound::Unbounded => (0, 0),
                Bound::Included(b) | Bound::Excluded(b) => {
                    let li = self.leaf_for(b);
                    (li, self.leaves[li].search(b).unwrap_or_else(|i| i))
                }
            };
            while seen < limit && li < self.leaves.len() {
                let leaf = &self.leaves[li];
                if i >= leaf.len() {
                    li += 1;
                    i = 0;
                    continue;
                }
                let key = leaf.key(i);
                if !below_hi(key) {
                    break;
                }
                if above_lo(key) {
                    f(key, leaf.locs[i].into());
                    seen += 1;
                }
                i += 1;
            }
        } else {
            let (mut li, mut i) = match hi {
                Bound::Unbounded => {
                    let li = self.leaves.len() - 1;
                    (li, self.leaves[li].len())
                }
                Bound::Included(b) | Bound::Excluded(b) => {
                    let li = self.leaf_for(b);
                    (li, self.leaves[li].search(b).map_or_else(|i| i, |i| i + 1))
                }
            };
            // `i` is one past the candidate; walk down.
            while seen < limit {
                if i == 0 {
                    if li == 0 {
                        break;
                    }
                    li -= 1;
                    i = self.leaves[li].len();
                    continue;
                }
                i -= 1;
                let leaf = &self.leaves[li];
                let key = leaf.key(i);
                if !above_lo(key) {
                    break;
                }
                if below_hi(key) {
                    f(key, leaf.locs[i].into());
                    seen += 1;
                }
            }
        }
        seen
    }

    /// Bytes of heap this map holds (capacities, not lengths).
    pub fn heap_bytes(&self) -> usize {
        let leaves: usize = self
            .leaves
            .iter()
            .map(|l| {
                l.keys.capacity()
                    + l.ends.capacity() * 4
                    + l.prefixes.capacity() * 8
                    + l.locs.capacity() * 20
            })
            .sum();
        let fences: usize = self.fences.iter().map(|f| f.len() + 16 + 8).sum();
        leaves + fences + self.leaves.capacity() * std::mem::size_of::<Leaf>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn loc(n: u64) -> Location {
        Location {
            segment: n as u32,
            value_offset: n.wrapping_mul(3) as u32,
            value_len: n.wrapping_mul(7) as u32,
            lsn: n.rotate_left(33) ^ n,
        }
    }

    #[derive(Debug, Clone)]
    enum Step {
        Insert(Vec<u8>, u64),
        Remove(Vec<u8>),
        Chunk(Vec<u8>, Vec<u8>, bool, bool, usize),
    }

    /// Short keys, and keys behind shared heads longer than 8 bytes that diverge inside,
    /// after and at the end of the head (so leaves share, and lose, long common prefixes).
    fn key() -> impl Strategy<Value = Vec<u8>> {
        let heads: [&[u8]; 5] = [b"", b"user:0000", b"user:00001", b"user:0", b"usa"];
        (
            prop::sample::select(heads.to_vec()),
            prop::collection::vec(0u8..6, 0..4),
        )
            .prop_map(|(head, tail)| {
                let mut key = head.to_vec();
                key.extend(tail);
                key
            })
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (key(), any::<u64>()).prop_map(|(k, n)| Step::Insert(k, n)),
            2 => key().prop_map(Step::Remove),
            1 => (key(), key(), any::<bool>(), any::<bool>(), 1usize..50)
                .prop_map(|(a, b, inc, rev, n)| Step::Chunk(a, b, inc, rev, n)),
        ]
    }

    proptest! {
        #[test]
        fn behaves_like_a_btreemap(
            initial in prop::collection::btree_map(key(), any::<u64>(), 0..300),
            steps in prop::collection::vec(step(), 0..400),
        ) {
            let mut model: BTreeMap<Vec<u8>, Location> =
                initial.iter().map(|(k, n)| (k.clone(), loc(*n))).collect();
            let mut map = KeyMap::from_sorted(model.iter().map(|(k, l)| (k.as_slice(), *l)));
            for s in steps {
                match s {
                    Step::Insert(k, n) => {
                        prop_assert_eq!(map.insert(&k, loc(n)), model.insert(k, loc(n)));
                    }
                    Step::Remove(k) => prop_assert_eq!(map.remove(&k), model.remove(&k)),
                    Step::Chunk(a, b, inclusive, rev, n) => {
                        let lo = Bound::Excluded(a.as_slice());
                        let hi = if inclusive { Bound::Included(b.as_slice()) } else { Bound::Unbounded };
                        let got: Vec<(Vec<u8>, Location)> = map
                            .chunk(lo, hi, n, rev)
                            .into_iter()
                            .map(|(k, l)| (k.into_vec(), l))
                            .collect();
                        let valid = match hi { Bound::Included(b) => a.as_slice() < b, _ => true };
                        if valid {
                            let range = model.range::<[u8], _>((lo, hi)).map(|(k, l)| (k.clone(), *l));
                            let want: Vec<_> = if rev { range.rev().take(n).collect() } else { range.take(n).collect() };
                            prop_assert_eq!(got, want);
                        }
                    }
                }
                prop_assert_eq!(map.len(), model.len());
            }
            for (k, l) in &model {
                prop_assert_eq!(map.get(k), Some(*l));
            }
            let all: Vec<Vec<u8>> = map
                .chunk(Bound::Unbounded, Bound::Unbounded, usize::MAX, false)
                .into_iter()
                .map(|(k, _)| k.into_vec())
                .collect();
            prop_assert_eq!(all, model.keys().cloned().collect::<Vec<_>>());
        }
    }

    #[test]
    fn sixteen_byte_keys_cost_under_48_bytes_plus_the_key() {
        let keys: Vec<[u8; 16]> = (0..100_000u64)
            .map(|i| {
                let mut k = [0u8; 16];
                k[..8].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
                k
            })
            .collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        let bulk = KeyMap::from_sorted(sorted.iter().map(|k| (k.as_slice(), loc(1))));
        assert!(
            bulk.heap_bytes() / keys.len() <= 48 + 16,
            "{}",
            bulk.heap_bytes()
        );
        let mut grown = KeyMap::default();
        for k in &keys {
            grown.insert(k, loc(1));
        }
        assert!(
            grown.heap_bytes() / keys.len() <= 48 + 16,
            "{}",
            grown.heap_bytes()
        );
    }
}
