//! One replica reached through two transports (listed under two names). The master refuses
//! the second session (same replica id), but only after the replica accepted its HELLO; when
//! every accepted HELLO ended the replica's previous session, each retry of the refused
//! duplicate cut the legitimate session, for as long as the replicator ran. Now a HELLO of the
//! same master incarnation joins the session, and the refused worker stays quiet while the
//! other name holds the replica: the replica stays connected through its first name, its
//! worker sees no NOSESSION failure, and a quorum of 1 is met by every write.

mod common;

use std::time::{Duration, Instant};

use common::*;
use kvstore_replication::{InProcessReplica, ReplicationMode, Replicator};

#[test]
fn a_refused_duplicate_hello_does_not_end_the_connected_session() -> TestResult {
    let c = cluster(1, fast())?;
    let replica = &c.replicas[0];
    let again = InProcessReplica::new("r0-again", replica.endpoint().ok_or("replica is down")?);
    let repl = Replicator::builder()
        .replica(replica.transport())
        .replica(again.transport())
        .backoff(Duration::from_millis(5), Duration::from_millis(20))
        .probe_interval(Duration::from_millis(50))
        .mode(ReplicationMode::Sync {
            quorum: 1,
            timeout: Duration::from_millis(500),
        })
        .attach(&c.master)?;
    // Let both workers say HELLO once (one is refused as the duplicate).
    assert!(wait_until(Duration::from_secs(5), || {
        repl.status().replicas.iter().any(|r| {
            r.last_error
                .as_deref()
                .is_some_and(|e| e.contains("same replica id"))
        })
    }));
    let failed_before: Vec<u64> = repl
        .status()
        .replicas
        .iter()
        .map(|r| r.sends_failed)
        .collect();
    let mut quorum_misses = 0;
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut i = 0u32;
    while Instant::now() < deadline {
        if c.master.put(format!("k{i}"), "v").is_err() {
            quorum_misses += 1;
        }
        i += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    let status = repl.status();
    let no_session: Vec<_> = status
        .replicas
        .iter()
        .filter(|r| {
            r.last_error
                .as_deref()
                .is_some_and(|e| e.to_ascii_uppercase().contains("NOSESSION"))
        })
        .map(|r| r.name.clone())
        .collect();
    // Failures of the worker that is not the refused duplicate.
    let victim_failures: Vec<(String, u64)> = status
        .replicas
        .iter()
        .zip(&failed_before)
        .map(|(r, before)| (r.name.clone(), r.sends_failed - before))
        .collect();
    let both_failed = victim_failures.iter().all(|(_, n)| *n > 0);
    assert!(
        no_session.is_empty() && !both_failed && quorum_misses == 0,
        "the duplicate's HELLOs keep ending the connected session: replicas whose last error \
         is NOSESSION: {no_session:?}; failures per worker during {i} writes: \
         {victim_failures:?}; writes that missed a quorum of 1: {quorum_misses}; status: {:?}",
        status.replicas
    );
    Ok(())
}
