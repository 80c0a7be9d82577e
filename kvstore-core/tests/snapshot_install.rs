//! Full resync: a master's snapshot installed on a replica replaces its contents atomically,
//! and replaying the WAL after the snapshot's LSN converges to the master.

use kvstore_core::{KvStore, Options, SyncPolicy};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn contents(store: &KvStore) -> Result<Vec<(Vec<u8>, Vec<u8>)>, kvstore_core::Error> {
    store.iter().collect()
}

fn opts() -> Options {
    Options::new()
        .sync_policy(SyncPolicy::Never)
        .segment_bytes(8192)
        .auto_compaction(false)
}

#[test]
fn installed_snapshot_plus_wal_replay_equals_master_and_survives_reopen() -> TestResult {
    let (mdir, rdir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let master = KvStore::open_with(mdir.path(), opts())?;
    for i in 0..800u32 {
        master.put(format!("k{i:04}"), format!("v{i}"))?;
    }
    {
        let replica = KvStore::open_with(rdir.path(), opts())?;
        // Stale data the snapshot must erase, including keys the master never had.
        for i in 0..300u32 {
            replica.put(format!("stale{i}"), b"old")?;
            replica.put(format!("k{i:04}"), b"old")?;
        }
        let snapshot = master.snapshot();
        let snap_lsn = snapshot.lsn();
        // Writes during the snapshot: the fuzzy snapshot may or may not see them.
        master.put(b"k0001", b"changed")?;
        master.delete(b"k0002")?;
        let mut install = replica.begin_snapshot_install(snap_lsn)?;
        for entry in snapshot {
            let (k, v) = entry?;
            install.put(k, v)?;
        }
        install.finish()?;
        assert_eq!(replica.applied_lsn(), snap_lsn);
        assert_eq!(replica.get(b"stale1")?, None);
        for record in master.wal_since(snap_lsn)? {
            replica.apply_replicated(&record?)?;
        }
        assert_eq!(contents(&replica)?, contents(&master)?);
        replica.put(b"after", b"install")?;
        master.put(b"after", b"install")?;
    }
    let replica = KvStore::open_with(rdir.path(), opts())?;
    assert_eq!(contents(&replica)?, contents(&master)?);
    assert_eq!(replica.last_lsn(), master.last_lsn());
    Ok(())
}

#[test]
fn an_unfinished_install_changes_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let store = KvStore::open_with(dir.path(), opts())?;
        store.put(b"keep", b"me")?;
        let mut install = store.begin_snapshot_install(1000)?;
        for i in 0..500u32 {
            install.put(format!("new{i}"), [0u8; 64])?;
        }
        drop(install);
        assert_eq!(store.get(b"keep")?, Some(b"me".to_vec()));
        assert_eq!(store.len(), 1);
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let store = KvStore::open_with(dir.path(), opts())?;
    assert_eq!(store.get(b"keep")?, Some(b"me".to_vec()));
    assert_eq!(store.len(), 1);
    assert_eq!(store.last_lsn(), 1);
    Ok(())
}
