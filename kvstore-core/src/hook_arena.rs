//! Where the commit leader copies the records it hands to the commit hook: 64 KiB chunks
//! shared by many groups' records, each record a slice of one.
//!
//! A chunk is freed when its last record is dropped, by whichever thread drops it: with
//! replication, a replica's worker thread. glibc then takes the leader's malloc arena lock
//! (and, for a 64 KiB chunk, consolidates that arena's free lists under it) while the leader
//! allocates for the index on the same arena: the leader slept on that lock hundreds of times
//! per 200,000 replicated puts. So the arena keeps a handle on each chunk it filled and
//! reuses the oldest once every record of it is gone: the chunks cycle on the leader's
//! thread, and nobody else frees them.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

/// Bytes the arena allocates at a time (a larger group gets its own buffer).
pub(crate) const CHUNK: usize = 64 << 10;

/// Filled chunks the arena holds on to waiting for their records to be dropped. Past this
/// (a lagging consumer pins records for long), the oldest is let go and freed by whoever
/// drops its last record.
const MAX_RETIRED: usize = 32;

#[derive(Default)]
pub(crate) struct HookArena {
    current: BytesMut,
    /// The first slice taken from each earlier chunk, oldest first: it keeps the chunk from
    /// being freed elsewhere, and once it is the chunk's only reference, the chunk is free.
    retired: VecDeque<Bytes>,
    /// `current` is a new chunk no slice was taken from yet.
    fresh: bool,
}

impl HookArena {
    /// Copies `parts` (`total` bytes together) into one buffer and returns it, frozen.
    pub fn copy<'a>(&mut self, total: usize, parts: impl Iterator<Item = &'a [u8]>) -> Bytes {
        if total > CHUNK {
            // In the arena, this buffer would come back and be reused for ever after: the
            // leader would keep the largest group's size for good.
            let mut own = BytesMut::with_capacity(total);
            parts.for_each(|p| own.extend_from_slice(p));
            return own.freeze();
        }
        if self.current.capacity() < total {
            // Let go of the old chunk's tail first: it counts as a reference to that chunk.
            self.current = BytesMut::new();
            self.current = self.next_chunk();
            self.fresh = true;
        }
        parts.for_each(|p| self.current.extend_from_slice(p));
        let shared = self.current.split().freeze();
        if std::mem::take(&mut self.fresh) {
            self.retired.push_back(shared.clone());
            if self.retired.len() > MAX_RETIRED {
                self.retired.pop_front();
            }
        }
        shared
    }

    /// The oldest retired chunk if every record of it was dropped, else a new one.
    fn next_chunk(&mut self) -> BytesMut {
        if self.retired.front().is_some_and(Bytes::is_unique) {
            if let Some(Ok(mut chunk)) = self.retired.pop_front().map(Bytes::try_into_mut) {
                chunk.clear();
                if chunk.try_reclaim(CHUNK) {
                    return chunk;
                }
            }
        }
        BytesMut::with_capacity(CHUNK)
    }

    /// Bytes of room the current chunk has left.
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.current.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(arena: &mut HookArena, len: usize) -> Bytes {
        let part = vec![7u8; len];
        arena.copy(len, std::iter::once(part.as_slice()))
    }

    #[test]
    fn a_chunk_whose_records_were_dropped_is_reused() {
        let mut arena = HookArena::default();
        let first = fill(&mut arena, 1000);
        let first_chunk = first.as_ptr();
        drop(first);
        // Fill the rest of the chunk, keeping nothing: the next copy needs a new chunk.
        while arena.capacity() >= 1000 {
            drop(fill(&mut arena, 1000));
        }
        let next = fill(&mut arena, 1000);
        assert_eq!(next.as_ptr(), first_chunk, "the first chunk came back");
        assert_eq!(&next[..], &[7u8; 1000][..]);
    }

    #[test]
    fn a_chunk_with_live_records_is_not_reused() {
        let mut arena = HookArena::default();
        let kept = fill(&mut arena, 1000);
        while arena.capacity() >= 1000 {
            drop(fill(&mut arena, 1000));
        }
        let next = fill(&mut arena, 1000);
        let first_chunk = kept.as_ptr();
        assert_ne!(next.as_ptr(), first_chunk);
        assert_eq!(
            &kept[..],
            &[7u8; 1000][..],
            "a live record is never overwritten"
        );
    }

    #[test]
    fn a_group_larger_than_a_chunk_gets_its_own_buffer() {
        let mut arena = HookArena::default();
        drop(fill(&mut arena, 10));
        let large = fill(&mut arena, CHUNK * 2);
        assert_eq!(large.len(), CHUNK * 2);
        drop(large);
        assert!(arena.capacity() <= CHUNK);
    }
}
