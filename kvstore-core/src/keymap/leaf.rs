//! A leaf of the [`KeyMap`](super::KeyMap): up to [`MAX_LEAF`] sorted keys stored back to
//! back in one buffer, with their ends, 8-byte search prefixes and packed locations.

use std::cmp::Ordering;

use crate::index::Location;

/// Entries per leaf before it splits in two.
pub(super) const MAX_LEAF: usize = 128;
/// Entries per leaf when built from sorted input: room to grow before the first split.
pub(super) const BULK_LEAF: usize = 100;
/// Most key bytes a leaf split off for ascending inserts sets aside (see `split_last`).
const MAX_APPEND_KEY_ROOM: usize = 16 << 10;
/// Extra entries a full leaf reserves at a time (growth without doubling keeps memory tight).
const GROW_STEP: usize = 16;

/// A [`Location`] in 20 bytes (5 × u32) instead of 24.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PackedLoc([u32; 5]);

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

/// An order-preserving 8-byte summary of a key: its first 7 bytes, zero-padded, then its
/// length capped at 8. `prefix(a) < prefix(b)` implies `a < b`, so searches compare integers.
/// Equal prefixes of keys of up to 7 bytes mean equal keys (the length tells `ab` from
/// `ab\0`), so a search that finds such a key never reads its bytes: a leaf's keys are
/// usually that short past what they share, and reading them was two cache misses (the
/// key's end offset and its bytes) in every lookup. Only longer keys that tie are compared
/// whole.
pub(super) fn prefix(key: &[u8]) -> u64 {
    let mut p = [0u8; 8];
    let n = key.len().min(7);
    p[..n].copy_from_slice(&key[..n]);
    p[7] = key.len().min(8) as u8;
    u64::from_be_bytes(p)
}

/// Orders a stored key (by its prefix, and its bytes only when that cannot decide) against
/// a probe's prefix.
pub(super) fn compare(
    stored_prefix: u64,
    stored: impl FnOnce() -> Ordering,
    probe_prefix: u64,
) -> Ordering {
    stored_prefix.cmp(&probe_prefix).then_with(|| {
        if stored_prefix & 0xff < 8 {
            Ordering::Equal
        } else {
            stored()
        }
    })
}

#[derive(Debug, Clone)]
pub(super) struct Leaf {
    pub keys: Vec<u8>,
    /// End offset in `keys` of each key.
    pub ends: Vec<u32>,
    /// Bytes every key of the leaf starts with (at least: it may share more). Keys such as
    /// `user:0000123` share their first 8 bytes, which would make every prefix equal and every
    /// comparison a byte comparison; a leaf's prefixes start after what its keys share.
    pub skip: usize,
    /// `prefix(&key[skip..])` of each key.
    pub prefixes: Vec<u64>,
    pub locs: Vec<PackedLoc>,
    /// The first `skip` bytes (up to [`HEAD`]) every key starts with, kept here so that
    /// placing a probe against them reads no key: that read cost two cache misses (the
    /// first key's end offset and its bytes) in every lookup.
    head: [u8; HEAD],
}

/// Shared key bytes a leaf keeps inline.
const HEAD: usize = 16;

/// Where `key` sorts against sorted keys that all start with `common`: before them all,
/// after them all, or (`Equal`) among them, where a search goes on past `common`.
pub(super) fn order_by_common(key: &[u8], common: &[u8]) -> Ordering {
    key[..key.len().min(common.len())].cmp(common)
}

