//! A master that restarts without the tail of its log (fsync once a second and a power cut, or
//! an operator restoring an older copy) and then writes past the LSN a replica had reached must
//! not be followed by that replica: the replica's records beyond the lost point differ from the
//! master's new ones under the same LSNs. Comparing LSNs alone accepted it and left the replica
//! silently different from the master; the timelines in HELLO refuse it (diverged) until an
//! operator forces a resync, after which the replica equals the master.

mod common;

use std::time::Duration;

use common::*;
use kvstore_core::{Op, WalRecord};
use kvstore_replication::{
    Error, Hello, ReplicaEndpoint, ReplicaState, Replicator, SnapshotChunk, SnapshotPiece, Timeline,
};

fn timeline(entries: &[(u64, u64, u64)]) -> Timeline {
    let mut t = Timeline::default();
    for &(epoch, incarnation, start) in entries {
        t.begin(epoch, incarnation, start);
    }
    t
}

fn hello_with(timeline: &Timeline, master_last_lsn: u64, force_resync: bool) -> Hello {
    Hello {
        master_id: "m".into(),
        epoch: 1,
        master_last_lsn,
        force_resync,
        timeline: timeline.clone(),
    }
}

fn put(lsn: u64) -> WalRecord {
    WalRecord {
        lsn,
        ops: vec![Op::Put {
            key: format!("k{lsn:02}").into_bytes(),
            value: b"old".to_vec(),
        }],
    }
}

#[test]
fn the_endpoint_refuses_a_timeline_that_parts_before_its_applied_lsn() -> TestResult {
    let dir = tempfile::tempdir()?;
    let first = timeline(&[(1, 10, 1)]);
    {
        let endpoint = ReplicaEndpoint::open(fast().open(dir.path())?)?;
        let session = endpoint.hello(&hello_with(&first, 0, false))?.session;
        let records: Vec<WalRecord> = (1..=10).map(put).collect();
        endpoint.apply_many(session, &records)?;
        assert_eq!(endpoint.timeline(), first);
    }
    let endpoint = reopen(dir.path())?;
    assert_eq!(
        endpoint.timeline(),
        first,
        "the timeline survives a restart"
    );

    // Restarted at 8 (lost 8..=10), then wrote up to 20: diverged at 8, so agreed up to 7.
    let lost_tail = timeline(&[(1, 10, 1), (1, 11, 8)]);
    match endpoint.hello(&hello_with(&lost_tail, 20, false)) {
        Err(Error::Diverged {
            replica_lsn: 10,
            master_lsn: 7,
        }) => {}
        other => panic!("expected a divergence at 7, got {other:?}"),
    }
    assert_eq!(endpoint.timeline(), first, "a refusal changes nothing");
    assert_eq!(endpoint.applied_lsn(), 10);

    // Restarted at 11 with everything kept: the replica follows, and takes the new timeline.
    let kept = timeline(&[(1, 10, 1), (1, 12, 11)]);
    assert_eq!(
        endpoint
            .hello(&hello_with(&kept, 20, false))?
            .reply
            .applied_lsn,
        10
    );
    assert_eq!(endpoint.timeline(), kept);

    // A forced session adopts the master's timeline only once its snapshot is installed: a
    // replica restarted before that still holds its own records and must still refuse.
    endpoint.hello(&hello_with(&lost_tail, 20, true))?;
    assert_eq!(endpoint.timeline(), kept);
    drop(endpoint);
    let endpoint = reopen(dir.path())?;
    assert!(matches!(
        endpoint.hello(&hello_with(&lost_tail, 20, false)),
        Err(Error::Diverged { .. })
    ));
    let forced = endpoint.hello(&hello_with(&lost_tail, 20, true))?.session;
    let ack = endpoint.install_chunk(
        forced,
        &SnapshotChunk {
            snapshot_lsn: 20,
            seq: 0,
            pieces: vec![SnapshotPiece {
                key: b"new".to_vec(),
                value_offset: 0,
                value_len: 1,
                data: b"n".to_vec(),
            }],
            last: true,
        },
    )?;
    assert!(ack.finished);
    assert_eq!(endpoint.timeline(), lost_tail);
    assert_eq!(
        endpoint
            .hello(&hello_with(&lost_tail, 20, false))?
            .reply
            .applied_lsn,
        20
    );
    Ok(())
}

#[test]
fn a_replica_refuses_a_master_restored_without_its_tail_until_forced() -> TestResult {
    let c = cluster(1, fast())?;
    let master_dir = tempfile::tempdir()?;
    let earlier = tempfile::tempdir()?;
    replicate_keys(&open_unlocked(master_dir.path())?, &c, 0..50, b"first")?;
    // What the master's disk will hold after the loss: its log up to LSN 50.
    copy_dir(master_dir.path(), earlier.path())?;
    replicate_keys(&open_unlocked(master_dir.path())?, &c, 50..80, b"lost")?;
    let replica = c.replicas[0].stop().ok_or("replica is down")?;
    assert_eq!(replica.applied_lsn(), 80);

    // The master comes back with LSNs 1..=50 only and writes 50 new records (51..=100) before
    // the replica is back: by LSNs alone the replica (at 80) looks merely behind.
    let restored = open_unlocked(earlier.path())?;
    let repl = Replicator::builder()
        .replica(c.replicas[0].transport())
        .probe_interval(Duration::from_millis(20))
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        .attach(&restored)?;
    for i in 0..50u32 {
        restored.put(format!("n{i:03}"), b"second")?;
    }
    assert_eq!(restored.last_lsn(), 100);
    c.replicas[0].start(replica);
    assert_refused(&repl);
    let replica = c.replicas[0].store().ok_or("replica is down")?;
    assert_eq!(
        replica.applied_lsn(),
        80,
        "a diverged replica is left untouched"
    );
    assert_eq!(replica.get(b"k079")?, Some(b"lost".to_vec()));

    assert!(repl.force_resync(c.replicas[0].name()));
    assert!(wait_caught_up(&repl, &restored, Duration::from_secs(10)));
    let replica = c.replicas[0].store().ok_or("replica is down")?;
    assert_same(&restored, &replica, "r0")?;
    Ok(())
}

