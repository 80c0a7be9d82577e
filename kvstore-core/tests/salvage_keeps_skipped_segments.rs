//! `RecoveryMode::Salvage` skips a segment whose header is damaged; the store it opens must
//! not then reuse that segment's id for its new active segment, which would write new records
//! over the skipped file's bytes (opening does not truncate), destroying what an operator
//! might still recover from it, and leaving old records with overlapping LSNs past the new
//! end after a crash. Found in review.

mod common;

use common::{active_segment, segments, TestResult};
use kvstore_core::{Options, RecoveryMode, SyncPolicy};

#[test]
fn salvage_writes_after_a_skipped_segment_not_over_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let store = Options::new()
            .sync_policy(SyncPolicy::Never)
            .segment_bytes(4096)
            .auto_compaction(false)
            .open(dir.path())?;
        for i in 0..200u32 {
            store.put(format!("key{i:03}"), vec![b'v'; 40])?;
        }
    }
    let newest = active_segment(dir.path())?;
    let mut bytes = std::fs::read(&newest.path)?;
    assert!(bytes.len() > 64, "the newest segment holds records");
    bytes[0] ^= 0xff; // the magic number
    std::fs::write(&newest.path, &bytes)?;

    {
        let store = Options::new()
            .recovery_mode(RecoveryMode::Salvage)
            .sync_policy(SyncPolicy::Never)
            .segment_bytes(4096)
            .auto_compaction(false)
            .open(dir.path())?;
        for i in 0..20u32 {
            store.put(format!("new{i:03}"), vec![b'n'; 40])?;
        }
        assert_eq!(store.get("new019")?, Some(vec![b'n'; 40]));
    }
    assert!(
        std::fs::read(&newest.path)? == bytes,
        "the skipped segment was written over"
    );
    assert!(
        segments(dir.path())?.iter().any(|s| s.id > newest.id),
        "new records went to a segment after the skipped one"
    );
    Ok(())
}
