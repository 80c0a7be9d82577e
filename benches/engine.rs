//! Criterion regression benchmarks of the storage engine (16-byte keys, 100-byte values).
//! The side-by-side comparison with other engines is `kvstore-bench`.

// A benchmark that cannot set up its store has nothing to measure: failing loudly is right.
#![allow(clippy::expect_used)]
// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kvstore::{KvStore, Options, SyncPolicy, WriteBatch};

const KEYS: u64 = 20_000;

fn key(i: u64) -> [u8; 16] {
    (i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .to_be_bytes()
        .repeat(2)
        .try_into()
        .unwrap_or([0; 16])
}

fn loaded(policy: SyncPolicy) -> (tempfile::TempDir, KvStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Options::new()
        .sync_policy(policy)
        .open(dir.path())
        .expect("open");
    let mut batch = WriteBatch::new();
    for i in 0..KEYS {
        batch.put(key(i), [7u8; 100]);
    }
    store.write_batch(batch).expect("load");
    (dir, store)
}

fn writes(c: &mut Criterion) {
    let mut g = c.benchmark_group("write");
    g.throughput(Throughput::Elements(1));
    let (_d, store) = loaded(SyncPolicy::Never);
    let mut i = 0u64;
    g.bench_function("put_nosync", |b| {
        b.iter(|| {
            i += 1;
            store.put(key(i % KEYS), [1u8; 100]).expect("put")
        })
    });
    let (_d, durable) = loaded(SyncPolicy::Always);
    g.sample_size(20);
    g.bench_function("put_durable", |b| {
        b.iter(|| {
            i += 1;
            durable.put(key(i % KEYS), [1u8; 100]).expect("put")
        })
    });
    g.throughput(Throughput::Elements(1_000));
    g.bench_function("batch_1000_durable", |b| {
        b.iter_batched(
            || {
                let mut batch = WriteBatch::new();
                for j in 0..1_000 {
                    batch.put(key(j), [2u8; 100]);
                }
                batch
            },
            |batch| durable.write_batch(batch).expect("batch"),
            BatchSize::SmallInput,
        )
    });
    g.throughput(Throughput::Elements(4 * 50));
    let shared = Arc::new(durable);
    g.bench_function("4_threads_x_50_durable_puts", |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                for t in 0..4u64 {
                    let store = shared.clone();
                    s.spawn(move || {
                        for j in 0..50 {
                            store.put(key(t * 1000 + j), [3u8; 100]).expect("put");
                        }
                    });
                }
            })
        })
    });
    g.finish();
}

fn reads(c: &mut Criterion) {
    let mut g = c.benchmark_group("read");
    let (_d, store) = loaded(SyncPolicy::Never);
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    g.bench_function("get", |b| {
        b.iter(|| {
            i = i.wrapping_add(7919);
            store.get(key(i % KEYS)).expect("get")
        })
    });
    g.throughput(Throughput::Elements(KEYS));
    g.bench_function("full_scan", |b| b.iter(|| store.iter().count()));
    g.finish();
}

fn reopen(c: &mut Criterion) {
    let (dir, store) = loaded(SyncPolicy::Never);
    drop(store);
    c.bench_function("reopen_20k_keys", |b| {
        b.iter(|| KvStore::open(dir.path()).expect("reopen").len())
    });
}

criterion_group!(benches, writes, reads, reopen);
criterion_main!(benches);
