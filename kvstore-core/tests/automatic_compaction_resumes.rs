//! Automatic compaction that found nothing to reclaim (a WAL consumer pinned the dead
//! segments) resumes when it can reclaim again:
//!
//! - the consumer catching up (or being released) makes the dead bytes compactable, and an
//!   idle store past its dead ratio is compacted (it used to wait for more dead bytes than
//!   there were at the stall, which an idle store never makes);
//! - after a manual `compact()` brought dead bytes down, new dead bytes past the ratio start
//!   a compaction (they used to have to climb above the stale level of the old stall).

mod common;

use std::time::{Duration, Instant};

use common::TestResult;
use kvstore_core::{KvStore, Options, SyncPolicy};

fn options() -> Options {
    Options::new()
        .sync_policy(SyncPolicy::Never)
        .segment_bytes(48 << 10)
        .compaction_dead_ratio(0.5)
        .compaction_min_dead_bytes(4 << 10)
        .maintenance_interval(Duration::from_millis(10))
        .auto_compaction(true)
}

fn overwrite(store: &KvStore, rounds: std::ops::Range<u8>) -> TestResult {
    for round in rounds {
        for i in 0..150u32 {
            store.put(format!("key{i:04}"), vec![round; 100])?;
        }
    }
    Ok(())
}

/// Pins the log with a consumer at LSN 0, makes the store mostly dead, and lets automatic
/// compaction find it can do nothing (the stall).
fn stalled_store(dir: &std::path::Path, rounds: u8) -> TestResult<KvStore> {
    let store = options().open(dir)?;
    store.retain_wal("replica", 0);
    overwrite(&store, 0..rounds)?;
    std::thread::sleep(Duration::from_millis(300));
    let s = store.stats();
    assert_eq!(s.compactions, 0, "a pinned store was compacted: {s:?}");
    assert!(
        s.dead_bytes * 2 >= s.live_bytes + s.dead_bytes,
        "not past the dead ratio: {s:?}"
    );
    Ok(store)
}

fn wait_for_compaction(store: &KvStore, after: u64, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if store.stats().compactions > after {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn compaction_resumes_once_the_wal_consumer_catches_up() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = stalled_store(dir.path(), 4)?;
    let before = store.stats();
    // The replica caught up: nothing is pinned any more, and the store is idle.
    store.retain_wal("replica", store.last_lsn());
    let resumed = wait_for_compaction(&store, before.compactions, Duration::from_secs(3));
    let after = store.stats();
    assert!(
        resumed && after.dead_bytes < before.dead_bytes / 2,
        "the WAL consumer caught up 3 s ago, the store is past its dead ratio and nothing \
         pins it, yet automatic compaction never ran again (the stall waits for \
         compaction_min_dead_bytes more dead bytes, which an idle store never makes): \
         before {before:?}, now {after:?}"
    );
    Ok(())
}

#[test]
fn a_manual_compaction_does_not_leave_a_stale_stall_threshold() -> TestResult {
    let dir = tempfile::tempdir()?;
    // A large stall level: many rounds of overwrites pinned by the consumer.
    let store = stalled_store(dir.path(), 12)?;
    let stalled_dead = store.stats().dead_bytes;
    store.release_wal("replica");
    store.compact()?;
    let compacted = store.stats();
    assert!(compacted.dead_bytes < stalled_dead / 4, "{compacted:?}");
    // New overwrites: the sealed segments become mostly dead again, far past the ratio and
    // compaction_min_dead_bytes, but below the level the old stall recorded.
    overwrite(&store, 100..104)?;
    let s = store.stats();
    assert!(s.segments >= 2, "{s:?}");
    let resumed = wait_for_compaction(&store, compacted.compactions, Duration::from_secs(3));
    let after = store.stats();
    assert!(
        resumed,
        "the store is past its dead ratio again after a manual compaction ({s:?}), but \
         automatic compaction still waits for the dead bytes to pass the level of a stall \
         that compaction already resolved ({stalled_dead} + 4096): now {after:?}"
    );
    Ok(())
}
