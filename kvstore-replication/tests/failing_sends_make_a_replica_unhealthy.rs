//! A replica that accepts every HELLO and then fails every send (here its store takes smaller
//! values than the master's, so it refuses the same record each time) must become unhealthy:
//! a successful HELLO used to clear its failures, so it stayed "catching up" with at most one
//! consecutive failure, counted towards `min_replicas_to_write`, and was retried at the base
//! backoff (432 failed sends in 1.5 s). Found in review. Failures now clear only when the
//! replica makes progress.

mod common;

use std::time::{Duration, Instant};

use common::{cluster, fast, TestResult};
use kvstore_replication::{InProcessReplica, ReplicaState, Replicator};

#[test]
fn a_replica_failing_every_send_becomes_unhealthy_and_backs_off() -> TestResult {
    let c = cluster(0, fast())?;
    let dir = tempfile::tempdir()?;
    let replica = InProcessReplica::open("small", dir.path(), fast().max_value_bytes(1000))?;
    let repl = Replicator::builder()
        .replica(replica.transport())
        .failure_threshold(3)
        .min_replicas_to_write(1)
        .probe_interval(Duration::from_millis(20))
        .backoff(Duration::from_millis(1), Duration::from_millis(50))
        .attach(&c.master)?;
    assert!(repl.wait_healthy(1, Duration::from_secs(5)));
    c.master.put(b"small", b"ok")?;
    c.master.put(b"big", vec![7u8; 2000])?;
    let unhealthy = eventually(Duration::from_secs(10), || {
        repl.status().replicas[0].state == ReplicaState::Unhealthy
    });
    let status = repl.status();
    let r = &status.replicas[0];
    assert!(unhealthy, "failing every send, yet {:?}: {r:?}", r.state);
    assert!(r.consecutive_failures >= 3, "{r:?}");
    assert!(r.acked_lsn < status.master_last_lsn, "{r:?}");
    assert!(
        matches!(
            c.master.put(b"more", b"x"),
            Err(kvstore_core::Error::NotEnoughReplicas { .. })
        ),
        "min_replicas_to_write no longer counts it"
    );
    // Backing off: the failures grow the delay towards its 50 ms cap, not 1 ms each.
    let before = repl.status().replicas[0].sends_failed;
    std::thread::sleep(Duration::from_millis(500));
    let during = repl.status().replicas[0].sends_failed - before;
    assert!(during <= 40, "{during} failed sends in 500 ms");
    Ok(())
}

fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    check()
}
