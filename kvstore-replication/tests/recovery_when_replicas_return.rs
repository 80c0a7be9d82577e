//! Replicas that fail become unhealthy (and are probed, not hammered), then recover and
//! catch up when they return; status reports the whole story.

mod common;

use std::time::Duration;

use common::*;
use kvstore_replication::{ReplicaState, Replicator};

#[test]
fn unhealthy_replicas_recover_and_catch_up_when_they_return() -> TestResult {
    let c = cluster(2, fast())?;
    let repl = Replicator::builder()
        .replica(c.replicas[0].transport())
        .replica(c.replicas[1].transport())
        .failure_threshold(3)
        .probe_interval(Duration::from_millis(30))
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        .attach(&c.master)?;
    for r in &c.replicas {
        r.faults().partition();
    }
    for i in 0..500u32 {
        c.master.put(format!("k{i:04}"), b"v")?;
    }
    assert!(wait_until(Duration::from_secs(5), || repl
        .status()
        .replicas
        .iter()
        .all(|r| r.state == ReplicaState::Unhealthy)));
    let down = repl.status();
    for r in &down.replicas {
        assert!(r.consecutive_failures >= 3);
        assert!(r.last_failure.is_some());
        assert!(r.lag.records > 0);
        assert!(r.last_error.is_some());
    }
    // Fail a few more probes after the partition heals: backoff, then recovery.
    c.replicas[0].faults().heal().fail_next(2);
    c.replicas[1].faults().heal();
    assert!(
        wait_caught_up(&repl, &c.master, Duration::from_secs(10)),
        "not caught up: {:?}",
        repl.status()
    );
    let up = repl.status();
    for r in &up.replicas {
        assert_eq!(r.state, ReplicaState::Streaming);
        assert_eq!(r.consecutive_failures, 0);
        assert!(r.last_success > r.last_failure);
        assert_eq!(r.lag.records, 0);
    }
    drop(repl);
    assert_all_same(&c)
}
