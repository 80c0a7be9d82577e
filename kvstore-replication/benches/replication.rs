//! Replication benchmarks, in-process, 2 replicas, 16-byte keys, 100-byte values:
//! async replicated puts/s vs unreplicated puts/s, sync quorum 1 and 2 latency, drain time
//! of a 200,000-write backlog and catch-up throughput. After criterion's own figures, a
//! summary prints the ratio, p50/p99 and MB/s from plain timed runs in the same process; the
//! ratio twice: with `SyncPolicy::Never` (one writer: what replication costs the master's CPU)
//! and with the durable default `SyncPolicy::Always` on master and replicas (one writer and
//! several, whose fsyncs group commit shares), which is what most deployments run.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kvstore_core::{KvStore, Options, SyncPolicy};
use kvstore_replication::{InProcessReplica, ReplicationMode, Replicator};
use tempfile::TempDir;

const VALUE: [u8; 100] = [0x5a; 100];
const BACKLOG: u64 = 200_000;

/// Writer threads of the durable "several writers" row.
const DURABLE_WRITERS: u64 = 4;
/// Puts per durable round (each waits for an fsync, so far fewer than with `Never`).
const DURABLE_PUTS: u64 = 2_000;
/// Rounds of the `SyncPolicy::Never` row, each a plain and a replicated run on fresh stores.
const NEVER_ROUNDS: usize = 9;
/// Alternating rounds of the durable rows: the disk is shared and its fsync latency drifts,
/// so plain and replicated runs take turns and the median ratio is reported.
const DURABLE_ROUNDS: u64 = 3;

fn opts() -> Options {
    Options::new().sync_policy(SyncPolicy::Never)
}

fn durable_opts() -> Options {
    Options::new().sync_policy(SyncPolicy::Always)
}

fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(b"key:0000");
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

struct Setup {
    _dirs: Vec<TempDir>,
    master: KvStore,
    replicas: Vec<InProcessReplica>,
}

fn setup(replicas: usize) -> Setup {
    setup_with(replicas, opts)
}

fn setup_with(replicas: usize, opts: fn() -> Options) -> Setup {
    let mut dirs = vec![tempfile::tempdir().unwrap()];
    let master = opts().open(dirs[0].path()).unwrap();
    let mut handles = Vec::new();
    for i in 0..replicas {
        let dir = tempfile::tempdir().unwrap();
        handles.push(InProcessReplica::open(format!("r{i}"), dir.path(), opts()).unwrap());
        dirs.push(dir);
    }
    Setup {
        _dirs: dirs,
        master,
        replicas: handles,
    }
}

fn attach(s: &Setup, mode: ReplicationMode) -> Replicator {
    let mut b = Replicator::builder().mode(mode);
    for r in &s.replicas {
        b = b.replica(r.transport());
    }
    b.attach(&s.master).unwrap()
}

fn wait_caught_up(repl: &Replicator, master: &KvStore) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while repl
        .status()
        .replicas
        .iter()
        .any(|r| r.acked_lsn < master.last_lsn())
    {
        assert!(Instant::now() < deadline, "replicas did not catch up");
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn puts(c: &mut Criterion) {
    let mut group = c.benchmark_group("puts");
    group.throughput(Throughput::Elements(1));
    let plain = setup(0);
    let mut i = 0u64;
    group.bench_function("unreplicated", |b| {
        b.iter(|| {
            i += 1;
            plain.master.put(key(i), VALUE).unwrap()
        })
    });
    let s = setup(2);
    let repl = attach(&s, ReplicationMode::Async);
    let mut i = 0u64;
    group.bench_function("async_2_replicas", |b| {
        b.iter(|| {
            i += 1;
            s.master.put(key(i), VALUE).unwrap()
        })
    });
    group.finish();
    wait_caught_up(&repl, &s.master);
}

/// A master with 2 replicas in sync mode with `quorum`.
fn sync_setup(quorum: usize) -> (Setup, Replicator) {
    let s = setup(2);
    let repl = attach(
        &s,
        ReplicationMode::Sync {
            quorum,
            timeout: Duration::from_secs(5),
        },
    );
    (s, repl)
}

fn sync_latency(c: &mut Criterion) {
    let mut group = c.benchmark_group("sync_put");
    for quorum in [1, 2] {
        let (s, repl) = sync_setup(quorum);
        let mut i = 0u64;
        group.bench_function(format!("quorum_{quorum}"), |b| {
            b.iter(|| {
                i += 1;
                s.master.put(key(i), VALUE).unwrap()
            })
        });
        drop(repl);
    }
    group.finish();
}

/// Writes `BACKLOG` records while the replicas are cut off, heals, and times the drain.
fn drain_backlog() -> (Duration, u64) {
    let s = setup(2);
    for r in &s.replicas {
        r.faults().partition();
    }
    let repl = attach(&s, ReplicationMode::Async);
    for i in 0..BACKLOG {
        s.master.put(key(i), VALUE).unwrap();
    }
    let bytes = s.master.stats().segment_bytes;
    let start = Instant::now();
    for r in &s.replicas {
        r.faults().heal();
    }
    wait_caught_up(&repl, &s.master);
    (start.elapsed(), bytes)
}

fn drain(c: &mut Criterion) {
    let mut group = c.benchmark_group("drain");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BACKLOG));
    group.bench_function("backlog_200k_2_replicas", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| drain_backlog().0).sum())
    });
    group.finish();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn timed_puts(master: &KvStore, n: u64, offset: u64) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        master.put(key(offset + i), VALUE).unwrap();
    }
    start.elapsed()
}

