//! min_replicas_to_write refuses writes up front, logging nothing, while too few replicas
//! are healthy; writes are accepted again once they recover.

mod common;

use std::time::Duration;

use common::*;
use kvstore_replication::Replicator;

#[test]
fn writes_are_refused_while_fewer_than_the_minimum_are_healthy() -> TestResult {
    let c = cluster(2, fast())?;
    let repl = Replicator::builder()
        .replica(c.replicas[0].transport())
        .replica(c.replicas[1].transport())
        .min_replicas_to_write(2)
        .failure_threshold(2)
        .probe_interval(Duration::from_millis(20))
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        .attach(&c.master)?;
    assert!(repl.wait_healthy(2, Duration::from_secs(5)));
    c.master.put(b"a", b"1")?;
    c.replicas[1].faults().partition();
    // The worker notices on its next call (heartbeat or send).
    assert!(wait_until(Duration::from_secs(5), || {
        let _ = c.master.put(b"probe", b"p");
        !repl.status().replicas[1].state.is_healthy()
    }));
    let before = c.master.last_lsn();
    match c.master.put(b"b", b"2") {
        Err(kvstore_core::Error::NotEnoughReplicas { healthy, required }) => {
            assert_eq!((healthy, required), (1, 2));
        }
        other => panic!("expected NotEnoughReplicas, got {other:?}"),
    }
    assert_eq!(c.master.last_lsn(), before, "a refused write logs nothing");
    assert_eq!(c.master.get(b"b")?, None);
    c.replicas[1].faults().heal();
    assert!(repl.wait_healthy(2, Duration::from_secs(5)));
    c.master.put(b"b", b"2")?;
    assert!(wait_caught_up(&repl, &c.master, Duration::from_secs(10)));
    drop(repl);
    assert_all_same(&c)
}
