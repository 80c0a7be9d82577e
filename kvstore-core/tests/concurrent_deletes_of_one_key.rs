//! `KvStore::delete` "returns whether it existed. Deleting a missing key logs nothing." It
//! checked `contains_key` and then wrote a tombstone as two separate steps, so several
//! threads deleting one key all saw it present, all logged a tombstone and all returned
//! `true`. Now a delete holds its key's stripe lock from the check to the commit: of
//! concurrent deletes of one key, one answers `true` and one tombstone is logged.

use std::sync::{Arc, Barrier};

use kvstore_core::{Options, SyncPolicy};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn concurrent_deletes_of_one_key_report_it_removed_once_and_log_one_tombstone() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Options::new()
        .sync_policy(SyncPolicy::Never)
        .auto_compaction(false)
        .open(dir.path())?;
    const THREADS: usize = 4;
    const ROUNDS: usize = 200;
    let mut bad = Vec::new();
    for round in 0..ROUNDS {
        let key = format!("key{round}");
        store.put(&key, b"v")?;
        let before = store.last_lsn();
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let (store, barrier, key) = (store.clone(), barrier.clone(), key.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    store.delete(&key).map_err(|e| e.to_string())
                })
            })
            .collect();
        let mut said_existed = 0;
        for h in handles {
            if h.join().map_err(|_| "delete thread panicked")?? {
                said_existed += 1;
            }
        }
        let logged = store.last_lsn() - before;
        if said_existed != 1 || logged != 1 {
            bad.push((round, said_existed, logged));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {ROUNDS} rounds: {THREADS} concurrent deletes of one existing key; \
         (round, deletes returning true, records logged), first few: {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
    Ok(())
}
