//! Server counters shown by `INFO stats` and `INFO clients`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Monotonic counters and gauges of one server; updated with relaxed atomics (they are
/// statistics, not synchronisation).
#[derive(Debug, Default)]
pub(crate) struct ServerStats {
    pub connections_received: AtomicU64,
    pub connected_clients: AtomicU64,
    /// Clients blocked in `WAIT` now.
    pub blocked_clients: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub commands_processed: AtomicU64,
    pub error_replies: AtomicU64,
    pub protocol_errors: AtomicU64,
    pub keyspace_hits: AtomicU64,
    pub keyspace_misses: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
}

impl ServerStats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Counts key lookups for `keyspace_hits` and `keyspace_misses`: one per key a read
    /// command looked up, as Redis counts them (`GET`, `MGET`, `EXISTS`, reads in `EXEC`).
    pub(crate) fn lookups(&self, found: impl IntoIterator<Item = bool>) {
        let (mut hits, mut misses) = (0, 0);
        for found in found {
            if found {
                hits += 1;
            } else {
                misses += 1;
            }
        }
        Self::add(&self.keyspace_hits, hits);
        Self::add(&self.keyspace_misses, misses);
    }
}
