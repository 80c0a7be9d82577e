//! `examples/replicated.rs` (the README's run command) shows in step 3 that the restarted
//! replica caught up (equal `DIGEST`s), and fails when it did not: it used to print the three
//! DIGESTs and exit 0 whatever they were.
//!
//! The test runs the example binary (built by `cargo test` with the workspace's examples)
//! with `TMPDIR` pointing at a directory of its own (the example keeps its nodes under
//! `tempfile::tempdir()`), waits for step 2 ("replica b stops"), and while replica b is down
//! deletes one key from replica b's store directly. Replication cannot repair that (the
//! replica's log moved one LSN on), so the DIGESTs differ, and the example must exit non-zero.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn example_binary() -> TestResult<PathBuf> {
    // target/<profile>/deps/<this test> -> target/<profile>/examples/replicated
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("no target directory")?;
    let bin = profile_dir.join("examples").join("replicated");
    if !bin.exists() {
        return Err(format!(
            "{} is missing: run `cargo build -p kvstore --example replicated` first",
            bin.display()
        )
        .into());
    }
    Ok(bin)
}

fn find_replica_b(tmp: &Path) -> Option<PathBuf> {
    for entry in std::fs::read_dir(tmp).ok()?.flatten() {
        let candidate = entry.path().join("replica-b");
        if candidate.is_dir() {
            return Some(candidate);
        }
    }
    None
}

#[test]
fn example_fails_when_the_digests_it_prints_differ() -> TestResult {
    let bin = example_binary()?;
    let tmp = tempfile::tempdir()?;
    let child = Command::new(&bin)
        .env("TMPDIR", tmp.path())
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut guard = Guard(child);
    let stdout = guard.0.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let deadline = Instant::now() + Duration::from_secs(90);
    let mut lines = Vec::new();
    let mut tampered = false;
    loop {
        let now = Instant::now();
        if now > deadline {
            return Err(format!("the example did not finish in time: {lines:#?}").into());
        }
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                let step2 = line.starts_with("== 2.");
                lines.push(line);
                if step2 && !tampered {
                    // Replica b is being shut down: once its directory is free, delete a key
                    // the master still has.
                    let dir = find_replica_b(tmp.path()).ok_or("no replica-b directory")?;
                    let until = Instant::now() + Duration::from_secs(5);
                    loop {
                        match kvstore::KvStore::open(&dir) {
                            Ok(store) => {
                                store.delete(b"first:00000")?;
                                drop(store);
                                tampered = true;
                                break;
                            }
                            Err(_) if Instant::now() < until => {
                                std::thread::sleep(Duration::from_millis(2))
                            }
                            Err(e) => return Err(format!("cannot open replica b: {e}").into()),
                        }
                    }
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = guard.0.wait()?;
    assert!(tampered, "never saw step 2: {lines:#?}");
    let digests: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.split("DIGEST ").nth(1))
        .map(str::trim)
        .collect();
    assert_eq!(digests.len(), 3, "three DIGEST lines: {lines:#?}");
    let differ = digests.iter().any(|d| *d != digests[0]);
    assert!(
        differ,
        "the tampering did not show (test setup): {lines:#?}"
    );
    assert!(
        !status.success(),
        "the example printed DIGESTs that differ ({digests:?}) yet exited successfully: it \
         never compares them\n{}",
        lines.join("\n")
    );
    Ok(())
}
