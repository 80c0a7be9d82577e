//! A replica reached through two transports (listed twice, under two names) counts once: its
//! HELLO replies carry the same replica id, and the second session is refused while the first
//! is connected. With a quorum of 2 and one replica, a sync write is not acknowledged.

mod common;

use std::time::Duration;

use common::*;
use kvstore_replication::{InProcessReplica, ReplicationMode, Replicator};

#[test]
fn a_quorum_of_two_is_not_met_by_one_replica_reached_twice() -> TestResult {
    let c = cluster(1, fast())?;
    let replica = &c.replicas[0];
    // The same endpoint under a second name.
    let again = InProcessReplica::new("r0-again", replica.endpoint().ok_or("replica is down")?);
    let repl = Replicator::builder()
        .replica(replica.transport())
        .replica(again.transport())
        .mode(ReplicationMode::Sync {
            quorum: 2,
            timeout: Duration::from_millis(300),
        })
        .attach(&c.master)?;
    for i in 0..3 {
        let outcome = c.master.put(format!("k{i}"), "v");
        assert!(
            matches!(
                outcome,
                Err(kvstore_core::Error::QuorumNotReached {
                    acked: 1,
                    required: 2,
                    ..
                })
            ),
            "write {i} with one replica reached twice: {outcome:?}; {:?}",
            repl.status().replicas
        );
    }
    // The one real replica still gets everything.
    assert_eq!(
        repl.wait_for(c.master.last_lsn(), 1, Duration::from_secs(5)),
        1
    );
    let refused = repl
        .status()
        .replicas
        .iter()
        .filter_map(|r| r.last_error.clone())
        .any(|e| e.contains("same replica id"));
    assert!(
        refused,
        "no replica says why it was refused: {:?}",
        repl.status()
    );
    Ok(())
}
