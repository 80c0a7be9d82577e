//! WAL consumers (`retain_wal`) are saved in the data directory and outlive the store handle,
//! like PostgreSQL's replication slots: within about a second of a change even if the
//! process then dies, and at close. A damaged file is reported and ignored, never a reason
//! to refuse the open.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::TestResult;
use kvstore_core::{KvStore, Options, SyncPolicy};

fn options() -> Options {
    Options::new()
        .sync_policy(SyncPolicy::Never)
        .maintenance_interval(Duration::from_millis(10))
}

/// Copies the files of `from` into `to`: what a crash at this moment would leave on disk
/// (the store in `from` stays open and never closes them).
fn copy_files(from: &Path, to: &Path) -> TestResult {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        std::fs::copy(entry.path(), to.join(entry.file_name()))?;
    }
    Ok(())
}

fn saved_text(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("wal-consumers")).unwrap_or_default()
}

#[test]
fn a_consumer_is_saved_while_the_store_runs() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = options().open(dir.path())?;
    for i in 0..10u32 {
        store.put(format!("k{i}"), b"v")?;
    }
    store.retain_wal("replica:127.0.0.1:7001", 4);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !saved_text(dir.path()).contains("4 replica:127.0.0.1:7001") {
        assert!(
            Instant::now() < deadline,
            "not saved: {:?}",
            saved_text(dir.path())
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let crashed = tempfile::tempdir()?;
    copy_files(dir.path(), crashed.path())?;
    let reopened = options().open(crashed.path())?;
    assert_eq!(
        reopened.wal_consumers(),
        vec![("replica:127.0.0.1:7001".to_string(), 4)]
    );
    drop(store);
    Ok(())
}

#[test]
fn moves_and_releases_are_saved_at_close() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = KvStore::open(dir.path())?;
    store.retain_wal("a", 1);
    store.retain_wal("b", 2);
    drop(store);
    let store = KvStore::open(dir.path())?;
    assert_eq!(
        store.wal_consumers(),
        vec![("a".to_string(), 1), ("b".to_string(), 2)]
    );
    store.retain_wal("a", 7);
    store.release_wal("b");
    drop(store);
    let store = KvStore::open(dir.path())?;
    assert_eq!(store.wal_consumers(), vec![("a".to_string(), 7)]);
    Ok(())
}

#[test]
fn a_damaged_file_is_ignored_and_replaced() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = KvStore::open(dir.path())?;
    store.put(b"k", b"v")?;
    store.retain_wal("a", 1);
    drop(store);
    std::fs::write(dir.path().join("wal-consumers"), b"\x00\xffgarbage")?;
    let store = KvStore::open(dir.path())?;
    assert_eq!(store.get(b"k")?, Some(b"v".to_vec()));
    assert!(store.wal_consumers().is_empty());
    store.retain_wal("c", 3);
    drop(store);
    let store = KvStore::open(dir.path())?;
    assert_eq!(store.wal_consumers(), vec![("c".to_string(), 3)]);
    Ok(())
}
