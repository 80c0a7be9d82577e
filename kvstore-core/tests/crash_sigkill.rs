//! A child process writing under load with `SyncPolicy::Always` (puts, deletes and batches
//! from several threads, automatic compaction on) is SIGKILLed at random moments, again and
//! again on the same directory. After every kill the store must hold every acknowledged write
//! (unless a later write of the same thread replaced it), each batch whole or absent, and no
//! value that was never written.
//!
//! Every key belongs to one writer thread and each thread writes one thing at a time, so
//! after a kill each thread has at most one write in flight: its last intent line without an
//! acknowledgement. Only that write's keys may show either their state before it or after it.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use common::{dump, ChildGuard, TestResult};
use kvstore_core::KvStore;
use rand::Rng;

/// SIGKILLs (and restarts) of the writer.
const KILLS: usize = 24;
/// How long a writer runs before it is killed: 20..400 ms, so some kills land during open
/// and recovery, others in the middle of commits, rolls and compactions.
const RUN_MILLIS: std::ops::Range<u64> = 20..400;

type State = BTreeMap<String, Option<String>>;

/// One write as the child announced it: (key, Some(value)) for a put, (key, None) for a delete.
#[derive(Debug, Clone)]
struct Intent {
    thread: u64,
    n: u64,
    ops: Vec<(String, Option<String>)>,
    acked_lsn: Option<u64>,
}

fn parse_op(op: &str) -> Result<(String, Option<String>), String> {
    let mut parts = op.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("P"), Some(key), Some(value)) => Ok((key.to_string(), Some(value.to_string()))),
        (Some("D"), Some(key), None) => Ok((key.to_string(), None)),
        _ => Err(format!("unparseable op {op:?}")),
    }
}

/// Turns the child's output into its writes, in order per thread.
fn parse_output(lines: &[String]) -> Result<BTreeMap<u64, Vec<Intent>>, String> {
    let mut threads: BTreeMap<u64, Vec<Intent>> = BTreeMap::new();
    for line in lines {
        let fields: Vec<&str> = line.split(' ').collect();
        let num = |i: usize| -> Result<u64, String> {
            fields
                .get(i)
                .and_then(|f| f.parse().ok())
                .ok_or_else(|| format!("bad line {line:?}"))
        };
        match fields.first().copied() {
            Some("I") => {
                let ops = fields
                    .get(3..)
                    .unwrap_or_default()
                    .iter()
                    .map(|op| parse_op(op))
                    .collect::<Result<_, _>>()?;
                let (thread, n) = (num(1)?, num(2)?);
                let list = threads.entry(thread).or_default();
                if list.last().is_some_and(|i| i.acked_lsn.is_none()) {
                    return Err(format!(
                        "thread {thread} started write {n} before the last returned"
                    ));
                }
                list.push(Intent {
                    thread,
                    n,
                    ops,
                    acked_lsn: None,
                });
            }
            Some("A") => {
                let (thread, n, lsn) = (num(1)?, num(2)?, num(3)?);
                match threads.get_mut(&thread).and_then(|l| l.last_mut()) {
                    Some(i) if i.n == n => i.acked_lsn = Some(lsn),
                    _ => return Err(format!("acknowledgement without intent: {line:?}")),
                }
            }
            Some("E") => return Err(format!("the writer reported a failed write: {line:?}")),
            _ => return Err(format!("unexpected line {line:?}")),
        }
    }
    Ok(threads)
}

fn apply(state: &mut State, ops: &[(String, Option<String>)]) {
    for (key, value) in ops {
        state.insert(key.clone(), value.clone());
    }
}

fn get(state: &State, key: &str) -> Option<String> {
    state.get(key).cloned().flatten()
}

