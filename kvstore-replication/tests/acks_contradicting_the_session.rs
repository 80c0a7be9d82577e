//! A replica whose applied LSN stops matching the session (it was replaced under the master's
//! open session by a store that is ahead, or behind, what it acknowledged) is asked again with
//! a new HELLO: an ack beyond what the session sent is never booked (it would acknowledge
//! writes the replica never received and skip them), and an ack below what it acknowledged
//! before never leaves the worker resending into the same gap forever.

mod common;

use std::time::Duration;

use common::*;
use kvstore_core::{Op, WalRecord};
use kvstore_replication::{
    Hello, ReplicaEndpoint, ReplicaState, ReplicationMode, Replicator, Timeline,
};

/// A replica endpoint in `dir` that follows epoch 1 and holds `records`, written by a master
/// with `timeline`.
fn replica_holding(
    dir: &std::path::Path,
    records: &[WalRecord],
    timeline: Timeline,
) -> Result<ReplicaEndpoint, Box<dyn std::error::Error>> {
    let endpoint = ReplicaEndpoint::open(fast().open(dir)?)?;
    let hello = Hello {
        master_id: "elsewhere".into(),
        epoch: 1,
        master_last_lsn: u64::MAX,
        force_resync: false,
        timeline,
    };
    let session = endpoint.hello(&hello)?.session;
    endpoint.apply_many(session, records)?;
    Ok(endpoint)
}

fn alien(lsns: std::ops::RangeInclusive<u64>) -> Vec<WalRecord> {
    lsns.map(|lsn| WalRecord {
        lsn,
        ops: vec![Op::Put {
            key: format!("alien{lsn:03}").into_bytes(),
            value: b"a".to_vec(),
        }],
    })
    .collect()
}

#[test]
fn an_ack_beyond_what_was_sent_acknowledges_nothing() -> TestResult {
    let c = cluster(1, fast())?;
    let repl = Replicator::builder()
        .replica(c.replicas[0].transport())
        .mode(ReplicationMode::Sync {
            quorum: 1,
            timeout: Duration::from_millis(200),
        })
        .probe_interval(Duration::from_secs(5))
        .attach(&c.master)?;
    for i in 0..10u32 {
        c.master.put(format!("k{i:02}"), b"before")?;
    }
    // The replica is swapped, under the open session, for one holding 50 other records.
    let ahead_dir = tempfile::tempdir()?;
    let ahead = replica_holding(ahead_dir.path(), &alien(1..=50), Timeline::default())?;
    let old = c.replicas[0].stop().ok_or("down")?;
    c.replicas[0].start(ahead.clone());
    for i in 0..5u32 {
        let key = format!("after{i}");
        if c.master.put(&key, b"v").is_ok() {
            assert_eq!(
                ahead.store().get(&key)?,
                Some(b"v".to_vec()),
                "write {key} was acknowledged by a quorum of 1 but the only replica lacks it"
            );
        }
    }
    assert!(
        wait_until(Duration::from_secs(5), || repl.status().replicas[0].state
            == ReplicaState::Diverged),
        "{:?}",
        repl.status()
    );
    assert_eq!(
        repl.wait_for(1, 1, Duration::ZERO),
        0,
        "a diverged replica counts for nothing"
    );
    drop(repl);
    assert_eq!(
        ahead.store().len(),
        50,
        "the diverged replica is left untouched"
    );
    drop(old);
    Ok(())
}

#[test]
fn an_ack_below_what_was_acknowledged_reopens_the_session() -> TestResult {
    let c = cluster(1, fast())?;
    let repl = Replicator::builder()
        .replica(c.replicas[0].transport())
        .probe_interval(Duration::from_secs(5))
        .ack_timeout(Duration::from_millis(200))
        .attach(&c.master)?;
    for i in 0..10u32 {
        c.master.put(format!("k{i:02}"), b"before")?;
    }
    assert!(wait_caught_up(&repl, &c.master, Duration::from_secs(5)));
    // The replica is swapped, under the open session, for an older copy holding 3 records
    // (and, as any copy of it, the timeline of the master they came from).
    let first: Vec<WalRecord> = c.master.wal_since(0)?.take(3).collect::<Result<_, _>>()?;
    let behind_dir = tempfile::tempdir()?;
    let behind = replica_holding(behind_dir.path(), &first, Timeline::read(c.master.path())?)?;
    let old = c.replicas[0].stop().ok_or("down")?;
    c.replicas[0].start(behind);
    for i in 0..20u32 {
        c.master.put(format!("after{i:02}"), b"v")?;
    }
    assert!(
        wait_caught_up(&repl, &c.master, Duration::from_secs(5)),
        "{:?}",
        repl.status()
    );
    drop(repl);
    drop(old);
    assert_all_same(&c)
}
