//! Sync timeout: the caller gets QuorumNotReached, the write stays durable on the master and
//! still reaches the replicas later; the mode is not silently downgraded.

mod common;

use std::time::Duration;

use common::*;
use kvstore_replication::{ReplicationMode, Replicator};

#[test]
fn quorum_timeout_reports_and_the_write_still_arrives_later() -> TestResult {
    let c = cluster(2, fast())?;
    let repl = Replicator::builder()
        .replica(c.replicas[0].transport())
        .replica(c.replicas[1].transport())
        .mode(ReplicationMode::Sync {
            quorum: 2,
            timeout: Duration::from_millis(100),
        })
        .probe_interval(Duration::from_millis(20))
        .backoff(Duration::from_millis(1), Duration::from_millis(10))
        .attach(&c.master)?;
    c.master.put(b"before", b"1")?;
    c.replicas[1].faults().partition();
    match c.master.put(b"during", b"2") {
        Err(kvstore_core::Error::QuorumNotReached {
            acked,
            required,
            lsn,
        }) => {
            assert_eq!((acked, required), (1, 2));
            assert_eq!(lsn, c.master.last_lsn());
        }
        other => panic!("expected QuorumNotReached, got {other:?}"),
    }
    assert_eq!(
        c.master.get(b"during")?,
        Some(b"2".to_vec()),
        "durable on the master"
    );
    // Still sync: a second write also times out instead of silently going async.
    assert!(matches!(
        c.master.put(b"during2", b"3"),
        Err(kvstore_core::Error::QuorumNotReached { .. })
    ));
    c.replicas[1].faults().heal();
    let lsn = c.master.last_lsn();
    assert_eq!(repl.wait_for(lsn, 2, Duration::from_secs(10)), 2);
    c.master.put(b"after", b"4")?;
    drop(repl);
    assert_all_same(&c)
}
