//! Ordered iteration that never holds the index lock for longer than one chunk.

use std::collections::VecDeque;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use crate::error::Result;
use crate::index::Location;
use crate::io::FileIo;
use crate::wal::segment::SegmentId;
use crate::KvStore;

/// Keys fetched per visit to the index.
const CHUNK_KEYS: usize = 256;

type Pending = (Box<[u8]>, Location);

/// A key-ordered iterator over `(key, value)` pairs, from [`KvStore::range`],
/// [`KvStore::iter`] or [`KvStore::scan_prefix`]. Double-ended: `.rev()` walks backwards.
///
/// Weakly consistent: keys are read from the index a chunk at a time, so writes made during
/// the scan may or may not be seen, but every key is yielded at most once and in order.
pub struct Range {
    store: KvStore,
    /// Bound of the part of the range not yet fetched by either end.
    lo: Bound<Vec<u8>>,
    hi: Bound<Vec<u8>>,
    /// Nothing is left between `lo` and `hi`.
    middle_done: bool,
    front: VecDeque<Pending>,
    /// Fetched by the back end, largest key first.
    back: VecDeque<Pending>,
    /// The segment files fetched keys point into (held open: compaction may delete them).
    files: Vec<(SegmentId, Arc<dyn FileIo>)>,
}

impl std::fmt::Debug for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Range")
            .field("lo", &self.lo)
            .field("hi", &self.hi)
            .finish()
    }
}

fn owned(b: Bound<&impl AsRef<[u8]>>) -> Bound<Vec<u8>> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_ref().to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.as_ref().to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn as_slice(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Whether `(lo, hi)` can hold a key; `BTreeMap::range` panics on inverted bounds.
fn non_empty(lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> bool {
    match (lo, hi) {
        (Bound::Unbounded, _) | (_, Bound::Unbounded) => true,
        (Bound::Included(a), Bound::Included(b)) => a <= b,
        (Bound::Included(a), Bound::Excluded(b))
        | (Bound::Excluded(a), Bound::Included(b))
        | (Bound::Excluded(a), Bound::Excluded(b)) => a < b,
    }
}

/// The upper bound of the keys that start with `prefix`: the smallest key greater than all of
/// them, or unbounded when there is none (`prefix` is empty or all `0xff`).
pub fn prefix_end(prefix: &[u8]) -> Bound<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Bound::Excluded(end);
        }
    }
    Bound::Unbounded
}

impl Range {
    pub(crate) fn new<K: AsRef<[u8]>>(store: KvStore, range: impl RangeBounds<K>) -> Self {
        let lo = owned(range.start_bound());
        let hi = owned(range.end_bound());
        Self::between(store, lo, hi)
    }

    pub(crate) fn prefix(store: KvStore, prefix: &[u8]) -> Self {
        Self::between(store, Bound::Included(prefix.to_vec()), prefix_end(prefix))
    }

    fn between(store: KvStore, lo: Bound<Vec<u8>>, hi: Bound<Vec<u8>>) -> Self {
        let middle_done = !non_empty(&lo, &hi);
        Range {
            store,
            lo,
            hi,
            middle_done,
            front: VecDeque::new(),
            back: VecDeque::new(),
            files: Vec::new(),
        }
    }

    fn fetch(&mut self, from_front: bool) {
        if self.middle_done {
            return;
        }
        let state = self.store.inner.state.read();
        let chunk: Vec<Pending> = state.index.chunk(
            as_slice(&self.lo),
            as_slice(&self.hi),
            CHUNK_KEYS,
            !from_front,
        );
        for (_, loc) in &chunk {
            if !self.files.iter().any(|(id, _)| *id == loc.segment) {
                if let Some(seg) = state.segments.get(&loc.segment) {
                    self.files.push((loc.segment, seg.file.clone()));
                }
            }
        }
        drop(state);
        if chunk.len() < CHUNK_KEYS {
            self.middle_done = true;
        }
        if let Some((last, _)) = chunk.last() {
            let bound = Bound::Excluded(last.to_vec());
            if from_front {
                self.lo = bound;
            } else {
                self.hi = bound;
            }
            if !non_empty(&self.lo, &self.hi) {
                self.middle_done = true;
            }
        }
        if from_front {
            self.front.extend(chunk);
        } else {
            self.back.extend(chunk);
        }
    }

    /// Prefetches the value `PREFETCH_DISTANCE` entries ahead in `queue` (either direction's
    /// queue is consumed from its front).
    fn prefetch_ahead(&self, queue: &VecDeque<Pending>) {
        if let Some((key, loc)) = queue.get(PREFETCH_DISTANCE) {
            if let Some((_, file)) = self.files.iter().find(|(id, _)| *id == loc.segment) {
                loc.prefetch(&**file, key.len());
            }
        }
    }

    fn read(&self, (key, loc): Pending) -> Result<(Vec<u8>, Vec<u8>)> {
        let file = self
            .files
            .iter()
            .find(|(id, _)| *id == loc.segment)
            .map(|(_, f)| f)
            .ok_or_else(|| crate::store::missing_segment(self.store.path(), loc.segment))?;
        let value = loc.read_value(&**file, &key, self.store.path())?;
        Ok((key.into_vec(), value))
    }
}

