//! A replica's log whose sealed segment ends with a record of no operations (which
//! `apply_replicated` accepts) still serves `wal_since` after a reopen: nothing was
//! compacted, so `WalCompacted` is wrong, and no LSN may be skipped. The segment's hint lists
//! operations only, so recovery took its last LSN for that of its last operation, and the
//! next LSN for a hole in the log.

use kvstore_core::{KvStore, Op, Options, SyncPolicy, WalRecord};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn opts() -> Options {
    Options::new()
        .sync_policy(SyncPolicy::Never)
        .segment_bytes(4096)
        .auto_compaction(false)
}

#[test]
fn wal_since_after_reopen_with_an_empty_last_record() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut lsn = 0;
    {
        let store = KvStore::open_with(dir.path(), opts())?;
        for i in 0..20u32 {
            lsn += 1;
            let ops = vec![Op::Put {
                key: format!("k{i}").into_bytes(),
                value: vec![b'v'; 100],
            }];
            assert!(store.apply_replicated(&WalRecord { lsn, ops })?);
        }
        lsn += 1;
        assert!(store.apply_replicated(&WalRecord { lsn, ops: vec![] })?);
        // Seal the segment (its hint lists operations only) and start a new one.
        lsn += 1;
        let ops = vec![Op::Put {
            key: b"big".to_vec(),
            value: vec![b'b'; 3000],
        }];
        assert!(store.apply_replicated(&WalRecord { lsn, ops })?);
        // Let the maintenance thread write the sealed segment's hint.
        std::thread::sleep(std::time::Duration::from_millis(500));
        // Before the reopen the whole log is served.
        let before: Vec<u64> = store
            .wal_since(0)?
            .map(|r| r.map(|r| r.lsn))
            .collect::<Result<_, _>>()?;
        assert_eq!(before, (1..=lsn).collect::<Vec<_>>());
    }
    let store = KvStore::open_with(dir.path(), opts())?;
    assert_eq!(store.applied_lsn(), lsn);
    let got: Vec<u64> = store
        .wal_since(0)?
        .map(|r| r.map(|r| r.lsn))
        .collect::<Result<_, _>>()?;
    assert_eq!(got, (1..=lsn).collect::<Vec<_>>());
    Ok(())
}
