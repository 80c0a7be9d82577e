//! Synchronous replication with a quorum of 2 out of 2: an acknowledged write is already on
//! both replicas; with one replica killed a write times out with a clear error yet stays
//! durable on the master; once the replica is back everything converges.

mod common;

use std::time::Duration;

use common::{converged_digest, eventually, Cluster, TestResult};
use kvstore_net::Frame;

#[test]
fn sync_quorum_two_of_two() -> TestResult {
    let sync = [
        "--replication-mode",
        "sync",
        "--write-quorum",
        "2",
        "--sync-timeout-ms",
        "300",
        "--fsync",
        "everysec",
    ];
    let mut cluster = Cluster::start(2, &sync, &["--fsync", "everysec"])?;
    let mut master = cluster.master.client()?;
    // Wait for both sessions so the first writes do not pay for connection set-up.
    assert!(eventually(Duration::from_secs(10), || master
        .integer(&["WAIT", "2", "100"])
        .is_ok_and(|n| n == 2)));
    let mut replicas: Vec<_> = cluster
        .replicas
        .iter()
        .map(|r| r.client())
        .collect::<Result<_, _>>()?;
    for i in 0..50 {
        let key = format!("sync{i}");
        master.set(key.as_bytes(), b"v")?;
        // Acknowledged means applied on both replicas already.
        for replica in replicas.iter_mut() {
            assert_eq!(replica.get(key.as_bytes())?, Some(b"v".to_vec()));
        }
    }

    cluster.replicas[1].kill();
    match master.command(&["SET", "during-outage", "kept"])? {
        Frame::Error(e) => assert!(
            e.contains("durable on the master but only 1 of 2"),
            "unexpected error: {e}"
        ),
        other => panic!("write acknowledged without its quorum: {other}"),
    }
    assert_eq!(master.get(b"during-outage")?, Some(b"kept".to_vec()));

    cluster.replicas[1].restart()?;
    assert!(
        eventually(Duration::from_secs(15), || master
            .set(b"after", b"back")
            .is_ok()),
        "writes never regained their quorum"
    );
    converged_digest(&cluster.addrs(), Duration::from_secs(15))?;
    let mut back = cluster.replicas[1].client()?;
    assert_eq!(back.get(b"during-outage")?, Some(b"kept".to_vec()));
    Ok(())
}