#[test]
fn writes_made_before_the_replicator_is_attached_count_as_the_new_incarnation() -> TestResult {
    let c = cluster(1, fast())?;
    let master_dir = tempfile::tempdir()?;
    let earlier = tempfile::tempdir()?;
    {
        let master = open_unlocked(master_dir.path())?;
        replicate_keys(&master, &c, 0..50, b"first")?;
        // Detached and attached again in one process, with writes in between: the same
        // lineage, so the replica follows on.
        master.put(b"between", b"v")?;
        let repl = replicate_keys(&master, &c, 0..0, b"")?;
        assert_eq!(repl.status().replicas[0].state, ReplicaState::Streaming);
    }
    copy_dir(master_dir.path(), earlier.path())?;
    replicate_keys(&open_unlocked(master_dir.path())?, &c, 50..80, b"lost")?;
    // The restored copy writes past the replica before any replicator is attached: a
    // timeline begun at the next LSN would call those writes the old incarnation's.
    let restored = open_unlocked(earlier.path())?;
    for i in 0..50u32 {
        restored.put(format!("n{i:03}"), b"second")?;
    }
    let repl = Replicator::builder()
        .replica(c.replicas[0].transport())
        .attach(&restored)?;
    assert_refused(&repl);
    let replica = c.replicas[0].store().ok_or("replica is down")?;
    assert_eq!(replica.get(b"k079")?, Some(b"lost".to_vec()));
    Ok(())
}

#[test]
fn a_replica_with_records_but_no_timeline_is_refused_past_the_masters_first_entry() -> TestResult {
    let dir = tempfile::tempdir()?;
    let endpoint = ReplicaEndpoint::open(fast().open(dir.path())?)?;
    // Filled by a master that sent no timeline (a plain socket, say).
    let session = endpoint
        .hello(&hello_with(&Timeline::default(), 0, false))?
        .session;
    endpoint.apply_many(session, &(1..=10).map(put).collect::<Vec<_>>())?;
    assert!(endpoint.timeline().is_empty());
    match endpoint.hello(&hello_with(&timeline(&[(1, 10, 6)]), 20, false)) {
        Err(Error::Diverged {
            replica_lsn: 10,
            master_lsn: 5,
        }) => {}
        other => panic!("expected a divergence at 5, got {other:?}"),
    }
    // A master whose timeline begins after the replica's records: nothing to compare them with.
    endpoint.hello(&hello_with(&timeline(&[(1, 10, 11)]), 20, false))?;
    Ok(())
}

#[test]
fn a_closed_endpoint_takes_nothing_until_reopened() -> TestResult {
    let dir = tempfile::tempdir()?;
    let endpoint = ReplicaEndpoint::open(fast().open(dir.path())?)?;
    let first = timeline(&[(1, 10, 1)]);
    let session = endpoint.hello(&hello_with(&first, 0, false))?.session;
    endpoint.set_open(false);
    assert!(matches!(
        endpoint.apply(session, &put(1)),
        Err(Error::Protocol(_))
    ));
    assert!(matches!(
        endpoint.hello(&hello_with(&timeline(&[(1, 11, 1)]), 0, false)),
        Err(Error::Protocol(_))
    ));
    assert_eq!(endpoint.timeline(), first, "a refused HELLO stores nothing");
    assert_eq!(endpoint.applied_lsn(), 0);
    endpoint.set_open(true);
    assert_eq!(endpoint.apply(session, &put(1))?.applied_lsn, 1);
    Ok(())
}

/// Attaches a replicator to the cluster's replica, writes `k{i:03}` = `value` for `keys`, and
/// returns once the replica has everything.
fn replicate_keys(
    master: &kvstore_core::KvStore,
    c: &Cluster,
    keys: std::ops::Range<u32>,
    value: &[u8],
) -> Result<Replicator, Box<dyn std::error::Error>> {
    let repl = Replicator::builder()
        .replica(c.replicas[0].transport())
        .attach(master)?;
    for i in keys {
        master.put(format!("k{i:03}"), value)?;
    }
    assert!(wait_caught_up(&repl, master, Duration::from_secs(10)));
    Ok(repl)
}

/// Waits until the master reports its only replica diverged.
fn assert_refused(repl: &Replicator) {
    assert!(
        wait_until(Duration::from_secs(5), || repl.status().replicas[0].state
            == ReplicaState::Diverged),
        "the replica was not refused: {:?}",
        repl.status().replicas[0]
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}
