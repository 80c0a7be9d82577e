//! `RESYNC host:port` on a master: the operator's way, over the wire, to take back a replica
//! reported `diverged` (it holds writes the master lacks, which a resync discards). Before,
//! only the embedded API (`Replicator::force_resync`) or emptying the replica's directory
//! could.

mod common;

use std::time::Duration;

use common::*;
use kvstore_net::{Client, Server, ServerConfig};

fn info_replication(client: &mut Client) -> TestResult<String> {
    Ok(client
        .info("replication")?
        .into_iter()
        .map(|(k, v)| format!("{k}:{v}\n"))
        .collect())
}

#[test]
fn resync_takes_back_a_diverged_replica() -> TestResult {
    let replica = TestServer::start_with(|c| c.replica(true))?;
    let replica_addr = replica.addr();
    let master_config = |dir: &std::path::Path| -> TestResult<ServerConfig> {
        Ok(ServerConfig::new(dir)
            .bind("127.0.0.1:0".parse()?)
            .replicas(vec![replica_addr.clone()]))
    };

    // The replica takes 20 writes from a first master, whose data is then lost.
    let first_dir = tempfile::tempdir()?;
    let first = Server::start(master_config(first_dir.path())?)?;
    let mut client = Client::connect(&first.local_addr().to_string())?;
    for i in 0..20 {
        client.set(format!("old{i}").as_bytes(), b"v")?;
    }
    assert_eq!(client.integer(&["WAIT", "1", "10000"])?, 1);
    drop(client);
    first.shutdown()?;

    // A master started empty: the replica holds more than its log and is refused as diverged.
    let fresh_dir = tempfile::tempdir()?;
    let master = Server::start(master_config(fresh_dir.path())?)?;
    let mut client = Client::connect(&master.local_addr().to_string())?;
    client.set(b"new", b"w")?;
    assert!(
        eventually(Duration::from_secs(10), || info_replication(&mut client)
            .is_ok_and(|info| info.contains("state=diverged"))),
        "{}",
        info_replication(&mut client)?
    );

    let mut raw = Raw::connect(&master.local_addr().to_string())?;
    raw.check(
        &resp(&[b"RESYNC", b"127.0.0.1:1"]),
        b"-ERR no replica named '127.0.0.1:1' (see INFO replication for their names)\r\n",
    )?;
    raw.check(
        &resp(&[b"RESYNC"]),
        b"-ERR wrong number of arguments for 'resync' command\r\n",
    )?;
    raw.check(&resp(&[b"RESYNC", replica_addr.as_bytes()]), b"+OK\r\n")?;
    let digest = converged_digest(
        &[master.local_addr().to_string(), replica_addr.clone()],
        Duration::from_secs(20),
    )?;
    assert!(!digest.is_empty());
    let mut on_replica = replica.client()?;
    assert_eq!(on_replica.get(b"new")?, Some(b"w".to_vec()));
    assert_eq!(
        on_replica.get(b"old0")?,
        None,
        "the diverged writes were replaced"
    );

    let mut replica_raw = replica.raw()?;
    replica_raw.check(
        &resp(&[b"RESYNC", b"127.0.0.1:1"]),
        b"-ERR RESYNC is for a master: this node is a replica\r\n",
    )?;
    drop(client);
    master.shutdown()?;
    Ok(())
}
