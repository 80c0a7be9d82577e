//! Compacted segments read back record by record when no hint speaks for them: every
//! record compaction writes (and each snapshot install, which writes the same way) must
//! carry a header checksum salted for the file it lands in, or a scan would stop at the
//! first record and the store would not open. Hints hide this: a store that opens from its
//! hints never reads a compacted segment's record headers, so the hints are removed here.

mod common;

use common::TestResult;
use kvstore_core::{KvStore, Options, SyncPolicy};

fn options() -> Options {
    Options::new()
        .sync_policy(SyncPolicy::Never)
        .segment_bytes(64 << 10)
        .auto_compaction(false)
}

#[test]
fn a_compacted_store_opens_from_its_segments_alone() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut expected = std::collections::BTreeMap::new();
    {
        let store = options().open(dir.path())?;
        for round in 0..3u32 {
            for i in 0..600u32 {
                let key = format!("key{i:04}").into_bytes();
                let value = format!("round {round} value {i} {}", "x".repeat(60)).into_bytes();
                store.put(&key, &value)?;
                expected.insert(key, value);
            }
        }
        for i in (0..600u32).step_by(7) {
            let key = format!("key{i:04}").into_bytes();
            store.delete(&key)?;
            expected.remove(&key);
        }
        store.compact()?;
        // Written after the compaction: log segments beside the compacted ones.
        store.put(b"after", b"compaction")?;
        expected.insert(b"after".to_vec(), b"compaction".to_vec());
    }
    for entry in std::fs::read_dir(dir.path())? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "hint") {
            std::fs::remove_file(&path)?;
        }
    }
    let segments = std::fs::read_dir(dir.path())?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
        .count();
    assert!(segments >= 2, "only {segments} segments");

    let store: KvStore = options().open(dir.path())?;
    let found = store
        .iter()
        .collect::<Result<std::collections::BTreeMap<_, _>, _>>()?;
    assert_eq!(found, expected);
    // wal_since reads the log segments' records through the same salted checksums.
    let last = store.last_lsn();
    let records = store.wal_since(last - 1)?.collect::<Result<Vec<_>, _>>()?;
    assert_eq!(records.len(), 1);
    Ok(())
}
