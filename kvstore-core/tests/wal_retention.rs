//! Compaction keeps the log segments a registered `wal_since` consumer (a replica) still
//! needs, up to `max_retained_wal_bytes`; past that limit it compacts them anyway and
//! `wal_since` reports `WalCompacted` for that consumer.

mod common;

use common::TestResult;
use kvstore_core::{Error, KvStore, Options, SyncPolicy, WalRecord};

const RETAINED_LIMIT_BYTES: u64 = 16 << 10;

fn overwrite(store: &KvStore, rounds: u32) -> TestResult {
    for r in 0..rounds {
        for k in 0..10u32 {
            store.put(format!("key{k}"), format!("round {r} {}", "w".repeat(60)))?;
        }
    }
    Ok(())
}

/// `wal_since(after)` yields every LSN after `after`, in order, up to the last one.
fn assert_complete_log(store: &KvStore, after: u64) -> TestResult {
    let records: Vec<WalRecord> = store.wal_since(after)?.collect::<Result<_, _>>()?;
    let lsns: Vec<u64> = records.iter().map(|r| r.lsn).collect();
    let expected: Vec<u64> = (after + 1..=store.last_lsn()).collect();
    assert_eq!(lsns, expected, "wal_since({after}) has gaps");
    Ok(())
}

#[test]
fn compaction_keeps_what_consumers_need_up_to_the_limit() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Options::new()
        .sync_policy(SyncPolicy::Never)
        .segment_bytes(4096)
        .auto_compaction(false)
        .max_retained_wal_bytes(RETAINED_LIMIT_BYTES)
        .open(dir.path())?;
    overwrite(&store, 5)?;
    let behind = store.last_lsn();
    store.retain_wal("replica-behind", behind);
    overwrite(&store, 10)?;
    assert!(store.wal_retention(behind).retained_bytes < RETAINED_LIMIT_BYTES);
    let report = store.compact()?;
    assert!(
        report.segments_compacted > 0,
        "the segments before the consumer are compacted"
    );
    assert_complete_log(&store, behind)?;
    let retention = store.wal_retention(behind);
    assert!(
        retention.available && retention.retained_bytes > 0,
        "{retention:?}"
    );
    assert!(matches!(
        store.wal_since(0),
        Err(Error::WalCompacted { .. })
    ));

    // The consumer falls further behind than the limit allows; a newer one stays within it.
    overwrite(&store, 40)?;
    let near = store.last_lsn() - 5;
    store.retain_wal("replica-near", near);
    assert!(store.wal_retention(behind).retained_bytes > RETAINED_LIMIT_BYTES);
    assert_eq!(store.wal_retention(behind).bytes_until_resync, 0);
    store.compact()?;
    match store.wal_since(behind) {
        Err(Error::WalCompacted {
            requested,
            oldest_available,
        }) => {
            assert_eq!(requested, behind);
            assert!(oldest_available > behind);
        }
        Ok(_) => return Err("the consumer past the limit still got the log".into()),
        Err(e) => return Err(format!("expected WalCompacted, got {e}").into()),
    }
    assert!(!store.wal_retention(behind).available);
    assert_complete_log(&store, near)?;

    // Retention survives nothing by itself: after reopen the consumer registers again, and
    // the log it still needs is still there.
    drop(store);
    let store = KvStore::open(dir.path())?;
    assert_complete_log(&store, near)?;
    Ok(())
}
