//! A damaged hint file is only an optimisation lost: opening must ignore it, scan its
//! segment instead and recover exactly the same data, and rewrite the hint in the background.

mod common;

use common::{copy_dir, dump, flip_bit, hint_path, sealed_log_segments, truncate, TestResult};
use kvstore_core::{KvStore, Options, SyncPolicy};
use rand::Rng;

/// Damaged hint files tried.
const FLIPS: usize = 80;

#[test]
fn damaged_hints_fall_back_to_scanning_the_segment() -> TestResult {
    let pristine = tempfile::tempdir()?;
    {
        let store = Options::new()
            .sync_policy(SyncPolicy::Never)
            .segment_bytes(4096)
            .auto_compaction(false)
            .open(pristine.path())?;
        for i in 0..400u32 {
            store.put(format!("key{:03}", i % 150), format!("value-{i}"))?;
            if i % 9 == 0 {
                store.delete(format!("key{:03}", (i * 7) % 150))?;
            }
        }
    }
    let store = KvStore::open(pristine.path())?;
    let expected = dump(&store)?;
    let last_lsn = store.last_lsn();
    drop(store);
    let sealed = sealed_log_segments(pristine.path())?;
    assert!(sealed.len() >= 3, "want several sealed segments");
    let mut rng = rand::rng();
    for round in 0..FLIPS {
        let seg = &sealed[rng.random_range(0..sealed.len())];
        let dir = tempfile::tempdir()?;
        copy_dir(pristine.path(), dir.path())?;
        let hint = hint_path(dir.path(), seg.id);
        let pristine_hint = std::fs::read(&hint)?;
        let what = if round % 8 == 7 {
            let len = rng.random_range(0..pristine_hint.len() as u64);
            truncate(&hint, len)?;
            format!("hint of segment {} cut to {len} bytes", seg.id)
        } else {
            let bit = rng.random_range(0..pristine_hint.len() as u64 * 8);
            flip_bit(&hint, bit)?;
            format!("bit {bit} of the hint of segment {}", seg.id)
        };
        let store = KvStore::open(dir.path()).map_err(|e| format!("{what}: open failed: {e}"))?;
        assert_eq!(dump(&store)?, expected, "{what}: different data");
        assert_eq!(store.last_lsn(), last_lsn, "{what}");
        drop(store); // waits for the background thread, which rewrites the hint
        assert_eq!(
            std::fs::read(&hint)?,
            pristine_hint,
            "{what}: hint not rewritten"
        );
    }
    Ok(())
}
