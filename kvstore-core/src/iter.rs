//! Ordered iteration that never holds the index lock for longer than one chunk.

use std::collections::VecDeque;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use crate::error::Result;
use crate::index::{Location, State};
use crate::io::FileIo;
use crate::KvStore;

/// Keys fetched per visit to the index.
const CHUNK_KEYS: usize = 256;

type Pending = (Box<[u8]>, Location, Arc<dyn FileIo>);

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

/// The smallest key greater than every key starting with `prefix`, if any.
fn prefix_end(prefix: &[u8]) -> Bound<Vec<u8>> {
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
        }
    }

    fn fetch(&mut self, from_front: bool) {
        if self.middle_done {
            return;
        }
        let state = self.store.inner.state.read();
        let chunk: Vec<Pending> = state
            .index
            .chunk(
                as_slice(&self.lo),
                as_slice(&self.hi),
                CHUNK_KEYS,
                !from_front,
            )
            .into_iter()
            .filter_map(|(k, loc)| entry(&state, k, loc))
            .collect();
        drop(state);
        if chunk.len() < CHUNK_KEYS {
            self.middle_done = true;
        }
        if let Some((last, _, _)) = chunk.last() {
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

    fn read(&self, (key, loc, file): Pending) -> Result<(Vec<u8>, Vec<u8>)> {
        let value = loc.read_value(&*file, &key, self.store.path())?;
        Ok((key.into_vec(), value))
    }
}

fn entry(state: &State, key: Box<[u8]>, loc: Location) -> Option<Pending> {
    let file = state.segments.get(&loc.segment)?.file.clone();
    Some((key, loc, file))
}

impl Iterator for Range {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.front.is_empty() {
            self.fetch(true);
        }
        let item = self.front.pop_front().or_else(|| self.back.pop_back())?;
        Some(self.read(item))
    }
}

impl DoubleEndedIterator for Range {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.back.is_empty() {
            self.fetch(false);
        }
        let item = self.back.pop_front().or_else(|| self.front.pop_back())?;
        Some(self.read(item))
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