/// `DURABLE_PUTS` puts shared by `writers` threads, keys from `offset`; returns puts/s.
fn durable_rate(master: &KvStore, writers: u64, offset: u64) -> f64 {
    let per_writer = DURABLE_PUTS / writers;
    let start = Instant::now();
    std::thread::scope(|scope| {
        for w in 0..writers {
            scope.spawn(move || timed_puts(master, per_writer, offset + w * per_writer));
        }
    });
    (per_writer * writers) as f64 / start.elapsed().as_secs_f64()
}

/// The durable rows: replicated (async, 2 replicas) against unreplicated, both `Always`.
fn durable_summary(writers: u64) {
    let plain = setup_with(0, durable_opts);
    let s = setup_with(2, durable_opts);
    let repl = attach(&s, ReplicationMode::Async);
    // Warm up both (first segment preallocation, first fsyncs of fresh files).
    durable_rate(&plain.master, writers, 1 << 40);
    durable_rate(&s.master, writers, 1 << 40);
    let mut rounds: Vec<(f64, f64)> = (0..DURABLE_ROUNDS)
        .map(|r| {
            let plain_rate = durable_rate(&plain.master, writers, r * DURABLE_PUTS);
            let async_rate = durable_rate(&s.master, writers, r * DURABLE_PUTS);
            (plain_rate, async_rate)
        })
        .collect();
    wait_caught_up(&repl, &s.master);
    drop(repl);
    rounds.sort_by(|a, b| (a.1 / a.0).total_cmp(&(b.1 / b.0)));
    let (plain_rate, async_rate) = rounds[rounds.len() / 2];
    println!(
        "summary: durable (SyncPolicy::Always), {writers} writer(s): unreplicated {plain_rate:.0} puts/s, async 2 replicas {async_rate:.0} puts/s, ratio {:.2} (median of {DURABLE_ROUNDS} alternating rounds)",
        async_rate / plain_rate
    );
}

/// One round of the `SyncPolicy::Never` row on fresh stores: unreplicated puts/s, async
/// replicated puts/s, and how long after the last write the replicas caught up.
fn never_round(n: u64) -> (f64, f64, Duration) {
    let plain = setup(0);
    let t_plain = timed_puts(&plain.master, n, 0);
    drop(plain);
    let s = setup(2);
    let repl = attach(&s, ReplicationMode::Async);
    let t_async = timed_puts(&s.master, n, 0);
    let writer_done = Instant::now();
    wait_caught_up(&repl, &s.master);
    let tail = writer_done.elapsed();
    drop(repl);
    (
        n as f64 / t_plain.as_secs_f64(),
        n as f64 / t_async.as_secs_f64(),
        tail,
    )
}

/// Plain timed runs, printed as the figures the issue asks for.
fn summary(_c: &mut Criterion) {
    const N: u64 = 200_000;
    // Both runs of a round share the machine's state of the moment; the median round is
    // reported, since a single pair drifts by ±10% on a shared 2-core machine.
    let mut rounds: Vec<(f64, f64, Duration)> = (0..NEVER_ROUNDS).map(|_| never_round(N)).collect();
    rounds.sort_by(|a, b| (a.1 / a.0).total_cmp(&(b.1 / b.0)));
    let ratios: Vec<String> = rounds.iter().map(|r| format!("{:.2}", r.1 / r.0)).collect();
    let (plain_rate, async_rate, tail) = rounds[rounds.len() / 2];
    println!("summary: unreplicated {plain_rate:.0} puts/s, async 2 replicas {async_rate:.0} puts/s, ratio {:.2} (median of {NEVER_ROUNDS} rounds: {}; replicas caught up {tail:?} after the last write)", async_rate / plain_rate, ratios.join(", "));
    for writers in [1, DURABLE_WRITERS] {
        durable_summary(writers);
    }

    for quorum in [1, 2] {
        let (s, repl) = sync_setup(quorum);
        let mut lat: Vec<Duration> = (0..20_000u64)
            .map(|i| {
                let t = Instant::now();
                s.master.put(key(i), VALUE).unwrap();
                t.elapsed()
            })
            .collect();
        lat.sort();
        println!(
            "summary: sync quorum {quorum}: p50 {:?}, p99 {:?}",
            percentile(&lat, 0.50),
            percentile(&lat, 0.99)
        );
        drop(repl);
    }

    let (elapsed, bytes) = drain_backlog();
    println!(
        "summary: drain of a {BACKLOG}-write backlog to 2 replicas: {elapsed:?} ({:.0} records/s, {:.1} MB/s of log per replica)",
        BACKLOG as f64 / elapsed.as_secs_f64(),
        bytes as f64 / 1e6 / elapsed.as_secs_f64()
    );

    // Catch-up of one replica from empty, through the WAL.
    let s = setup(1);
    for i in 0..BACKLOG {
        s.master.put(key(i), VALUE).unwrap();
    }
    let bytes = s.master.stats().segment_bytes;
    let start = Instant::now();
    let repl = attach(&s, ReplicationMode::Async);
    wait_caught_up(&repl, &s.master);
    let elapsed = start.elapsed();
    println!(
        "summary: WAL catch-up of one replica: {:.1} MB/s ({bytes} bytes in {elapsed:?})",
        bytes as f64 / 1e6 / elapsed.as_secs_f64()
    );
}

criterion_group!(benches, puts, sync_latency, drain, summary);
criterion_main!(benches);
