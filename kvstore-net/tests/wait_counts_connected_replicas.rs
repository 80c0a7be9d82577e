//! `WAIT numreplicas timeout` counts only connected replicas that acknowledged every write
//! made before it, as Redis does. On a master that had written nothing yet, a replica that
//! never connected (nothing listens at its address) acknowledged nothing, yet WAIT counted it:
//! every replica's acked LSN starts at 0, which "reached" LSN 0.

mod common;

use std::time::{Duration, Instant};

use common::{resp, TestResult, TestServer};

/// Nothing listens here: the master's worker never opens a session with this replica.
const UNREACHABLE_REPLICA: &str = "127.0.0.1:1";

#[test]
fn wait_on_a_fresh_master_does_not_count_a_replica_that_never_connected() -> TestResult {
    let server = TestServer::start_with(|c| c.replicas(vec![UNREACHABLE_REPLICA.into()]))?;
    let mut raw = server.raw()?;
    // Let the worker try (and fail) to reach the replica a few times.
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    raw.send(&resp(&[b"WAIT", b"1", b"300"]))?;
    let reply = raw.read_lines(1)?;
    assert_eq!(
        reply,
        ":0\r\n",
        "WAIT 1 300 answered {reply:?} after {:?}, though the only replica is unreachable \
         and never acknowledged anything",
        started.elapsed()
    );
    Ok(())
}

#[test]
fn wait_on_a_fresh_master_does_not_count_unreachable_replicas() -> TestResult {
    let server = TestServer::start_with(|c| {
        c.replicas(vec![UNREACHABLE_REPLICA.into(), "127.0.0.1:2".into()])
    })?;
    let mut raw = server.raw()?;
    raw.send(&resp(&[b"WAIT", b"2", b"200"]))?;
    let reply = raw.read_lines(1)?;
    assert_eq!(reply, ":0\r\n", "both replicas are unreachable");
    Ok(())
}
