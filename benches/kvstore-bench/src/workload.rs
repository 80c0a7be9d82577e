//! The fixed workload: deterministic keys and values, and the rows of the table.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::engine::{BenchResult, Engine, EngineKind};

/// Sizes of the workload, from the command line.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    pub keys: usize,
    pub key_bytes: usize,
    pub value_bytes: usize,
    pub batch: usize,
    pub durable_puts: usize,
    pub threads_durable: usize,
    pub per_thread_durable: usize,
    pub gets: usize,
    pub seed: u64,
}

/// One measured figure.
#[derive(Debug, Clone)]
pub struct Figure {
    pub row: &'static str,
    pub value: f64,
    pub unit: &'static str,
    /// Whether a higher value is better (ops/s) or a lower one (bytes, ms).
    pub higher_is_better: bool,
}

impl Figure {
    fn new(row: &'static str, value: f64, unit: &'static str, higher_is_better: bool) -> Self {
        Figure {
            row,
            value,
            unit,
            higher_is_better,
        }
    }
}

impl Workload {
    /// Bytes of keys and values of the loaded keys: what "× live data" divides by.
    fn live_bytes(&self) -> f64 {
        (self.keys * (self.key_bytes + self.value_bytes)) as f64
    }

    /// Key `i`: fixed width, spread over the key space by a multiplicative hash so that the
    /// insertion order is not the key order.
    pub fn key(&self, i: u64) -> Vec<u8> {
        let mixed = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ self.seed;
        let mut key = format!("{mixed:016x}{i:08}").into_bytes();
        key.resize(self.key_bytes, b'k');
        key
    }

    pub fn value(&self, i: u64, round: u8) -> Vec<u8> {
        let mut rng = StdRng::seed_from_u64(self.seed ^ i ^ (u64::from(round) << 56));
        (0..self.value_bytes)
            .map(|_| rng.random_range(b'a'..=b'z'))
            .collect()
    }
}

fn per_second(ops: usize, took: Duration) -> f64 {
    ops as f64 / took.as_secs_f64().max(1e-9)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx].as_secs_f64() * 1e6
}

/// Full scans per engine; the median is reported.
const SCANS: usize = 3;

/// Bytes of all files under `dir`.
pub fn disk_bytes(dir: &Path) -> u64 {
    fn walk(dir: &Path) -> u64 {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        entries
            .filter_map(|e| e.ok())
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => walk(&e.path()),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    }
    walk(dir)
}

