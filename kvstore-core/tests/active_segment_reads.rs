//! Values of the active segment are served from an in-memory mirror of its writes, and a
//! store reopened on a well-filled active segment seals it and starts a new one. Reads must
//! return exactly what the log holds through segment rolls, reopens and torn writes.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::TestResult;
use kvstore_core::io::FaultyVfs;
use kvstore_core::{KvStore, Options, SyncPolicy, WriteBatch};

const SEGMENT_BYTES: u64 = 64 << 10;

fn options() -> Options {
    Options::new()
        .sync_policy(SyncPolicy::Never)
        .segment_bytes(SEGMENT_BYTES)
        .auto_compaction(false)
}

fn value(i: u32, round: u32) -> Vec<u8> {
    format!("{round}:{i}:{}", "v".repeat((i % 700) as usize)).into_bytes()
}

/// Every read path agrees with the model: `get`, `range` both ways, and `for_each`.
fn check(store: &KvStore, model: &BTreeMap<Vec<u8>, Vec<u8>>) -> TestResult {
    for (k, v) in model {
        assert_eq!(store.get(k)?.as_ref(), Some(v), "get {k:?}");
    }
    let forward: Vec<_> = store.iter().collect::<Result<_, _>>()?;
    let expected: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(forward, expected);
    let mut backward: Vec<_> = store.iter().rev().collect::<Result<_, _>>()?;
    backward.reverse();
    assert_eq!(backward, expected);
    let mut visited = Vec::new();
    store.for_each::<&[u8], _>(.., |k, v| {
        visited.push((k.to_vec(), v.to_vec()));
        true
    })?;
    assert_eq!(visited, expected);
    Ok(())
}

#[test]
fn reads_match_the_log_across_rolls_and_reopens() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut model = BTreeMap::new();
    for round in 0..4u32 {
        let store = options().open(dir.path())?;
        check(&store, &model)?;
        for i in 0..300u32 {
            let key = format!("key{:04}", (i * 7 + round) % 400).into_bytes();
            if i % 11 == 0 {
                store.delete(&key)?;
                model.remove(&key);
            } else if i % 5 == 0 {
                let mut batch = WriteBatch::new();
                batch.put(&key, value(i, round));
                batch.put(b"batch-twin", value(i + 1, round));
                store.write_batch(batch)?;
                model.insert(key, value(i, round));
                model.insert(b"batch-twin".to_vec(), value(i + 1, round));
            } else {
                store.put(&key, value(i, round))?;
                model.insert(key, value(i, round));
            }
            if i % 50 == 0 {
                check(&store, &model)?;
            }
        }
        check(&store, &model)?;
        store.compact()?;
        check(&store, &model)?;
    }
    let reopened = options().open(dir.path())?;
    check(&reopened, &model)?;
    Ok(())
}

#[test]
fn a_reopen_seals_a_well_filled_active_segment_only() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut model = BTreeMap::new();
    {
        let store = options().open(dir.path())?;
        for i in 0..40u32 {
            let key = format!("key{i:03}").into_bytes();
            store.put(&key, vec![b'x'; 500])?; // 20 KiB: a third of a segment, no roll
            model.insert(key, vec![b'x'; 500]);
        }
        assert_eq!(store.stats().segments, 1);
    }
    let store = options().open(dir.path())?;
    assert_eq!(
        store.stats().segments,
        2,
        "the filled segment is sealed, a new one started"
    );
    check(&store, &model)?;
    drop(store);
    let store = options().open(dir.path())?;
    assert_eq!(store.stats().segments, 2, "an empty active segment is kept");
    store.put("key000", "y")?;
    model.insert(b"key000".to_vec(), b"y".to_vec());
    check(&store, &model)?;
    Ok(())
}

#[test]
fn a_torn_write_never_changes_what_reads_return() -> TestResult {
    let dir = tempfile::tempdir()?;
    let vfs = FaultyVfs::new();
    let mut model = BTreeMap::new();
    {
        let store = options().vfs(Arc::new(vfs.clone())).open(dir.path())?;
        for i in 0..100u32 {
            let key = format!("key{i:03}").into_bytes();
            store.put(&key, value(i, 0))?;
            model.insert(key, value(i, 0));
        }
        vfs.tear_writes_after(0);
        assert!(store.put("torn", "x".repeat(5000)).is_err());
        // Poisoned for writes; reads still return the acknowledged values.
        check(&store, &model)?;
        vfs.heal();
    }
    let store = options().open(dir.path())?;
    check(&store, &model)?;
    Ok(())
}

/// With a tail cache smaller than a segment (or none), reads of values the cache dropped, of
/// values larger than the whole cache, and of the newest values all return what was written.
#[test]
fn a_small_or_disabled_tail_cache_still_reads_everything() -> TestResult {
    for budget in [0, 256 << 10, 300 << 10] {
        let dir = tempfile::tempdir()?;
        let opts = || {
            Options::new()
                .sync_policy(SyncPolicy::Never)
                .segment_bytes(4 << 20)
                .tail_cache_bytes(budget)
                .auto_compaction(false)
        };
        let mut model = BTreeMap::new();
        let store = opts().open(dir.path())?;
        for i in 0..200u32 {
            let len = match i % 10 {
                0 => 600 << 10, // larger than the whole cache
                1..=3 => 40 << 10,
                _ => 300,
            };
            let key = format!("key{:03}", i % 150).into_bytes();
            let value = vec![(i % 251) as u8; len];
            store.put(&key, &value)?;
            model.insert(key, value);
            if i % 37 == 0 {
                check(&store, &model)?;
            }
        }
        check(&store, &model)?;
        drop(store);
        check(&opts().open(dir.path())?, &model)?;
    }
    Ok(())
}
