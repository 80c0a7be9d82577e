//! A transaction's batch holds each key it wrote once, in its final state. It used to hold
//! every intermediate value: `APPEND k x` queued N times on a value of S bytes made a batch
//! (a log record, a replication record) of about N × S bytes, so ~40 KB of requests made the
//! server write and fsync 100 MB under the exclusive write gate.

mod common;

use std::path::Path;
use std::time::Instant;

use common::{TestResult, TestServer};
use kvstore_core::SyncPolicy;
use kvstore_net::Frame;

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            total += dir_bytes(&path);
        } else if let Ok(meta) = entry.metadata() {
            total += meta.len();
        }
    }
    total
}

#[test]
fn appends_in_one_transaction_write_the_final_value_once() -> TestResult {
    const VALUE: usize = 256 << 10;
    const APPENDS: usize = 400;
    let server = TestServer::start_with(|c| c.sync_policy(SyncPolicy::Never))?;
    let mut c = server.client()?;
    c.set(b"k", &vec![b'v'; VALUE])?;
    let before = dir_bytes(server.dir.path());
    c.expect_ok(&["MULTI"])?;
    for _ in 0..APPENDS {
        c.queue(&["APPEND", "k", "x"]);
    }
    c.flush()?;
    for _ in 0..APPENDS {
        assert_eq!(c.read_reply()?, Frame::Simple("QUEUED".into()));
    }
    let started = Instant::now();
    let reply = c.command(&["EXEC"])?;
    let took = started.elapsed();
    assert!(matches!(reply, Frame::Array(_)), "EXEC answered {reply:?}");
    assert_eq!(c.integer(&["STRLEN", "k"])?, (VALUE + APPENDS) as i64);
    let grown = dir_bytes(server.dir.path()) - before;
    assert!(
        grown < 8 * VALUE as u64,
        "one EXEC of {APPENDS} 1-byte APPENDs on a {VALUE}-byte value wrote {grown} bytes \
         to the log (took {took:?})"
    );
    Ok(())
}
