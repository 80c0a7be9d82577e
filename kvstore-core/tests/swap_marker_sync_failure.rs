//! A directory fsync that fails right after a segment swap's marker was renamed into place
//! (compaction, snapshot install). The marker may or may not survive a crash, so the swap
//! counts as committed: its new segments must stay for a reopen to finish it. Removing them
//! (as a swap that never happened) left the marker behind, and the next open carried it out
//! without them, deleting the old segments too: every key gone after a clean close. Found in
//! review.
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use kvstore_core::io::{FileIo, OsVfs, Vfs};
use kvstore_core::{Error, Options, SyncPolicy};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Once armed, fails the first directory sync made while a swap marker is in the directory.
#[derive(Debug, Clone, Default)]
struct FailSyncAfterMarker(Arc<AtomicBool>);

impl Vfs for FailSyncAfterMarker {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn FileIo>> {
        OsVfs.open(path, create)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if dir.join("SEGMENT_SWAP").exists() && self.0.swap(false, Ordering::SeqCst) {
            return Err(io::Error::other("injected directory fsync failure"));
        }
        OsVfs.sync_dir(dir)
    }
}

fn options(vfs: Arc<dyn Vfs>) -> Options {
    Options::new()
        .sync_policy(SyncPolicy::Always)
        .segment_bytes(4 << 10)
        .auto_compaction(false)
        .vfs(vfs)
}

#[test]
fn a_compaction_whose_commit_is_undecided_poisons_and_a_reopen_finishes_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let vfs = FailSyncAfterMarker::default();
    {
        let store = options(Arc::new(vfs.clone())).open(dir.path())?;
        for round in 0..3 {
            for i in 0..100u32 {
                store.put(format!("k{i:03}"), format!("v{round}-{i}"))?;
            }
        }
        vfs.0.store(true, Ordering::SeqCst);
        assert!(store.compact().is_err(), "the injected failure surfaces");
        // The handle keeps serving what it has, and refuses writes it could not keep.
        assert_eq!(store.get("k042")?, Some(b"v2-42".to_vec()));
        assert!(matches!(
            store.put("late", "x"),
            Err(Error::Poisoned { .. })
        ));
    }
    let store = options(Arc::new(OsVfs)).open(dir.path())?;
    for i in 0..100u32 {
        assert_eq!(
            store.get(format!("k{i:03}"))?,
            Some(format!("v2-{i}").into_bytes()),
            "key {i} after reopen"
        );
    }
    assert_eq!(store.len(), 100);
    Ok(())
}

#[test]
fn a_snapshot_install_whose_commit_is_undecided_is_finished_by_a_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let vfs = FailSyncAfterMarker::default();
    {
        let store = options(Arc::new(vfs.clone())).open(dir.path())?;
        for i in 0..100u32 {
            store.put(format!("k{i:03}"), format!("v{i}"))?;
        }
        let mut install = store.begin_snapshot_install(500)?;
        install.put("snap", "shot")?;
        vfs.0.store(true, Ordering::SeqCst);
        assert!(install.finish().is_err(), "the injected failure surfaces");
        assert_eq!(store.get("k042")?, Some(b"v42".to_vec()));
    }
    let store = options(Arc::new(OsVfs)).open(dir.path())?;
    assert_eq!(store.get("snap")?, Some(b"shot".to_vec()));
    assert_eq!(
        store.get("k042")?,
        None,
        "the snapshot replaced the old contents"
    );
    assert_eq!(store.len(), 1);
    assert_eq!(store.last_lsn(), 500);
    Ok(())
}
