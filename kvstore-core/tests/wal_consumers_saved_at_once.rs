//! A new WAL consumer, or one moved back, is saved before `retain_wal` returns: lost in a
//! crash, it would let compaction take log the consumer needs (a full resync). The save used
//! to wait for the maintenance thread's loop, which runs only when that thread wakes (every
//! `maintenance_interval`, a compaction-check knob) and never while it is busy (an automatic
//! compaction runs inline on it, and a hint job waits there for the whole of an explicit
//! `compact()`): seconds, or minutes on a large store, without a save.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TestResult;
use kvstore_core::io::FaultyVfs;
use kvstore_core::{Options, SyncPolicy};

fn saved_text(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("wal-consumers")).unwrap_or_default()
}

#[test]
fn a_new_consumer_and_a_move_back_are_saved_at_once() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Options::new()
        .sync_policy(SyncPolicy::Never)
        // Compaction checked rarely: nothing to do with how long a registration stays unsaved.
        .maintenance_interval(Duration::from_secs(20))
        .open(dir.path())?;
    store.put(b"k", b"v")?;
    store.retain_wal("replica:127.0.0.1:7001", 5);
    let text = saved_text(dir.path());
    assert!(
        text.contains("5 replica:127.0.0.1:7001"),
        "a new consumer is not saved (a crash now loses it): {text:?}"
    );
    store.retain_wal("replica:127.0.0.1:7001", 2);
    let text = saved_text(dir.path());
    assert!(
        text.contains("2 replica:127.0.0.1:7001"),
        "a consumer moved back is not saved: {text:?}"
    );
    drop(store);
    Ok(())
}

#[test]
fn a_new_consumer_is_saved_during_a_long_compaction() -> TestResult {
    let dir = tempfile::tempdir()?;
    let vfs = FaultyVfs::new();
    let store = Options::new()
        .sync_policy(SyncPolicy::Never)
        .segment_bytes(16 << 10)
        .auto_compaction(false)
        .maintenance_interval(Duration::from_millis(10))
        .vfs(Arc::new(vfs.clone()))
        .open(dir.path())?;
    for round in 0..3u32 {
        for i in 0..200u32 {
            store.put(format!("k{i:03}"), format!("{round}-{i:>60}"))?;
        }
    }
    // Let the hints of the sealed segments be written first.
    std::thread::sleep(Duration::from_millis(300));
    // Every sync now takes 1 s: the compaction below lasts seconds (as one of a large
    // store does).
    vfs.delay_syncs(Duration::from_secs(1));
    let syncs_before = vfs.syncs_started();
    let compacting = {
        let store = store.clone();
        std::thread::spawn(move || store.compact())
    };
    // The full compaction has sealed the active segment (one sync) and asked the maintenance
    // thread for its hint, which waits for the compaction's lock.
    let deadline = Instant::now() + Duration::from_secs(20);
    while vfs.syncs_started() < syncs_before + 3 {
        assert!(Instant::now() < deadline, "the compaction did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
    store.retain_wal("replica:127.0.0.1:7002", 5);
    let text = saved_text(dir.path());
    vfs.heal();
    compacting.join().map_err(|_| "compaction panicked")??;
    drop(store);
    assert!(
        text.contains("5 replica:127.0.0.1:7002"),
        "a consumer registered while a compaction runs is not saved (a crash now loses it): \
         {text:?}"
    );
    Ok(())
}