/// Resident set size of this process, from /proc.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Runs the rows that build the store: load, durable puts, gets and scan; leaves the store in
/// `dir` for [`run_reopened`].
pub fn run_fresh(kind: &EngineKind, w: &Workload, dir: &Path) -> BenchResult<Vec<Figure>> {
    let mut out = Vec::new();
    let mut fig = |row, value, unit, higher_is_better| {
        out.push(Figure::new(row, value, unit, higher_is_better))
    };
    let live_bytes = w.live_bytes();
    let engine: Arc<dyn Engine> = Arc::from((kind.open)(dir)?);

    engine.prepare(true)?;
    // Data is generated before each timed loop: making a key and a value costs about as much as
    // a fast engine's get or non-durable put, and would hide the differences between engines.
    let batches: Vec<Vec<_>> = (0..w.keys)
        .step_by(w.batch)
        .map(|chunk_start| {
            (chunk_start..(chunk_start + w.batch).min(w.keys))
                .map(|i| (w.key(i as u64), w.value(i as u64, 0)))
                .collect()
        })
        .collect();
    let start = Instant::now();
    for pairs in &batches {
        engine.write_batch(pairs, true)?;
    }
    fig(
        "load, durable batches of 1,000 (ops/s)",
        per_second(w.keys, start.elapsed()),
        "ops/s",
        true,
    );
    fig(
        "space after load (× live data)",
        disk_bytes(dir) as f64 / live_bytes,
        "×",
        false,
    );

    drop(batches);
    let pairs: Vec<_> = (0..w.durable_puts)
        .map(|i| (w.key((w.keys + i) as u64), w.value(i as u64, 1)))
        .collect();
    let mut lat = Vec::with_capacity(w.durable_puts);
    let start = Instant::now();
    for (key, value) in &pairs {
        let t = Instant::now();
        engine.put(key, value, true)?;
        lat.push(t.elapsed());
    }
    fig(
        "1 thread durable puts (ops/s)",
        per_second(w.durable_puts, start.elapsed()),
        "ops/s",
        true,
    );
    lat.sort_unstable();
    fig(
        "1 thread durable put p50 (µs)",
        percentile(&lat, 0.5),
        "µs",
        false,
    );
    fig(
        "1 thread durable put p99 (µs)",
        percentile(&lat, 0.99),
        "µs",
        false,
    );

    let per_thread: Vec<Vec<_>> = (0..w.threads_durable)
        .map(|t| {
            (0..w.per_thread_durable)
                .map(|i| {
                    let n = (w.keys + w.durable_puts + t * w.per_thread_durable + i) as u64;
                    (w.key(n), w.value(n, 1))
                })
                .collect()
        })
        .collect();
    let start = Instant::now();
    std::thread::scope(|s| -> BenchResult<()> {
        let handles: Vec<_> = per_thread
            .iter()
            .map(|pairs| {
                let engine = engine.clone();
                s.spawn(move || -> BenchResult<()> {
                    for (key, value) in pairs {
                        engine.put(key, value, true)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| "writer thread panicked")??;
        }
        Ok(())
    })?;
    let total = w.threads_durable * w.per_thread_durable;
    fig(
        "4 threads durable puts (ops/s)",
        per_second(total, start.elapsed()),
        "ops/s",
        true,
    );

    // One flat array: a random get then costs one cache line of the workload, not two.
    let keys: Vec<u8> = (0..w.keys as u64).flat_map(|i| w.key(i)).collect();
    let key = |i: usize| &keys[i * w.key_bytes..(i + 1) * w.key_bytes];
    for threads in [1usize, 2] {
        let key = &key;
        let start = Instant::now();
        std::thread::scope(|s| -> BenchResult<()> {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let engine = engine.clone();
                    s.spawn(move || -> BenchResult<()> {
                        let mut rng = StdRng::seed_from_u64(w.seed + t as u64);
                        for _ in 0..w.gets / threads {
                            let i = rng.random_range(0..w.keys);
                            if engine.get(key(i))?.is_none() {
                                return Err(format!("key {i} missing").into());
                            }
                        }
                        Ok(())
                    })
                })
                .collect();
            for h in handles {
                h.join().map_err(|_| "reader thread panicked")??;
            }
            Ok(())
        })?;
        let row = if threads == 1 {
            "random gets, 1 thread (ops/s)"
        } else {
            "random gets, 2 threads (ops/s)"
        };
        fig(row, per_second(w.gets, start.elapsed()), "ops/s", true);
    }

    // Same keys as the 1-thread row; only engines with a separate snapshot read path report it.
    if let Some(reader) = engine.snapshot_reader()? {
        let mut rng = StdRng::seed_from_u64(w.seed);
        let start = Instant::now();
        for _ in 0..w.gets {
            let i = rng.random_range(0..w.keys);
            if reader.get(key(i))?.is_none() {
                return Err(format!("key {i} missing").into());
            }
        }
        fig(
            "random gets, 1 thread, one read txn (ops/s)",
            per_second(w.gets, start.elapsed()),
            "ops/s",
            true,
        );
    }

    // One scan takes some 10-20 ms here, short enough for a preempted moment of this shared
    // machine to move it by a third: the median of three is reported.
    let mut rates = Vec::with_capacity(SCANS);
    for _ in 0..SCANS {
        let start = Instant::now();
        let scanned = engine.scan_all()?;
        rates.push(per_second(scanned as usize, start.elapsed()));
    }
    rates.sort_by(f64::total_cmp);
    fig(
        "full ordered scan, median of 3 (keys/s)",
        rates[SCANS / 2],
        "keys/s",
        true,
    );

    Ok(out)
}

/// Runs, in a fresh process, the rows on the store [`run_fresh`] left: reopen time and
/// memory, non-durable overwrites of every key, and space before and after compaction.
pub fn run_reopened(kind: &EngineKind, w: &Workload, dir: &Path) -> BenchResult<Vec<Figure>> {
    let mut out = Vec::new();
    let mut fig = |row, value, unit, higher_is_better| {
        out.push(Figure::new(row, value, unit, higher_is_better))
    };
    let live_bytes = w.live_bytes();
    let keys = w.keys + w.durable_puts + w.threads_durable * w.per_thread_durable;
    let rss_before = rss_bytes();
    let start = Instant::now();
    let engine: Arc<dyn Engine> = Arc::from((kind.open)(dir)?);
    engine.get(&w.key(0))?.ok_or("key 0 missing after reopen")?;
    fig(
        "reopen: close → first get (ms)",
        start.elapsed().as_secs_f64() * 1e3,
        "ms",
        false,
    );
    let rss_after = rss_bytes();
    fig(
        "resident memory after reopen (bytes/key)",
        rss_after.saturating_sub(rss_before) as f64 / keys as f64,
        "B/key",
        false,
    );

    engine.prepare(false)?;
    let pairs: Vec<_> = (0..w.keys as u64)
        .map(|i| (w.key(i), w.value(i, 2)))
        .collect();
    let start = Instant::now();
    for (key, value) in &pairs {
        engine.put(key, value, false)?;
    }
    fig(
        "non-durable puts (ops/s)",
        per_second(w.keys, start.elapsed()),
        "ops/s",
        true,
    );
    engine.prepare(true)?;
    engine.put(&w.key(0), &w.value(0, 2), true)?;
    fig(
        "space after overwriting every key (× live data)",
        disk_bytes(dir) as f64 / live_bytes,
        "×",
        false,
    );
    if engine.compact()? {
        // Measured once the store is closed: LSM engines (fjall) free the tables a compaction
        // replaced only when their version history is next collected, which closing does; an
        // open-store figure would count files that are already garbage.
        drop(engine);
        fig(
            "space after compaction and close (× live data)",
            disk_bytes(dir) as f64 / live_bytes,
            "×",
            false,
        );
    }
    Ok(out)
}

/// This disk's `fdatasync` latency after writing `bytes` (p50, in µs), two ways: appending to
/// a file (the size changes, so file-system metadata is committed too), and overwriting inside
/// a region already written with zeros (what a preallocated log does; the floor for one
/// durable write).
pub fn fdatasync_p50_us(dir: &Path, bytes: usize, rounds: usize) -> BenchResult<(f64, f64)> {
    use std::io::Write;
    use std::os::unix::fs::FileExt;
    let path = dir.join("fdatasync-probe");
    let mut file = std::fs::File::create(&path)?;
    let buf = vec![b'x'; bytes];
    let mut append = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        file.write_all(&buf)?;
        file.sync_data()?;
        append.push(t.elapsed());
    }
    let mut overwrite = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let t = Instant::now();
        file.write_all_at(&buf, (i * bytes) as u64)?;
        file.sync_data()?;
        overwrite.push(t.elapsed());
    }
    append.sort_unstable();
    overwrite.sort_unstable();
    std::fs::remove_file(&path)?;
    Ok((percentile(&append, 0.5), percentile(&overwrite, 0.5)))
}
