//! Group commit: with `SyncPolicy::Always`, eight writers writing at once share fsyncs, so
//! the store syncs far fewer times than it acknowledges writes.

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
