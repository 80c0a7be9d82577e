//! Test helper for the crash and lock-file tests (`tests/crash_sigkill.rs`,
//! `tests/lock_file.rs`); not part of the public interface.
//!
//! - `kvstore-crash-writer <dir> <seed>`: opens `dir` with `SyncPolicy::Always`, small
//!   segments and eager automatic compaction, then writes forever from [`WRITER_THREADS`]
//!   threads. Thread `t` owns the keys `t{t}-k00`..; it prints an intent line before each
//!   write and an acknowledgement line after the write returned, each flushed on its own:
//!   `I <t> <n> <op>...` with ops `P:<key>:<value>` / `D:<key>`, then `A <t> <n> <lsn>`.
//!   A failed write prints `E <t> <n> <error>` and stops that thread. The parent kills it.
//! - `kvstore-crash-writer hold <dir>`: opens `dir`, prints `HOLDING`, and keeps the store
//!   (and its lock) open until stdin reaches end of file.
//! - `kvstore-crash-writer try-open <dir>`: tries to open `dir` and prints `LOCKED <error>`,
//!   `OPENED` or `ERROR <error>`.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use kvstore_core::{Error, KvStore, Options, SyncPolicy, WriteBatch};

/// Writer threads in `write` mode; each owns its own keys, so the parent can tell which
/// write to a key came last.
const WRITER_THREADS: u64 = 4;
/// Keys owned by each writer thread.
const KEYS_PER_THREAD: u64 = 24;
/// Longest value padding in bytes (values also carry their origin in front).
const MAX_PADDING_BYTES: u64 = 300;

/// splitmix64: a tiny deterministic generator (the binary cannot use dev-dependencies).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [mode, dir] if mode == "hold" => hold(PathBuf::from(dir)),
        [mode, dir] if mode == "try-open" => try_open(PathBuf::from(dir)),
        [dir, seed] => match seed.parse::<u64>() {
            Ok(seed) => write_forever(PathBuf::from(dir), seed),
            Err(e) => Err(format!("bad seed {seed:?}: {e}")),
        },
        _ => Err("usage: kvstore-crash-writer <dir> <seed> | hold <dir> | try-open <dir>".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kvstore-crash-writer: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints one line with a single flushed write, so a kill never leaves half a line that
/// looks whole (the parent ignores a last line without its newline).
fn emit(out: &Mutex<()>, line: &str) -> Result<(), String> {
    let _serialised = out.lock().map_err(|_| "stdout lock poisoned".to_string())?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(format!("{line}\n").as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("writing to stdout: {e}"))
}

fn write_forever(dir: PathBuf, seed: u64) -> Result<(), String> {
    let store = Options::new()
        .sync_policy(SyncPolicy::Always)
        .segment_bytes(16 << 10)
        .compaction_min_dead_bytes(8 << 10)
        .compaction_dead_ratio(0.3)
        .maintenance_interval(Duration::from_millis(20))
        .open(&dir)
        .map_err(|e| format!("opening {}: {e}", dir.display()))?;
    let out = Mutex::new(());
    thread::scope(|scope| {
        let handles: Vec<_> = (0..WRITER_THREADS)
            .map(|t| {
                let store = store.clone();
                let out = &out;
                scope.spawn(move || write_as(&store, out, seed, t))
            })
            .collect();
        for handle in handles {
            match handle.join() {
                Ok(result) => result?,
                Err(_) => return Err("a writer thread panicked".to_string()),
            }
        }
        Ok(())
    })
}

/// One writer thread: puts, deletes and batches on its own keys, forever.
fn write_as(store: &KvStore, out: &Mutex<()>, seed: u64, t: u64) -> Result<(), String> {
    let mut rng = Rng(seed.wrapping_mul(1000).wrapping_add(t));
    for n in 1.. {
        let op_count = match rng.below(100) {
            0..=59 => 1,
            _ => 2 + rng.below(4),
        };
        let mut keys: Vec<u64> = Vec::new();
        while (keys.len() as u64) < op_count {
            let k = rng.below(KEYS_PER_THREAD);
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        let mut batch = WriteBatch::new();
        let mut described = Vec::new();
        for k in keys {
            let key = format!("t{t}-k{k:02}");
            if rng.below(100) < 20 {
                described.push(format!("D:{key}"));
                batch.delete(&key);
            } else {
                let padding = "x".repeat(rng.below(MAX_PADDING_BYTES) as usize);
                let value = format!("s{seed}.t{t}.n{n}.{key}.{padding}");
                described.push(format!("P:{key}:{value}"));
                batch.put(&key, &value);
            }
        }
        emit(out, &format!("I {t} {n} {}", described.join(" ")))?;
        let single = batch.ops().next().filter(|_| op_count == 1);
        let result = match single {
            Some(kvstore_core::OpRef::Delete { key }) => store.delete(key).map(|_| 0),
            Some(kvstore_core::OpRef::Put { key, value }) => store.put(key, value),
            None => store.write_batch(batch),
        };
        match result {
            Ok(lsn) => emit(out, &format!("A {t} {n} {lsn}"))?,
            Err(e) => {
                emit(out, &format!("E {t} {n} {e}"))?;
                return Err(format!("thread {t} write {n} failed: {e}"));
            }
        }
    }
    Ok(())
}

fn hold(dir: PathBuf) -> Result<(), String> {
    let store = KvStore::open(&dir).map_err(|e| format!("opening {}: {e}", dir.display()))?;
    store
        .put(b"held-by", std::process::id().to_string())
        .map_err(|e| format!("writing: {e}"))?;
    println!("HOLDING");
    let stdin = std::io::stdin();
    let mut line = String::new();
    while stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("reading stdin: {e}"))?
        > 0
    {
        line.clear();
    }
    drop(store);
    Ok(())
}

fn try_open(dir: PathBuf) -> Result<(), String> {
    match KvStore::open(&dir) {
        Ok(_) => println!("OPENED"),
        Err(e @ Error::Locked { .. }) => println!("LOCKED {e}"),
        Err(e) => println!("ERROR {e}"),
    }
    Ok(())
}
