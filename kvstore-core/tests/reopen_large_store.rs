//! Opening a store large enough that recovery resolves its index on two threads (each half
//! of the key space on its own) must give exactly the index a model gives: every key, its
//! newest value, no deleted key, in order — whether the keys' first 8 bytes differ (an even
//! split) or most keys share them (a skewed split, or none).

mod common;

use std::collections::BTreeMap;

use common::TestResult;
use kvstore_core::{KvStore, Options, SyncPolicy, WriteBatch};

fn options() -> Options {
    Options::new()
        .sync_policy(SyncPolicy::Never)
        .segment_bytes(1 << 20)
        .auto_compaction(false)
}

fn check(store: &KvStore, model: &BTreeMap<Vec<u8>, Vec<u8>>) -> TestResult {
    assert_eq!(store.len(), model.len());
    let all: Vec<(Vec<u8>, Vec<u8>)> = store.iter().collect::<Result<_, _>>()?;
    assert!(all.iter().map(|(k, _)| k).eq(model.keys()), "keys differ");
    for ((k, v), (mk, mv)) in all.iter().zip(model) {
        assert_eq!((k, v), (mk, mv));
    }
    for k in model.keys().step_by(97) {
        assert_eq!(store.get(k)?.as_ref(), model.get(k));
    }
    Ok(())
}

fn load(keys: impl Fn(u64) -> Vec<u8>) -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut model = BTreeMap::new();
    {
        let store = options().open(dir.path())?;
        for chunk in 0..60u64 {
            let mut batch = WriteBatch::new();
            for i in chunk * 1000..(chunk + 1) * 1000 {
                let value = format!("first {i}").into_bytes();
                batch.put(keys(i), &value);
                model.insert(keys(i), value);
            }
            store.write_batch(batch)?;
        }
        // Newer versions in later segments, and deletes, so that resolving must pick the
        // newest of several versions spread over segments.
        for i in (0..60_000u64).step_by(7) {
            let value = format!("second {i}").into_bytes();
            store.put(keys(i), &value)?;
            model.insert(keys(i), value);
        }
        for i in (0..60_000u64).step_by(11) {
            store.delete(keys(i))?;
            model.remove(&keys(i));
        }
        check(&store, &model)?;
    }
    for _ in 0..2 {
        let store = options().open(dir.path())?;
        check(&store, &model)?;
    }
    Ok(())
}

#[test]
fn keys_with_distinct_prefixes() -> TestResult {
    load(|i| format!("{:016x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).into_bytes())
}

#[test]
fn keys_sharing_their_first_eight_bytes() -> TestResult {
    // Nine keys in ten share the prefix "user:000", so the split is lopsided or not made.
    load(|i| {
        if i % 10 == 0 {
            format!("{i:08}-other").into_bytes()
        } else {
            format!("user:000{i:08}").into_bytes()
        }
    })
}
