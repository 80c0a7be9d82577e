//! Two processes opening one data directory: the second gets `Error::Locked` (naming the
//! lock file), whichever side holds it, and the lock goes away with the holder, even when
//! it is killed.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use common::{ChildGuard, TestResult};
use kvstore_core::{Error, KvStore};

fn helper(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kvstore-crash-writer"));
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    cmd
}

#[test]
fn a_second_process_gets_locked_until_the_holder_dies() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().to_str().ok_or("non-UTF-8 temp path")?;

    // Another process holds the store: opening here is refused.
    let mut holder = ChildGuard(helper(&["hold", path]).spawn()?);
    let stdout = holder.0.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    assert_eq!(line.trim(), "HOLDING");
    match KvStore::open(dir.path()) {
        Err(e @ Error::Locked { .. }) => {
            assert!(e.to_string().contains("LOCK"), "{e}");
        }
        Ok(_) => return Err("a second open succeeded while another process held the store".into()),
        Err(e) => return Err(format!("expected Locked, got {e}").into()),
    }
    // Killed, not closed: the lock must still go away.
    holder.kill()?;
    let store = KvStore::open(dir.path())?;
    assert!(store.get("held-by")?.is_some());

    // This process holds it: the other process is refused.
    let out = helper(&["try-open", path]).stdin(Stdio::null()).output()?;
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.starts_with("LOCKED"),
        "the other process said {said:?}"
    );
    drop(store);
    let out = helper(&["try-open", path]).stdin(Stdio::null()).output()?;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OPENED");

    // A holder that exits cleanly (stdin closed) releases the lock too.
    let mut holder = ChildGuard(helper(&["hold", path]).spawn()?);
    let mut line = String::new();
    BufReader::new(holder.0.stdout.take().ok_or("no stdout")?).read_line(&mut line)?;
    assert_eq!(line.trim(), "HOLDING");
    if let Some(mut stdin) = holder.0.stdin.take() {
        stdin.write_all(b"bye\n")?;
    }
    let status = holder.0.wait()?;
    assert!(status.success(), "holder exited with {status}");
    KvStore::open(dir.path())?;
    Ok(())
}
