//! A crash while a new segment was being created leaves a newest segment that is empty or
//! holds a partial or complete header and nothing else. Opening must cope with each: keep
//! every write, keep LSNs increasing, and accept new writes.

mod common;

use common::{active_segment, copy_dir, dump, segment_header, segment_path, TestResult};
use kvstore_core::{KvStore, Options, SyncPolicy};

#[test]
fn empty_or_header_only_newest_segments_are_handled() -> TestResult {
    let pristine = tempfile::tempdir()?;
    {
        let store = Options::new()
            .sync_policy(SyncPolicy::Never)
            .segment_bytes(4096)
            .open(pristine.path())?;
        for i in 0..100u32 {
            store.put(
                format!("key{i:03}"),
                format!("value-{i}-{}", "p".repeat(30)),
            )?;
        }
    }
    let store = KvStore::open(pristine.path())?;
    let expected = dump(&store)?;
    let last_lsn = store.last_lsn();
    drop(store);
    let active = active_segment(pristine.path())?;
    let next = active.id + 1;
    let header = segment_header(next, false, last_lsn);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("zero-length", Vec::new()),
        ("partial header", header[..20].to_vec()),
        ("all-zero header", vec![0u8; header.len()]),
        ("complete header", header.clone()),
    ];
    for (what, bytes) in cases {
        let dir = tempfile::tempdir()?;
        copy_dir(pristine.path(), dir.path())?;
        std::fs::write(segment_path(dir.path(), next), &bytes)?;
        let store = KvStore::open(dir.path()).map_err(|e| format!("{what}: {e}"))?;
        assert_eq!(dump(&store)?, expected, "{what}");
        assert_eq!(store.last_lsn(), last_lsn, "{what}");
        assert_eq!(store.put("new", "write")?, last_lsn + 1, "{what}");
        drop(store);
        let store = KvStore::open(dir.path()).map_err(|e| format!("{what}, reopen: {e}"))?;
        assert_eq!(store.get("new")?, Some(b"write".to_vec()), "{what}");
        assert_eq!(store.len(), expected.len() + 1, "{what}");
    }
    Ok(())
}