/// How many leading bytes `a` and `b` share.
pub(super) fn shared_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl Leaf {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    fn start(&self, i: usize) -> usize {
        if i == 0 {
            0
        } else {
            self.ends[i - 1] as usize
        }
    }

    pub fn key(&self, i: usize) -> &[u8] {
        &self.keys[self.start(i)..self.ends[i] as usize]
    }

    /// A leaf of `skip` shared bytes, room for `entries` keys of `key_bytes` in all, and no
    /// keys yet: `push` them, each starting with the first `skip` bytes of `first`.
    pub fn with_capacity(skip: usize, first: &[u8], entries: usize, key_bytes: usize) -> Leaf {
        let mut leaf = Leaf {
            skip,
            keys: Vec::with_capacity(key_bytes),
            ends: Vec::with_capacity(entries),
            prefixes: Vec::with_capacity(entries),
            locs: Vec::with_capacity(entries),
            head: [0; HEAD],
        };
        leaf.set_head(first);
        leaf
    }

    fn set_head(&mut self, key: &[u8]) {
        let n = self.skip.min(HEAD);
        self.head[..n].copy_from_slice(&key[..n]);
    }

    pub fn search(&self, key: &[u8]) -> Result<usize, usize> {
        if self.ends.is_empty() {
            return Err(0);
        }
        // Every key here starts with the same `skip` bytes: a probe that does not sorts
        // before or after all of them.
        let inline = self.skip.min(HEAD);
        let mut order = order_by_common(key, &self.head[..inline]);
        if order == Ordering::Equal && self.skip > inline {
            // `key` is at least HEAD bytes long, or it would have sorted first.
            order = order_by_common(&key[inline..], &self.key(0)[inline..self.skip]);
        }
        match order {
            Ordering::Less => return Err(0),
            Ordering::Greater => return Err(self.len()),
            Ordering::Equal => {}
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
    pub fn push(&mut self, key: &[u8], loc: PackedLoc) {
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
            self.set_head(key);
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

    pub fn insert_at(&mut self, i: usize, key: &[u8], loc: PackedLoc) {
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

    pub fn remove_at(&mut self, i: usize) -> PackedLoc {
        let (start, end) = (self.start(i), self.ends[i] as usize);
        self.keys.drain(start..end);
        self.ends.remove(i);
        for e in &mut self.ends[i..] {
            *e -= (end - start) as u32;
        }
        self.prefixes.remove(i);
        self.locs.remove(i)
    }

    /// Moves the last key into a new leaf with room for a full leaf of keys like it, and
    /// leaves this one full. For the last leaf of the map when the key just inserted went to
    /// its end: ascending inserts (a sequential load, keys that carry a counter or a time)
    /// then fill leaves completely, without growing a leaf 16 entries at a time, instead of
    /// leaving a trail of half-empty ones behind.
    pub fn split_last(&mut self) -> Leaf {
        let last = self.len() - 1;
        let cut = self.start(last);
        let key_len = self.keys.len() - cut;
        let mut right = Leaf {
            skip: self.skip,
            // Room for a full leaf of such keys, within reason: with 64 KiB keys a full
            // leaf's worth would be 8 MiB set aside.
            keys: Vec::with_capacity((key_len * (MAX_LEAF + 1)).min(MAX_APPEND_KEY_ROOM)),
            ends: Vec::with_capacity(MAX_LEAF + 1),
            prefixes: Vec::with_capacity(MAX_LEAF + 1),
            locs: Vec::with_capacity(MAX_LEAF + 1),
            head: self.head,
        };
        right.keys.extend_from_slice(&self.keys[cut..]);
        right.ends.push(key_len as u32);
        right.prefixes.push(self.prefixes[last]);
        right.locs.push(self.locs[last]);
        self.keep_first(last);
        right
    }

    /// Moves the upper half into a new leaf.
    pub fn split(&mut self) -> Leaf {
        let mid = self.len() / 2;
        let cut = self.start(mid);
        // Both halves still share what the whole leaf shared.
        let mut right = Leaf {
            skip: self.skip,
            keys: self.keys[cut..].to_vec(),
            ends: self.ends[mid..].iter().map(|e| e - cut as u32).collect(),
            prefixes: self.prefixes[mid..].to_vec(),
            locs: self.locs[mid..].to_vec(),
            head: self.head,
        };
        right.keys.shrink_to_fit();
        self.keep_first(mid);
        right
    }

    /// Drops every entry from `entries` on, and the room they took.
    fn keep_first(&mut self, entries: usize) {
        let cut = self.start(entries);
        self.keys.truncate(cut);
        self.ends.truncate(entries);
        self.prefixes.truncate(entries);
        self.locs.truncate(entries);
        self.keys.shrink_to_fit();
        self.ends.shrink_to_fit();
        self.prefixes.shrink_to_fit();
        self.locs.shrink_to_fit();
    }
}
