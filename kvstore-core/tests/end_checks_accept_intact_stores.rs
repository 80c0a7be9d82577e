//! The end checks of sealed segments (see `truncated_sealed_segment.rs`) must never refuse an
//! intact store. Found in review of their first version: a replica's record without
//! operations, last in a sealed segment, was invisible to the check (recovery noted LSNs per
//! operation; a hint lists operations only), so the store refused to open; and a store that
//! salvage opened kept failing the checks in the normal mode afterwards, because salvage did
//! not record what it had accepted.
mod common;

use common::{flip_bit, hint_path, records, sealed_log_segments, TestResult};
use kvstore_core::{Error, KvStore, Op, Options, RecoveryMode, SyncPolicy, WalRecord};

fn options() -> Options {
    Options::new()
        .sync_policy(SyncPolicy::Always)
        .segment_bytes(4096)
        .auto_compaction(false)
}

/// 134 bytes on disk (a 24-byte record header, a 7-byte op header, 7-byte key, 96-byte
/// value): 30 of them fill a 4096-byte segment (40-byte header) to 4060 bytes, where a
/// 24-byte empty record still fits and the next put does not.
fn put(lsn: u64, i: u64) -> WalRecord {
    WalRecord {
        lsn,
        ops: vec![Op::Put {
            key: format!("key{i:04}").into_bytes(),
            value: vec![b'v'; 96],
        }],
    }
}

fn replicated_records() -> Vec<WalRecord> {
    let mut records: Vec<WalRecord> = (1..=30).map(|lsn| put(lsn, lsn)).collect();
    records.push(WalRecord {
        lsn: 31,
        ops: Vec::new(),
    });
    records.extend((32..=60).map(|lsn| put(lsn, lsn)));
    records
}

fn reopen_and_check(dir: &std::path::Path) -> TestResult {
    let store = options().open(dir)?;
    assert_eq!(store.len(), 59);
    assert_eq!(store.applied_lsn(), 60);
    Ok(())
}

#[test]
fn empty_record_last_in_a_sealed_segment_apply_replicated() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let store: KvStore = options().open(dir.path())?;
        for record in replicated_records() {
            assert!(store.apply_replicated(&record)?);
        }
        assert_eq!(store.applied_lsn(), 60);
    }
    reopen_and_check(dir.path())
}

#[test]
fn empty_record_last_in_a_sealed_segment_apply_replicated_batch() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let store: KvStore = options().open(dir.path())?;
        for window in replicated_records().chunks(7) {
            store.apply_replicated_batch(window)?;
        }
        assert_eq!(store.applied_lsn(), 60);
    }
    reopen_and_check(dir.path())
}

#[test]
fn a_salvaged_store_opens_normally_afterwards() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let store = options().open(dir.path())?;
        for i in 0..300u32 {
            store.put(
                format!("key{i:03}"),
                format!("value-{i}-{}", "x".repeat(40)),
            )?;
        }
    }
    let sealed = sealed_log_segments(dir.path())?;
    let segment = &sealed[0];
    let _ = std::fs::remove_file(hint_path(dir.path(), segment.id));
    let recs = records(&segment.path)?;
    let middle = recs[recs.len() / 2];
    // Bit rot in a value in the middle of a sealed segment.
    flip_bit(&segment.path, (middle.offset + middle.len - 3) * 8)?;

    match options().open(dir.path()) {
        Err(Error::Corrupt { .. }) => {}
        other => return Err(format!("expected Corrupt, got {:?}", other.map(|s| s.len())).into()),
    }
    {
        let salvaged = options()
            .recovery_mode(RecoveryMode::Salvage)
            .open(dir.path())?;
        salvaged.put("after-salvage", "v")?;
    }
    // The operator salvaged the store; it must now open as any other.
    let store = options().open(dir.path())?;
    assert_eq!(store.get("after-salvage")?, Some(b"v".to_vec()));
    Ok(())
}
