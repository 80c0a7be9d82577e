//! A delay configured on an in-process link while a session is open slows the records of that
//! same session: a fault a test sets takes effect without waiting for a reconnect.

mod common;

use std::time::Duration;

use common::*;
use kvstore_replication::{ReplicationMode, Replicator, Transport};

#[test]
fn a_delay_set_during_a_session_delays_its_records() -> TestResult {
    let c = cluster(1, fast())?;
    let repl = Replicator::builder()
        .replica(c.replicas[0].transport())
        .mode(ReplicationMode::Sync {
            quorum: 1,
            timeout: Duration::from_millis(200),
        })
        .attach(&c.master)?;
    // A session without delay: the replica applies windows as they are sent.
    c.master.put("before", "fast")?;
    c.replicas[0].faults().delay(Duration::from_secs(1));
    match c.master.put("during", "slow") {
        Err(kvstore_core::Error::QuorumNotReached { acked: 0, .. }) => {}
        other => panic!("a 1 s link must miss a 200 ms quorum, got {other:?}"),
    }
    c.replicas[0].faults().heal();
    assert!(
        wait_caught_up(&repl, &c.master, Duration::from_secs(10)),
        "not caught up: {:?}",
        repl.status()
    );
    drop(repl);
    assert_all_same(&c)
}

#[test]
fn acks_of_windows_sent_before_the_delay_come_back_first() -> TestResult {
    let c = cluster(1, fast())?;
    for i in 0..6u32 {
        c.master.put(format!("k{i}"), format!("v{i}"))?;
    }
    let mut iter = c.master.wal_since(0)?;
    let mut records = Vec::new();
    while let Some(record) = iter.next_encoded() {
        records.push(record?);
    }
    let replica = &c.replicas[0];
    let mut transport = replica.transport();
    transport.hello(&hello(1, 6))?;
    transport.send_window(records[..3].to_vec())?;
    replica.faults().delay(Duration::from_millis(20));
    transport.send_window(records[3..].to_vec())?;
    let mut acks = Vec::new();
    while acks.len() < 6 {
        let before = acks.len();
        transport.recv_acks(Duration::from_secs(5), &mut acks)?;
        assert!(acks.len() > before, "acks missing: {acks:?}");
    }
    assert_eq!(
        acks.iter().map(|a| a.lsn).collect::<Vec<_>>(),
        (1..=6).collect::<Vec<_>>()
    );
    assert!(acks[..3].iter().all(|a| a.applied_lsn == 3));
    assert!(acks[3..].iter().all(|a| a.applied_lsn == 6));
    Ok(())
}
