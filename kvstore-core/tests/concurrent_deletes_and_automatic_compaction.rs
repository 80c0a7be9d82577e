//! Writers doing puts, deletes, batches that put one key and delete another, and batch deletes of absent keys, while
//! automatic (partial) compaction runs every millisecond and an explicit full compaction now
//! and then, with a scanner checking order. At the end the store equals the model, before and
//! after reopen (no resurrected tombstoned key, no lost or stale value), and the live handle's
//! stats (keys, live bytes) equal those a reopen recomputes from disk.
//! (`concurrent_readers_writers` only puts and only compacts fully; `automatic_compaction`
//! is single-threaded.)

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::TestResult;
use kvstore_core::{KvStore, Options, SyncPolicy, WriteBatch};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn opts() -> Options {
    Options::new()
        .sync_policy(SyncPolicy::Never)
        .segment_bytes(8 << 10)
        .compaction_dead_ratio(0.3)
        .compaction_min_dead_bytes(512)
        .maintenance_interval(Duration::from_millis(1))
}

fn writer(store: &KvStore, t: u64) -> Result<Model, String> {
    let mut model = Model::new();
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (t * 7919 + 1);
    let key = |n: u64| format!("t{t}-{:03}", n % 120).into_bytes();
    for n in 0..6000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let k = key(x);
        let e = |e: kvstore_core::Error| e.to_string();
        match x % 10 {
            0 | 1 => {
                store.delete(&k).map_err(e)?;
                model.remove(&k);
            }
            2 => {
                let other = key(x >> 20);
                let v = format!("b{n}-{}", "y".repeat((x % 50) as usize)).into_bytes();
                let mut batch = WriteBatch::new();
                batch.put(&k, &v);
                batch.delete(&other);
                store.write_batch(batch).map_err(e)?;
                model.insert(k, v);
                model.remove(&other);
            }
            3 => {
                let mut batch = WriteBatch::new();
                batch.delete(format!("t{t}-absent{}", x % 5));
                store.write_batch(batch).map_err(e)?;
            }
            _ => {
                let v = format!("p{n}-{}", "z".repeat((x % 200) as usize)).into_bytes();
                store.put(&k, &v).map_err(e)?;
                model.insert(k, v);
            }
        }
        if t == 0 && n % 1500 == 0 {
            store.compact().map_err(e)?;
        }
    }
    Ok(model)
}

fn check(store: &KvStore, model: &Model, what: &str) -> TestResult {
    let all: Model = store.iter().collect::<Result<_, _>>()?;
    if &all != model {
        let show = |k: &Vec<u8>| String::from_utf8_lossy(k).to_string();
        let extra: Vec<_> = all
            .keys()
            .filter(|k| !model.contains_key(*k))
            .map(show)
            .collect();
        let missing: Vec<_> = model
            .keys()
            .filter(|k| !all.contains_key(*k))
            .map(show)
            .collect();
        let changed: Vec<_> = model
            .iter()
            .filter(|(k, v)| all.get(*k).is_some_and(|w| w != *v))
            .map(|(k, _)| show(k))
            .collect();
        return Err(
            format!("{what}: extra {extra:?}, missing {missing:?}, changed {changed:?}").into(),
        );
    }
    Ok(())
}

#[test]
fn deletes_and_batches_under_automatic_compaction_match_the_model_and_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = opts().open(dir.path())?;
    let models = std::thread::scope(|s| -> Result<Vec<Model>, String> {
        let writers: Vec<_> = (0..3)
            .map(|t| {
                let store = &store;
                s.spawn(move || writer(store, t))
            })
            .collect();
        let store = &store;
        let scanner = s.spawn(move || -> Result<(), String> {
            for _ in 0..200 {
                let items: Vec<_> = store
                    .iter()
                    .collect::<Result<_, _>>()
                    .map_err(|e| e.to_string())?;
                if !items
                    .windows(2)
                    .all(|w: &[(Vec<u8>, Vec<u8>)]| w[0].0 < w[1].0)
                {
                    return Err("a scan repeated or reordered keys".into());
                }
            }
            Ok(())
        });
        let models = writers
            .into_iter()
            .map(|w| w.join().map_err(|_| "writer panicked".to_string())?)
            .collect::<Result<Vec<_>, String>>()?;
        scanner
            .join()
            .map_err(|_| "scanner panicked".to_string())??;
        Ok(models)
    })?;
    let model: Model = models.into_iter().flatten().collect();
    check(&store, &model, "live")?;
    let compactions = store.stats().compactions;
    assert!(compactions > 3, "too few compactions ran: {compactions}");
    // (Dead bytes are not compared: a background compaction in flight counts its outputs
    // beside its inputs for a moment.)
    let live = store.stats();
    drop(store);
    let store = opts().auto_compaction(false).open(dir.path())?;
    check(&store, &model, "reopened")?;
    let reopened = store.stats();
    assert_eq!(live.keys, reopened.keys, "key count drifted");
    assert_eq!(live.live_bytes, reopened.live_bytes, "live bytes drifted");
    Ok(())
}
