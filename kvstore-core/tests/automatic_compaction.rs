//! Automatic compaction: once the sealed segments' dead bytes pass the configured ratio it
//! runs on its own, takes the segments that are themselves that dead, brings the dead share
//! back under the ratio, and never loses, resurrects or changes a value — after overwriting
//! every key twice (old segments all dead, new ones all live) and under random overwrites and
//! deletes (dead bytes spread over every segment).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::TestResult;
use kvstore_core::{KvStore, Options, SyncPolicy};

const RATIO: f64 = 0.5;

fn options() -> Options {
    Options::new()
        .sync_policy(SyncPolicy::Never)
        .segment_bytes(256 << 10)
        .compaction_dead_ratio(RATIO)
        .compaction_min_dead_bytes(64 << 10)
        .maintenance_interval(Duration::from_millis(10))
}

fn check(store: &KvStore, model: &BTreeMap<Vec<u8>, Vec<u8>>) -> TestResult {
    let all: Vec<(Vec<u8>, Vec<u8>)> = store.iter().collect::<Result<_, _>>()?;
    let want: Vec<(Vec<u8>, Vec<u8>)> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert!(all == want, "the store differs from the model");
    Ok(())
}

/// Waits until automatic compaction has run at least `after + 1` times and the dead share
/// of the store is back under the ratio.
fn wait_for_compaction(store: &KvStore, after: u64) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stats = store.stats();
        let dead_share = stats.dead_bytes as f64 / stats.segment_bytes.max(1) as f64;
        if stats.compactions > after && dead_share < RATIO {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(
                format!("no automatic compaction brought dead bytes down: {stats:?}").into(),
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for automatic compaction, then checks every value, before and after a reopen.
fn compacted_and_unchanged(
    store: KvStore,
    dir: &std::path::Path,
    model: &BTreeMap<Vec<u8>, Vec<u8>>,
) -> TestResult {
    wait_for_compaction(&store, 0)?;
    check(&store, model)?;
    drop(store);
    check(&options().open(dir)?, model)
}

#[test]
fn overwriting_every_key_drops_the_old_segments() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = options().open(dir.path())?;
    let mut model = BTreeMap::new();
    for round in 0..3u8 {
        for i in 0..4000u32 {
            let key = format!("key{i:05}").into_bytes();
            let value = vec![b'a' + round; 200];
            store.put(&key, &value)?;
            model.insert(key, value);
        }
    }
    compacted_and_unchanged(store, dir.path(), &model)
}

#[test]
fn random_overwrites_and_deletes_converge() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = options().open(dir.path())?;
    let mut model = BTreeMap::new();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for n in 0..30_000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let key = format!("key{:04}", x % 3000).into_bytes();
        if x.is_multiple_of(10) {
            store.delete(&key)?;
            model.remove(&key);
        } else {
            let value = format!("{n}-{}", "v".repeat((x % 300) as usize)).into_bytes();
            store.put(&key, &value)?;
            model.insert(key, value);
        }
    }
    compacted_and_unchanged(store, dir.path(), &model)
}
