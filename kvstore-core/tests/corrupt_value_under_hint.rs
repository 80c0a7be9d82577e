//! A flipped bit inside a value in a sealed segment that has a hint file: open does not read
//! the segment (that is the point of hints), so the damage must be caught when the value is
//! read (`get`, scans, compaction), never returned as if it were the stored value, and never
//! rewritten by compaction under a fresh checksum.

mod common;

use common::{hint_path, records, sealed_log_segments, TestResult, RECORD_HEADER_BYTES};
use kvstore_core::{Error, KvStore, Options, SyncPolicy};

#[test]
fn flipped_value_bit_under_a_hint_is_never_returned_as_data() -> TestResult {
    let dir = tempfile::tempdir()?;
    let value = "v".repeat(100);
    {
        let store = Options::new()
            .sync_policy(SyncPolicy::Never)
            .segment_bytes(4096)
            .auto_compaction(false)
            .open(dir.path())?;
        for i in 0..100u32 {
            store.put(format!("key{i:03}"), &value)?;
        }
    }
    let seg = sealed_log_segments(dir.path())?
        .into_iter()
        .next()
        .ok_or("no sealed segment")?;
    assert!(
        hint_path(dir.path(), seg.id).exists(),
        "the sealed segment has no hint"
    );
    // The first record is key000: header, op header (7 bytes: both lengths fit one-byte
    // varints), 6-byte key, then the value.
    let first = records(&seg.path)?[0];
    let value_byte = first.offset + RECORD_HEADER_BYTES + 7 + 6 + 10;
    common::flip_bit(&seg.path, value_byte * 8)?;

    let store = KvStore::open(dir.path())?;
    match store.get("key000") {
        Ok(Some(v)) => assert_eq!(v, value.as_bytes(), "a corrupted value was returned"),
        Ok(None) => return Err("the key vanished".into()),
        Err(Error::Corrupt { path, .. }) => assert_eq!(path, seg.path),
        Err(e) => return Err(format!("unexpected error {e}").into()),
    }
    // Compaction must not launder the damage into a record with a valid checksum.
    store.put("key001", "overwritten so that the segment has dead bytes")?;
    let compacted = store.compact();
    if compacted.is_ok() {
        drop(store);
        let store = KvStore::open(dir.path())?;
        if let Ok(Some(v)) = store.get("key000") {
            assert_eq!(v, value.as_bytes(), "compaction rewrote a corrupted value");
        }
    }
    Ok(())
}
