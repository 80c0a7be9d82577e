//! A sealed segment that lost whole records at its end (cut at a record boundary) is not the
//! torn tail of the newest log segment: opening must refuse it, naming the file, rather than
//! take the cut as a clean end and open without those records (a lost key, or an older value
//! back where a delete was). Found in review: sealed log segments without their hint (a crash
//! before the background thread wrote it) and compacted segments (which get a hint only for
//! large values) opened silently. Three checks now catch it: a sealed log segment must reach
//! the LSN the next log segment started after, a compacted segment must hold the records its
//! header counts, and a hint must describe a file of the length it says.
mod common;

use common::{hint_path, records, sealed_log_segments, segments, truncate, TestResult};
use kvstore_core::{Error, KvStore, Options, RecoveryMode, SyncPolicy};

fn options() -> Options {
    Options::new()
        .sync_policy(SyncPolicy::Always)
        .segment_bytes(4096)
        .auto_compaction(false)
}

fn open(dir: &std::path::Path) -> kvstore_core::Result<KvStore> {
    options().open(dir)
}

fn fill(store: &KvStore) -> TestResult {
    for i in 0..300u32 {
        store.put(
            format!("key{i:03}"),
            format!("value-{i}-{}", "x".repeat(40)),
        )?;
    }
    Ok(())
}

/// Opening fails with `Corrupt` naming `path`; salvage mode opens without the lost records,
/// and so does the normal mode after it.
fn refused_naming(dir: &std::path::Path, path: &std::path::Path) -> TestResult {
    match open(dir) {
        Err(Error::Corrupt { path: named, .. }) => assert_eq!(named, path),
        Err(e) => return Err(format!("unexpected error {e}").into()),
        Ok(store) => {
            return Err(format!("opened silently with {} keys", store.len()).into());
        }
    }
    let kept = {
        let salvaged = options().recovery_mode(RecoveryMode::Salvage).open(dir)?;
        assert!(salvaged.len() < 300);
        salvaged.len()
    };
    // What salvage accepted stays accepted: the store opens normally from then on.
    assert_eq!(open(dir)?.len(), kept);
    Ok(())
}

#[test]
fn a_sealed_log_segment_cut_at_a_record_boundary_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let store = open(dir.path())?;
        fill(&store)?;
    }
    let sealed = sealed_log_segments(dir.path())?;
    let segment = &sealed[0];
    let last = *records(&segment.path)?.last().ok_or("no record")?;
    // The hint is written in the background after a roll: a crash can leave none.
    let _ = std::fs::remove_file(hint_path(dir.path(), segment.id));
    truncate(&segment.path, last.offset)?;
    refused_naming(dir.path(), &segment.path)
}

#[test]
fn a_sealed_log_segment_shorter_than_its_hint_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let store = open(dir.path())?;
        fill(&store)?;
        store.flush()?;
    }
    // Wait for the background hints by reopening once: a reopen writes missing hints too.
    drop(open(dir.path())?);
    let sealed = sealed_log_segments(dir.path())?;
    let segment = sealed
        .iter()
        .find(|s| hint_path(dir.path(), s.id).exists())
        .ok_or("no sealed segment with a hint")?;
    let last = *records(&segment.path)?.last().ok_or("no record")?;
    truncate(&segment.path, last.offset)?;
    refused_naming(dir.path(), &segment.path)
}

#[test]
fn a_compacted_segment_cut_at_a_record_boundary_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let store = open(dir.path())?;
        fill(&store)?;
        store.compact()?;
    }
    let compacted: Vec<_> = segments(dir.path())?
        .into_iter()
        .filter(|s| s.compacted)
        .collect();
    let segment = compacted.first().ok_or("no compacted segment")?;
    assert!(
        !hint_path(dir.path(), segment.id).exists(),
        "small values: compacted segments get no hint"
    );
    let last = *records(&segment.path)?.last().ok_or("no record")?;
    truncate(&segment.path, last.offset)?;
    refused_naming(dir.path(), &segment.path)
}

#[test]
fn intact_stores_reopen_after_rolls_compactions_and_restarts() -> TestResult {
    let dir = tempfile::tempdir()?;
    for round in 0..4 {
        let store = open(dir.path())?;
        fill(&store)?;
        if round % 2 == 1 {
            store.compact()?;
        }
        for i in (0..300u32).step_by(7) {
            store.delete(format!("key{i:03}"))?;
        }
    }
    let store = open(dir.path())?;
    assert_eq!(store.len(), 300 - 43);
    Ok(())
}
