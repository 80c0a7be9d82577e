//! `stats()`: what the engine holds and has done.

use std::sync::atomic::Ordering;

use crate::store::Inner;
use crate::{Lsn, SyncPolicy};

/// A snapshot of the engine's counters and sizes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// Live keys.
    pub keys: u64,
    /// Heap bytes held by the in-memory index (keys and locations), excluding allocator
    /// overhead: the memory cost of the keyspace.
    pub index_bytes: u64,
    /// Bytes of log operations that hold current values.
    pub live_bytes: u64,
    /// Bytes of overwritten or deleted operations, reclaimable by compaction.
    pub dead_bytes: u64,
    /// Bytes the segments hold: headers and records, without the zeros preallocated past the
    /// active segment's end (on disk until it is sealed or the store closes).
    pub segment_bytes: u64,
    /// Segment files, the active one included.
    pub segments: usize,
    /// Newest committed LSN.
    pub last_lsn: Lsn,
    /// Lowest LSN `wal_since` accepts.
    pub wal_start_lsn: Lsn,
    /// `fdatasync` calls on the log so far (one per commit group under `Always`).
    pub fsyncs: u64,
    /// Compactions completed since open.
    pub compactions: u64,
    /// The configured durability.
    pub sync_policy: SyncPolicy,
    /// Whether writes are refused after an I/O failure.
    pub poisoned: bool,
}

impl Stats {
    pub(crate) fn collect(inner: &Inner) -> Self {
        let state = inner.state.read();
        Stats {
            keys: state.index.len() as u64,
            index_bytes: state.index.heap_bytes() as u64,
            live_bytes: state.live_bytes,
            dead_bytes: state.segments.values().map(|s| s.dead_bytes).sum(),
            segment_bytes: state.segments.values().map(|s| s.len).sum(),
            segments: state.segments.len(),
            last_lsn: inner.last_lsn.load(Ordering::Acquire),
            wal_start_lsn: crate::wal::iter::oldest_available(&state),
            fsyncs: inner.counters.fsyncs.load(Ordering::Relaxed),
            compactions: inner.counters.compactions.load(Ordering::Relaxed),
            sync_policy: inner.opts.sync_policy,
            poisoned: inner.poison_reason().is_some(),
        }
    }
}

/// How much sealed log a WAL consumer at some LSN pins, from [`crate::KvStore::wal_retention`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalRetention {
    /// Bytes of sealed log segments holding records after the consumer's LSN.
    pub retained_bytes: u64,
    /// Further bytes that may accumulate before compaction stops waiting for this consumer;
    /// 0 means it will have to resync from a snapshot once compaction runs.
    pub bytes_until_resync: u64,
    /// Whether `wal_since` can still serve the consumer.
    pub available: bool,
}

impl WalRetention {
    pub(crate) fn compute(inner: &Inner, lsn: Lsn) -> Self {
        let active = inner.active_id();
        let state = inner.state.read();
        let retained_bytes = retained_bytes(&state, active, lsn);
        let available = lsn >= crate::wal::iter::oldest_available(&state);
        WalRetention {
            retained_bytes,
            bytes_until_resync: inner
                .opts
                .max_retained_wal_bytes
                .saturating_sub(retained_bytes),
            available,
        }
    }
}

/// Bytes of sealed log segments with records after `lsn`.
pub(crate) fn retained_bytes(state: &crate::index::State, active: u32, lsn: Lsn) -> u64 {
    state
        .log_segments()
        .filter(|(id, s)| **id != active && !s.is_empty() && s.max_lsn > lsn)
        .map(|(_, s)| s.len)
        .sum()
}
