//! Async replication under load with random delays and message drops converges: every
//! replica ends equal to the master, key by key.

mod common;

use std::time::Duration;

use common::*;
use kvstore_replication::{ReplicationMode, Replicator};

#[test]
fn async_replication_converges_despite_random_delays_and_drops() -> TestResult {
    let c = cluster(3, fast())?;
    c.replicas[0]
        .faults()
        .delay_uniform(Duration::from_millis(0), Duration::from_millis(5));
    c.replicas[1].faults().drop_messages(0.02);
    c.replicas[2]
        .faults()
        .delay_uniform(Duration::from_millis(0), Duration::from_millis(3))
        .drop_messages(0.01);
    let mut builder = Replicator::builder()
        .mode(ReplicationMode::Async)
        .ack_timeout(Duration::from_millis(100))
        .backoff(Duration::from_millis(1), Duration::from_millis(20))
        .window_records(64);
    for r in &c.replicas {
        builder = builder.replica(r.transport());
    }
    let repl = builder.attach(&c.master)?;
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = c.master.clone();
            std::thread::spawn(move || -> kvstore_core::Result<()> {
                for i in 0..1500u32 {
                    let key = format!("w{w}:k{:04}", i % 700);
                    if i % 11 == 0 {
                        store.delete(&key)?;
                    } else {
                        store.put(&key, format!("v{i}"))?;
                    }
                }
                Ok(())
            })
        })
        .collect();
    for w in writers {
        w.join().map_err(|_| "writer panicked")??;
    }
    for r in &c.replicas {
        r.faults().heal();
    }
    assert!(
        wait_caught_up(&repl, &c.master, Duration::from_secs(20)),
        "replicas did not catch up: {:?}",
        repl.status()
    );
    let status = repl.status();
    assert!(
        status.replicas[1].retries > 0,
        "drops must have caused resends"
    );
    drop(repl);
    assert_all_same(&c)
}