/// Checks the reopened store against what was acknowledged, and returns its contents as the
/// new baseline (the in-flight writes are resolved by what the store shows).
fn check(dir: &Path, mut expected: State, run: &BTreeMap<u64, Vec<Intent>>) -> TestResult<State> {
    let store = KvStore::open(dir)?;
    let actual: State = dump(&store)?
        .into_iter()
        .map(|(k, v)| Ok((String::from_utf8(k)?, Some(String::from_utf8(v)?))))
        .collect::<Result<_, Box<dyn std::error::Error>>>()?;
    let mut in_flight: Vec<&Intent> = Vec::new();
    let mut max_acked_lsn = 0;
    for intents in run.values() {
        for intent in intents {
            match intent.acked_lsn {
                Some(lsn) => {
                    apply(&mut expected, &intent.ops);
                    max_acked_lsn = max_acked_lsn.max(lsn);
                }
                None => in_flight.push(intent),
            }
        }
    }
    assert!(
        store.last_lsn() >= max_acked_lsn,
        "last LSN {} is below the acknowledged LSN {max_acked_lsn}",
        store.last_lsn()
    );
    let mut unsure: Vec<&str> = Vec::new();
    for intent in &in_flight {
        let before: Vec<Option<String>> =
            intent.ops.iter().map(|(k, _)| get(&expected, k)).collect();
        let mut applied = expected.clone();
        apply(&mut applied, &intent.ops);
        let after: Vec<Option<String>> = intent.ops.iter().map(|(k, _)| get(&applied, k)).collect();
        let seen: Vec<Option<String>> = intent.ops.iter().map(|(k, _)| get(&actual, k)).collect();
        assert!(
            seen == before || seen == after,
            "write {} of thread {} (in flight at the kill) is neither absent nor whole:\n\
             seen {seen:?}\nbefore {before:?}\nafter {after:?}",
            intent.n,
            intent.thread
        );
        unsure.extend(intent.ops.iter().map(|(k, _)| k.as_str()));
    }
    let keys: std::collections::BTreeSet<&String> = expected.keys().chain(actual.keys()).collect();
    for key in keys {
        if unsure.contains(&key.as_str()) {
            continue;
        }
        assert_eq!(
            get(&actual, key),
            get(&expected, key),
            "key {key}: the store disagrees with the acknowledged writes"
        );
    }
    Ok(actual)
}

/// Runs the writer on `dir` for `millis`, SIGKILLs it, and returns its whole output lines.
fn run_and_kill(dir: &Path, seed: u64, millis: u64) -> TestResult<Vec<String>> {
    let mut child = ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_kvstore-crash-writer"))
            .arg(dir)
            .arg(seed.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?,
    );
    let stdout = child.0.stdout.take().ok_or("no stdout pipe")?;
    let reader = thread::spawn(move || -> std::io::Result<Vec<String>> {
        let mut lines = Vec::new();
        let mut reader = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            if reader.read_until(b'\n', &mut buf)? == 0 {
                return Ok(lines);
            }
            // A last line without its newline was cut by the kill: it was never whole.
            if buf.ends_with(b"\n") {
                lines.push(String::from_utf8_lossy(&buf[..buf.len() - 1]).into_owned());
            }
        }
    });
    thread::sleep(Duration::from_millis(millis));
    if let Some(status) = child.0.try_wait()? {
        return Err(format!("the writer exited on its own with {status}").into());
    }
    child.kill()?;
    let lines = reader.join().map_err(|_| "stdout reader panicked")??;
    Ok(lines)
}

#[test]
fn acknowledged_writes_survive_repeated_sigkill() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut rng = rand::rng();
    let base_seed: u64 = rng.random_range(1..1_000_000);
    eprintln!(
        "crash test: base seed {base_seed}, directory {}",
        dir.path().display()
    );
    let mut expected = State::new();
    let mut acked = 0;
    for kill in 0..KILLS {
        let seed = base_seed + kill as u64;
        let millis = rng.random_range(RUN_MILLIS);
        let lines = run_and_kill(dir.path(), seed, millis)?;
        let run = parse_output(&lines).map_err(|e| format!("seed {seed}: {e}"))?;
        acked += run
            .values()
            .flatten()
            .filter(|i| i.acked_lsn.is_some())
            .count();
        expected = check(dir.path(), expected, &run)
            .map_err(|e| format!("after kill {kill} (seed {seed}, {millis} ms): {e}"))?;
    }
    eprintln!(
        "crash test: {acked} acknowledged writes over {KILLS} kills, final directory: {:?}",
        common::segments(dir.path())?
            .iter()
            .map(|s| (s.id, s.compacted, s.len))
            .collect::<Vec<_>>()
    );
    assert!(
        acked >= 100,
        "only {acked} writes were acknowledged in {KILLS} runs: the test checked too little"
    );
    Ok(())
}