impl Iterator for Range {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.front.is_empty() {
            self.fetch(true);
        }
        self.prefetch_ahead(&self.front);
        let item = self.front.pop_front().or_else(|| self.back.pop_back())?;
        Some(self.read(item))
    }
}

impl DoubleEndedIterator for Range {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.back.is_empty() {
            self.fetch(false);
        }
        self.prefetch_ahead(&self.back);
        let item = self.back.pop_front().or_else(|| self.front.pop_back())?;
        Some(self.read(item))
    }
}

impl KvStore {
    /// Up to `limit` keys of `range`, in order, read from the index only (no value is read):
    /// for listing keys (`SCAN`, `KEYS`-like pages). Holds the index lock one chunk at a time.
    pub fn keys<K, R>(&self, range: R, limit: usize) -> Vec<Vec<u8>>
    where
        K: AsRef<[u8]>,
        R: RangeBounds<K>,
    {
        let mut lo = owned(range.start_bound());
        let hi = owned(range.end_bound());
        let mut keys: Vec<Vec<u8>> = Vec::new();
        while keys.len() < limit && non_empty(&lo, &hi) {
            let want = (limit - keys.len()).min(VISIT_CHUNK_KEYS);
            let before = keys.len();
            let state = self.inner.state.read();
            state
                .index
                .visit(as_slice(&lo), as_slice(&hi), want, false, |key, _| {
                    keys.push(key.to_vec())
                });
            drop(state);
            match keys.last() {
                Some(last) if keys.len() - before == want => lo = Bound::Excluded(last.clone()),
                _ => break,
            }
        }
        keys
    }
}

/// How many entries ahead of the one being read a scan prefetches.
const PREFETCH_DISTANCE: usize = 8;

/// Entries copied out of the index per visit in [`KvStore::for_each`].
const VISIT_CHUNK_KEYS: usize = 1024;

impl KvStore {
    /// Calls `f` with each key and value in `range`, in key order, without allocating per
    /// entry: slices point into mapped segment files or a reused buffer, valid for the call
    /// only. `f` returns `false` to stop early. Values are checksum-verified as in
    /// [`get`](Self::get). Weakly consistent like [`range`](Self::range), and like it never
    /// holds the index lock for longer than one chunk of keys.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let store = kvstore_core::KvStore::open(dir.path())?;
    /// store.put(b"a", b"1")?;
    /// store.put(b"b", b"22")?;
    /// let mut total = 0;
    /// store.for_each(b"a".as_slice()..b"z".as_slice(), |_key, value| {
    ///     total += value.len();
    ///     true
    /// })?;
    /// assert_eq!(total, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn for_each<K, R>(&self, range: R, mut f: impl FnMut(&[u8], &[u8]) -> bool) -> Result<()>
    where
        K: AsRef<[u8]>,
        R: RangeBounds<K>,
    {
        let mut lo = owned(range.start_bound());
        let hi = owned(range.end_bound());
        let mut keys: Vec<u8> = Vec::new();
        let mut entries: Vec<(usize, usize, Location)> = Vec::new();
        let mut files: Vec<(SegmentId, Arc<dyn FileIo>)> = Vec::new();
        let mut buf: Vec<u8> = Vec::new();
        while non_empty(&lo, &hi) {
            keys.clear();
            entries.clear();
            let state = self.inner.state.read();
            let n = state.index.visit(
                as_slice(&lo),
                as_slice(&hi),
                VISIT_CHUNK_KEYS,
                false,
                |key, loc| {
                    entries.push((keys.len(), key.len(), loc));
                    keys.extend_from_slice(key);
                },
            );
            for (_, _, loc) in &entries {
                if !files.iter().any(|(id, _)| *id == loc.segment) {
                    if let Some(seg) = state.segments.get(&loc.segment) {
                        files.push((loc.segment, seg.file.clone()));
                    }
                }
            }
            drop(state);
            for (i, (start, len, loc)) in entries.iter().enumerate() {
                if let Some((_, ahead_len, ahead)) = entries.get(i + PREFETCH_DISTANCE) {
                    if let Some((_, file)) = files.iter().find(|(id, _)| *id == ahead.segment) {
                        ahead.prefetch(&**file, *ahead_len);
                    }
                }
                let key = &keys[*start..start + len];
                let file = files
                    .iter()
                    .find(|(id, _)| *id == loc.segment)
                    .map(|(_, f)| f)
                    .ok_or_else(|| crate::store::missing_segment(self.path(), loc.segment))?;
                let value = loc.value_in(&**file, key, self.path(), &mut buf)?;
                if !f(key, value) {
                    return Ok(());
                }
            }
            match entries.last() {
                Some((start, len, _)) if n == VISIT_CHUNK_KEYS => {
                    lo = Bound::Excluded(keys[*start..start + len].to_vec());
                }
                _ => break,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_handles_ff() {
        assert_eq!(prefix_end(b"ab"), Bound::Excluded(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Bound::Excluded(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), Bound::Unbounded);
        assert_eq!(prefix_end(b""), Bound::Unbounded);
    }
}
