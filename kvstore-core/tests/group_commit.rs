//! Group commit: with `SyncPolicy::Always`, eight writers writing at once share fsyncs, so
//! the store syncs far fewer times than it acknowledges writes; one caller committing many
//! batches at once needs one fsync.

mod common;

use std::thread;

use common::TestResult;
use kvstore_core::{KvStore, Options, SyncPolicy};

const WRITERS: usize = 8;
const WRITES_PER_WRITER: usize = 100;

#[test]
fn concurrent_durable_writers_share_fsyncs() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Options::new()
        .sync_policy(SyncPolicy::Always)
        .auto_compaction(false)
        .open(dir.path())?;
    let before = store.stats().fsyncs;
    thread::scope(|scope| -> TestResult {
        let handles: Vec<_> = (0..WRITERS)
            .map(|t| {
                let store = store.clone();
                scope.spawn(move || -> Result<(), String> {
                    for i in 0..WRITES_PER_WRITER {
                        store
                            .put(format!("w{t}-{i}"), format!("value {t} {i}"))
                            .map_err(|e| e.to_string())?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| "writer panicked")??;
        }
        Ok(())
    })?;
    let writes = (WRITERS * WRITES_PER_WRITER) as u64;
    let fsyncs = store.stats().fsyncs - before;
    eprintln!("{writes} durable writes from {WRITERS} threads took {fsyncs} fsyncs");
    assert_eq!(store.last_lsn(), writes);
    assert!(fsyncs > 0, "durable writes without any fsync");
    assert!(
        fsyncs * 2 <= writes,
        "group commit did not group: {fsyncs} fsyncs for {writes} writes"
    );
    drop(store);
    let store = KvStore::open(dir.path())?;
    assert_eq!(store.len() as u64, writes);
    Ok(())
}

/// `write_batches` commits many batches from one thread with one fsync: each batch gets its
/// own LSN in order, a batch that breaks a limit gets its error and nothing of it is written,
/// and everything committed survives a reopen.
#[test]
fn write_batches_share_one_fsync_and_fail_alone() -> TestResult {
    use kvstore_core::{Error, WriteBatch};
    let dir = tempfile::tempdir()?;
    let store = Options::new()
        .sync_policy(SyncPolicy::Always)
        .max_value_bytes(64)
        .auto_compaction(false)
        .open(dir.path())?;
    store.put("before", "x")?;
    let fsyncs_before = store.stats().fsyncs;
    let mut batches = Vec::new();
    for i in 0..10 {
        let mut b = WriteBatch::new();
        b.put(format!("k{i}"), format!("v{i}"));
        if i == 3 {
            b.put("too-big", vec![0u8; 65]);
        }
        if i == 5 {
            b.delete("before");
        }
        batches.push(b);
    }
    batches.push(WriteBatch::new());
    let results = store.write_batches(batches)?;
    assert_eq!(store.stats().fsyncs - fsyncs_before, 1);
    assert_eq!(results.len(), 11);
    let mut expected_lsn = 2;
    for (i, result) in results.iter().enumerate().take(10) {
        if i == 3 {
            assert!(
                matches!(result, Err(Error::ValueTooLarge { .. })),
                "{result:?}"
            );
        } else {
            assert_eq!(*result.as_ref().map_err(|e| e.to_string())?, expected_lsn);
            expected_lsn += 1;
        }
    }
    assert_eq!(*results[10].as_ref().map_err(|e| e.to_string())?, 1);
    drop(store);
    let store = KvStore::open(dir.path())?;
    assert_eq!(store.last_lsn(), 10);
    assert_eq!(store.get("k3")?, None);
    assert_eq!(store.get("too-big")?, None);
    assert_eq!(store.get("before")?, None);
    for i in (0..10).filter(|i| *i != 3) {
        assert_eq!(
            store.get(format!("k{i}"))?,
            Some(format!("v{i}").into_bytes())
        );
    }
    Ok(())
}

/// `write_batches` with nothing to write (only empty batches, or only batches that break a
/// limit) answers at once: there is no group to join.
#[test]
fn write_batches_with_nothing_to_write_returns_at_once() -> TestResult {
    use kvstore_core::{Error, WriteBatch};
    let dir = tempfile::tempdir()?;
    let store = Options::new().max_value_bytes(8).open(dir.path())?;
    let (tx, rx) = std::sync::mpsc::channel();
    let writer = store.clone();
    thread::spawn(move || {
        let mut too_big = WriteBatch::new();
        too_big.put("k", [0u8; 9]);
        let answers = (
            writer.write_batches(vec![WriteBatch::new(), WriteBatch::new()]),
            writer.write_batches(vec![too_big]),
            writer.write_batches(Vec::new()),
        );
        let _ = tx.send(answers);
    });
    let (empty, refused, none) = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .map_err(|_| "write_batches with nothing to write did not return")?;
    let empty = empty?;
    assert_eq!(empty.len(), 2);
    assert!(empty.iter().all(|r| matches!(r, Ok(0))), "{empty:?}");
    let refused = refused?;
    assert!(
        matches!(refused[..], [Err(Error::ValueTooLarge { .. })]),
        "{refused:?}"
    );
    assert!(none?.is_empty());
    assert_eq!(store.last_lsn(), 0);
    Ok(())
}
