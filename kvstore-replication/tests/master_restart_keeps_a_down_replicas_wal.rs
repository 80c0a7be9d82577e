//! The WAL a replica still needs is kept across a restart of its master, like a PostgreSQL
//! replication slot: a replica that is down while the master restarts and compacts catches
//! up from the log afterwards, without a full resync. A replica dropped from the
//! configuration has its retention released.

mod common;

use std::time::Duration;

use common::*;
use kvstore_core::{KvStore, Options};
use kvstore_replication::{InProcessTransport, Replicator};

fn master_opts() -> Options {
    fast()
        .segment_bytes(16 << 10)
        .max_retained_wal_bytes(8 << 20)
        .auto_compaction(false)
}

fn replicator(
    transport: InProcessTransport,
    master: &KvStore,
) -> kvstore_replication::Result<Replicator> {
    Replicator::builder()
        .replica(transport)
        .probe_interval(Duration::from_millis(20))
        .backoff(Duration::from_millis(1), Duration::from_millis(10))
        .shutdown_timeout(Duration::from_millis(200))
        .attach(master)
}

/// Overwrites every key a few times and compacts: the log before now is all dead.
fn overwrite_and_compact(master: &KvStore, rounds: u32) -> TestResult {
    for round in 0..rounds {
        for i in 0..300u32 {
            master.put(format!("k{i:03}"), format!("round {round} value {i:>40}"))?;
        }
        master.compact()?;
    }
    Ok(())
}

/// Opens the master's store again, retrying while a dropped replicator's workers let go.
fn reopen_master(dir: &std::path::Path) -> Result<KvStore, Box<dyn std::error::Error>> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match master_opts().open(dir) {
            Err(kvstore_core::Error::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            other => return Ok(other?),
        }
    }
}

#[test]
fn a_replica_down_across_a_master_restart_catches_up_from_the_log() -> TestResult {
    let Cluster {
        master_dir,
        master,
        replica_dirs: _replica_dirs,
        replicas,
    } = cluster(1, master_opts())?;
    let replica = &replicas[0];
    let repl = replicator(replica.transport(), &master)?;
    overwrite_and_compact(&master, 1)?;
    assert!(wait_caught_up(&repl, &master, Duration::from_secs(10)));
    let acked = repl.status().replicas[0].acked_lsn;

    // The replica goes down; the master writes on, then restarts.
    replica.faults().partition();
    overwrite_and_compact(&master, 2)?;
    drop(repl);
    drop(master);
    let master = reopen_master(master_dir.path())?;
    let kept = master.wal_consumers();
    assert_eq!(
        kept.len(),
        1,
        "the replica's retention was not kept: {kept:?}"
    );
    assert!(
        kept[0].1 <= acked,
        "kept from {} but the replica acked {acked}",
        kept[0].1
    );

    // Before the replica is back, the restarted master writes and compacts a lot.
    overwrite_and_compact(&master, 4)?;
    let repl = replicator(replica.transport(), &master)?;
    overwrite_and_compact(&master, 1)?;
    replica.faults().heal();
    assert!(
        wait_caught_up(&repl, &master, Duration::from_secs(20)),
        "not caught up: {:?}",
        repl.status()
    );
    assert_eq!(
        repl.status().replicas[0].resyncs,
        0,
        "the replica needed a full resync: its log was compacted away during the restart"
    );
    let endpoint = replica.endpoint().ok_or("replica down")?;
    assert_eq!(endpoint.stats().snapshots_installed, 0);
    drop(repl);
    assert_same(
        &master,
        &replica.store().ok_or("replica down")?,
        replica.name(),
    )
}

#[test]
fn a_replica_left_out_of_the_configuration_is_released() -> TestResult {
    let c = cluster(2, master_opts())?;
    let repl = Replicator::builder()
        .replica(c.replicas[0].transport())
        .replica(c.replicas[1].transport())
        .shutdown_timeout(Duration::from_millis(200))
        .attach(&c.master)?;
    c.master.put(b"k", b"v")?;
    assert!(wait_caught_up(&repl, &c.master, Duration::from_secs(10)));
    drop(repl);
    assert_eq!(
        c.master.wal_consumers().len(),
        2,
        "both kept after the drop"
    );

    // Attached again with one replica only: the other one's retention goes.
    let repl = replicator(c.replicas[0].transport(), &c.master)?;
    let kept: Vec<String> = c
        .master
        .wal_consumers()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].ends_with(c.replicas[0].name()), "{kept:?}");

    // A node that stops being a master releases the rest.
    drop(repl);
    kvstore_replication::release_replica_retention(&c.master);
    assert!(c.master.wal_consumers().is_empty());
    Ok(())
}
