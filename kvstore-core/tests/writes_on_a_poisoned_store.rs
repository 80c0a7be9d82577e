//! A poisoned store refuses writes and says so (DESIGN.md §3: "an fsync failure poisons the
//! store for writes ... and says so"; README: "A failed write or fsync poisons the store for
//! writes (reads continue) until it is reopened and recovered from the log").
//!
//! Every write path says so, also those that answer without reaching the commit: a delete of
//! a key the index does not hold used to return `Ok(false)` on a poisoned store, though the
//! key may well be in the log (the put whose fsync failed was written, just not published,
//! and the reopened store shows it); empty batches are refused too.
mod common;

use std::sync::Arc;

use common::TestResult;
use kvstore_core::io::FaultyVfs;
use kvstore_core::{Error, Options, SyncPolicy};

#[test]
fn a_delete_on_a_poisoned_store_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let vfs = FaultyVfs::new();
    let opts = |vfs: Arc<dyn kvstore_core::io::Vfs>| {
        Options::new()
            .sync_policy(SyncPolicy::Always)
            .auto_compaction(false)
            .vfs(vfs)
    };
    let store = opts(Arc::new(vfs.clone())).open(dir.path())?;
    store.put("before", "acknowledged")?;

    // The fsync of this put fails: the store is poisoned, the put is refused.
    vfs.fail_syncs_after(0);
    let failed = store.put("k", "written but not synced");
    assert!(failed.is_err(), "the put whose fsync failed: {failed:?}");
    assert!(store.stats().poisoned);
    vfs.heal();

    // Other writes are refused as poisoned ...
    let put = store.put("other", "v");
    assert!(matches!(put, Err(Error::Poisoned { .. })), "put: {put:?}");
    // ... and so must a delete be, whatever the index holds.
    let deleted = store.delete("k");
    eprintln!("delete(\"k\") on the poisoned store: {deleted:?}");
    let empty = store.write_batch(kvstore_core::WriteBatch::new());
    assert!(
        matches!(empty, Err(Error::Poisoned { .. })),
        "empty batch: {empty:?}"
    );
    let batches = store.write_batches(vec![kvstore_core::WriteBatch::new()]);
    assert!(
        matches!(batches, Err(Error::Poisoned { .. })),
        "write_batches: {batches:?}"
    );
    drop(store);

    let reopened = opts(Arc::new(kvstore_core::io::OsVfs)).open(dir.path())?;
    eprintln!(
        "after reopening, \"k\" = {:?}",
        reopened
            .get("k")?
            .map(|v| String::from_utf8_lossy(&v).to_string())
    );
    assert!(
        matches!(deleted, Err(Error::Poisoned { .. })),
        "delete on a poisoned store returned {deleted:?} instead of Error::Poisoned; \
         after recovery the key it reported absent holds {:?}",
        reopened
            .get("k")?
            .map(|v| String::from_utf8_lossy(&v).to_string())
    );
    Ok(())
}
