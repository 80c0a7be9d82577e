//! `KvStore::delete` holds its key's stripe lock (one of 64) from its existence check to its
//! local commit, not through the commit hook's `wait_replicated` (a sync-mode quorum wait, up
//! to the sync timeout): deletes of unrelated keys that share a stripe used to wait out each
//! other's replication one after another. Here every `wait_replicated` blocks until released;
//! 65 deletes of distinct keys (by pigeonhole at least two share a stripe) must all reach it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use kvstore_core::{CommitHook, Lsn, Options, SyncPolicy, WalRecord};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const KEYS: usize = 65;

/// Holds every `wait_replicated` until released, counting those waiting.
#[derive(Default)]
struct Gate {
    waiting: AtomicUsize,
    released: Mutex<bool>,
    opened: Condvar,
}

struct HeldQuorum(Arc<Gate>);

impl CommitHook for HeldQuorum {
    fn committed(&self, _record: Arc<WalRecord>) {}
    fn wait_replicated(&self, _lsn: Lsn) -> kvstore_core::Result<()> {
        let gate = &self.0;
        gate.waiting.fetch_add(1, Ordering::SeqCst);
        let mut released = gate
            .released
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !*released && Instant::now() < deadline {
            released = gate
                .opened
                .wait_timeout(released, Duration::from_millis(50))
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        Ok(())
    }
}

#[test]
fn deletes_of_unrelated_keys_wait_for_replication_side_by_side() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Options::new()
        .sync_policy(SyncPolicy::Never)
        .auto_compaction(false)
        .open(dir.path())?;
    for i in 0..KEYS {
        store.put(format!("key{i}"), b"v")?;
    }
    let gate = Arc::new(Gate::default());
    store.set_commit_hook(Some(Arc::new(HeldQuorum(gate.clone()))));
    let deleters: Vec<_> = (0..KEYS)
        .map(|i| {
            let store = store.clone();
            std::thread::spawn(move || store.delete(format!("key{i}")))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while gate.waiting.load(Ordering::SeqCst) < KEYS && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let waiting = gate.waiting.load(Ordering::SeqCst);
    *gate
        .released
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
    gate.opened.notify_all();
    for deleter in deleters {
        assert!(deleter.join().map_err(|_| "a deleter panicked")??);
    }
    assert_eq!(
        waiting, KEYS,
        "only {waiting} of {KEYS} deletes of distinct keys reached the replication wait: the \
         others waited for a stripe lock held through another delete's wait"
    );
    assert_eq!(store.len(), 0);
    Ok(())
}
