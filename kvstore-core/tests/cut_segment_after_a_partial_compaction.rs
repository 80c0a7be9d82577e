//! README "On disk": "A sealed segment that lost records at its end, even cut cleanly at a
//! record boundary, is corruption too: each log segment's header names the log segment sealed
//! when it started (whose last LSN must reach its own starting LSN), a compacted segment's
//! header counts its records, and a hint must describe a file of its own length."
//!
//! The first check lives in the *next* log segment's header (`EndCheck::FollowsLog`). An
//! automatic (partial) compaction used to remove a mostly dead log segment while an older one
//! with no dead bytes stayed: the older segment lost its only follower, and without a hint
//! (its hint write failed, or a crash came before it; simulated by removing the hint) nothing
//! checked its end, so a cut at a record boundary opened silently without the lost records.
//! Log segments are now compacted only together with every older one: each log segment that
//! stays keeps its follower, and a cut of any of them is refused.
mod common;

use std::time::{Duration, Instant};

use common::{hint_path, records, sealed_log_segments, segments, truncate, TestResult};
use kvstore_core::{Error, Options, SyncPolicy};

fn options() -> Options {
    Options::new()
        .sync_policy(SyncPolicy::Always)
        .segment_bytes(4096)
        .auto_compaction(false)
}

#[test]
fn a_cut_sealed_segment_whose_follower_was_compacted_away_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let value = |tag: &str, i: u32| format!("{tag}-{i}-{}", "x".repeat(100));
    {
        let store = options().open(dir.path())?;
        // The first segment: keys never overwritten (no dead bytes, never compacted).
        let mut i = 0;
        while segments(dir.path())?.len() < 2 {
            store.put(format!("a{i:03}"), value("a", i))?;
            i += 1;
        }
        // The next segments: keys overwritten afterwards (all dead).
        for round in 0..2 {
            for j in 0..60u32 {
                store.put(format!("b{j:03}"), value(&format!("b{round}"), j))?;
            }
        }
    }
    let first = sealed_log_segments(dir.path())?
        .into_iter()
        .next()
        .ok_or("no sealed log segment")?;
    {
        // An automatic compaction takes the dead segments only.
        let store = options()
            .auto_compaction(true)
            .compaction_dead_ratio(0.2)
            .compaction_min_dead_bytes(1)
            .maintenance_interval(Duration::from_millis(5))
            .open(dir.path())?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while store.stats().compactions == 0 {
            assert!(Instant::now() < deadline, "no automatic compaction");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let ids: Vec<_> = segments(dir.path())?
        .iter()
        .map(|s| (s.id, s.compacted))
        .collect();
    eprintln!("segments after the automatic compaction (id, compacted): {ids:?}");
    assert!(
        !first.path.exists(),
        "the first log segment (no dead bytes) went with the dead ones after it"
    );
    {
        // More log segments after the compacted ones, so that some stay to be cut.
        let store = options().open(dir.path())?;
        for j in 0..60u32 {
            store.put(format!("c{j:03}"), value("c", j))?;
        }
    }
    let survivors = sealed_log_segments(dir.path())?;
    assert!(!survivors.is_empty(), "no sealed log segment to cut");
    for survivor in survivors {
        let trial = tempfile::tempdir()?;
        common::copy_dir(dir.path(), trial.path())?;
        let path = common::segment_path(trial.path(), survivor.id);
        let _ = std::fs::remove_file(hint_path(trial.path(), survivor.id));
        let recs = records(&path)?;
        let last = recs.last().ok_or("no record")?;
        truncate(&path, last.offset)?;
        match options().open(trial.path()) {
            Err(Error::Corrupt { path: at, .. }) => assert_eq!(at, path),
            Err(e) => return Err(format!("unexpected error {e}").into()),
            Ok(_) => {
                return Err(format!(
                    "log segment {} cut before its record of LSN {} opened silently",
                    survivor.id, last.lsn
                )
                .into())
            }
        }
    }
    Ok(())
}
