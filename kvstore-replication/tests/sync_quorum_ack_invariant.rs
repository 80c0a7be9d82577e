//! Sync k-of-n: at the moment a write is acknowledged to its caller, at least k replicas
//! already hold it.

mod common;

use std::time::Duration;

use common::*;
use kvstore_replication::{ReplicationMode, Replicator};

#[test]
fn an_acknowledged_sync_write_is_on_at_least_quorum_replicas() -> TestResult {
    let c = cluster(3, fast())?;
    c.replicas[0]
        .faults()
        .delay_uniform(Duration::ZERO, Duration::from_millis(3));
    c.replicas[1]
        .faults()
        .delay_uniform(Duration::ZERO, Duration::from_millis(3));
    c.replicas[2].faults().partition(); // one replica never answers
    let quorum = 2;
    let repl = Replicator::builder()
        .replica(c.replicas[0].transport())
        .replica(c.replicas[1].transport())
        .replica(c.replicas[2].transport())
        .mode(ReplicationMode::Sync {
            quorum,
            timeout: Duration::from_secs(5),
        })
        .attach(&c.master)?;
    let stores: Vec<_> = c.replicas.iter().filter_map(|r| r.store()).collect();
    for i in 0..300u32 {
        let key = format!("k{i:04}");
        let value = format!("v{i}");
        c.master.put(&key, &value)?;
        let holding = stores
            .iter()
            .filter(|s| s.get(&key).ok().flatten().as_deref() == Some(value.as_bytes()))
            .count();
        assert!(
            holding >= quorum,
            "write {i} acknowledged with {holding} copies"
        );
    }
    c.replicas[2].faults().heal();
    assert!(wait_caught_up(&repl, &c.master, Duration::from_secs(20)));
    drop(repl);
    assert_all_same(&c)
}
