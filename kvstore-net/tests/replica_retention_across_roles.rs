//! The WAL a master keeps for its replicas outlives its shutdown (saved with the store, like
//! a PostgreSQL replication slot), and goes when the node is a replica (demoted with
//! `REPLICAOF host port`, or started with `--replica`) or when the replica is no longer
//! configured — also when none is left: a master restarted without `--replicas` attaches no
//! replicator, and so used to release nothing (the saved consumer pinned up to
//! `max_retained_wal_bytes` of log, 1 GiB by default, for ever).

mod common;

use std::time::Duration;

use common::*;
use kvstore_core::KvStore;
use kvstore_net::{Client, Server, ServerConfig};

fn consumers_in(dir: &std::path::Path) -> TestResult<Vec<(String, u64)>> {
    Ok(KvStore::open(dir)?.wal_consumers())
}

fn master_config(dir: &std::path::Path, replicas: Vec<String>) -> TestResult<ServerConfig> {
    Ok(ServerConfig::new(dir)
        .bind("127.0.0.1:0".parse()?)
        .replicas(replicas))
}

/// A master's first life in `dir`: it streams a write to `replica` and shuts down, which
/// keeps the replica's retention.
fn first_life(dir: &std::path::Path, replica: &str) -> TestResult {
    let master = Server::start(master_config(dir, vec![replica.to_string()])?)?;
    let mut client = Client::connect(&master.local_addr().to_string())?;
    client.set(b"k", b"v")?;
    assert!(eventually(Duration::from_secs(10), || master
        .store()
        .wal_consumers()
        .iter()
        .any(|(_, lsn)| *lsn >= 1)));
    drop(client);
    master.shutdown()?;
    let kept = consumers_in(dir)?;
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].0.ends_with(replica), "{kept:?}");
    Ok(())
}

#[test]
fn retention_is_kept_at_shutdown_and_released_by_demotion() -> TestResult {
    let replica = TestServer::start_with(|c| c.replica(true))?;
    let master_dir = tempfile::tempdir()?;
    first_life(master_dir.path(), &replica.addr())?;

    let master = Server::start(master_config(master_dir.path(), vec![replica.addr()])?)?;
    let mut raw = Raw::connect(&master.local_addr().to_string())?;
    raw.check(&resp(&[b"REPLICAOF", b"127.0.0.1", b"1"]), b"+OK\r\n")?;
    drop(raw);
    master.shutdown()?;
    assert_eq!(consumers_in(master_dir.path())?, vec![]);
    Ok(())
}

#[test]
fn a_node_started_as_a_replica_releases_retention() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let store = KvStore::open(dir.path())?;
        store.retain_wal("replica:127.0.0.1:7001", 0);
    }
    let node = kvstore_net::Server::start(
        kvstore_net::ServerConfig::new(dir.path())
            .bind("127.0.0.1:0".parse()?)
            .replica(true),
    )?;
    node.shutdown()?;
    assert_eq!(consumers_in(dir.path())?, vec![]);
    Ok(())
}

#[test]
fn a_master_restarted_without_replicas_releases_the_removed_replicas_retention() -> TestResult {
    let replica = TestServer::start_with(|c| c.replica(true))?;
    let master_dir = tempfile::tempdir()?;
    first_life(master_dir.path(), &replica.addr())?;

    // Second life: the operator removed the replica from the configuration.
    let master = Server::start(master_config(master_dir.path(), Vec::new())?)?;
    let mut client = Client::connect(&master.local_addr().to_string())?;
    client.set(b"k2", b"v2")?;
    let running = master.store().wal_consumers();
    drop(client);
    master.shutdown()?;
    let saved = consumers_in(master_dir.path())?;
    assert!(
        running.is_empty() && saved.is_empty(),
        "a master with no replicas configured still keeps WAL for a removed replica: \
         while running {running:?}, saved {saved:?}"
    );
    Ok(())
}
