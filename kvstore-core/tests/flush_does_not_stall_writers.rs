//! A flush (the background sync under `SyncPolicy::EveryMillis`, or `KvStore::flush`) syncs
//! without holding up writers: a put made while a slow sync is in progress returns before
//! the sync does, and stays marked unsynced, so the next flush syncs it rather than
//! skipping.

mod common;

use std::time::{Duration, Instant};

use common::TestResult;
use kvstore_core::io::FaultyVfs;
use kvstore_core::{Options, SyncPolicy};

#[test]
fn writers_go_on_while_a_flush_syncs_and_their_writes_are_synced_next() -> TestResult {
    let dir = tempfile::tempdir()?;
    let vfs = FaultyVfs::new();
    let store = Options::new()
        .sync_policy(SyncPolicy::Never)
        .vfs(std::sync::Arc::new(vfs.clone()))
        .open(dir.path())?;
    store.put(b"before", b"1")?;
    vfs.delay_syncs(Duration::from_secs(2));
    let (started, finished) = (vfs.syncs_started(), vfs.syncs_finished());
    std::thread::scope(|s| -> TestResult {
        let flusher = s.spawn(|| store.flush());
        let deadline = Instant::now() + Duration::from_secs(10);
        while vfs.syncs_started() == started {
            assert!(
                Instant::now() < deadline,
                "the flush never started its sync"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        store.put(b"during", b"2")?;
        assert_eq!(
            vfs.syncs_finished(),
            finished,
            "a put waited for a flush's sync to finish"
        );
        flusher.join().map_err(|_| "flusher panicked")??;
        Ok(())
    })?;
    vfs.delay_syncs(Duration::ZERO);
    let fsyncs = store.stats().fsyncs;
    store.flush()?;
    assert_eq!(
        store.stats().fsyncs,
        fsyncs + 1,
        "the write made during the sync was taken for synced"
    );
    store.flush()?;
    assert_eq!(store.stats().fsyncs, fsyncs + 1, "nothing was left to sync");
    assert_eq!(store.get(b"during")?.as_deref(), Some(&b"2"[..]));
    Ok(())
}
