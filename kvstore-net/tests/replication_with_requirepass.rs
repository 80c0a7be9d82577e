//! Replication between nodes that both require a password (`--requirepass`): the master's
//! links authenticate first, sync-mode writes reach their quorum, and a replica restarted
//! under load catches up and ends with the master's DIGEST. No other test runs replication
//! with a password set.

mod common;

use std::time::Duration;

use common::{eventually, Cluster, TestResult};
use kvstore_net::Client;

fn authed(addr: &str) -> TestResult<Client> {
    let mut c = Client::connect(addr)?;
    c.auth("s3cret")?;
    Ok(c)
}

fn digests_agree(addrs: &[String]) -> bool {
    let d: Vec<String> = addrs
        .iter()
        .map(|a| {
            authed(a)
                .and_then(|mut c| Ok(c.digest()?))
                .unwrap_or_else(|e| e.to_string())
        })
        .collect();
    d.windows(2).all(|w| w[0] == w[1])
}

#[test]
fn a_password_protected_replica_link_replicates_and_survives_a_restart() -> TestResult {
    let mut cluster = Cluster::start(
        1,
        &[
            "--fsync",
            "no",
            "--requirepass",
            "s3cret",
            "--replication-mode",
            "sync",
            "--write-quorum",
            "1",
            "--sync-timeout-ms",
            "200",
        ],
        &["--fsync", "no", "--requirepass", "s3cret"],
    )?;
    let mut master = authed(&cluster.master.addr)?;
    for i in 0..50 {
        master.set(format!("a{i}").as_bytes(), b"v")?;
    }
    let mut replica = authed(&cluster.replicas[0].addr)?;
    assert_eq!(replica.get(b"a49")?, Some(b"v".to_vec()));

    cluster.replicas[0].kill();
    // Writes while the replica is down miss their quorum but stay on the master (caught up later).
    for i in 0..5 {
        let _ = master.set(format!("b{i}").as_bytes(), b"w");
    }
    cluster.replicas[0].restart()?;
    let mut after = authed(&cluster.master.addr)?;
    // The link comes back after a backoff: a write meanwhile may miss its 200 ms quorum.
    assert!(
        eventually(Duration::from_secs(15), || after
            .set(b"after", b"restart")
            .is_ok()),
        "no write reached its quorum after the replica came back"
    );
    let addrs = cluster.addrs();
    assert!(
        eventually(Duration::from_secs(15), || digests_agree(&addrs)),
        "the replica never caught up with the master over an authenticated link"
    );
    Ok(())
}
