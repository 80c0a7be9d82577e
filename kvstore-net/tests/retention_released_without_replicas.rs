//! README: the WAL a master keeps for its replicas is saved with the store "like
//! PostgreSQL's replication slots"; `attach` "releases saved replica consumers not in its
//! configuration" (the operator removed them: nothing else would ever move or drop it).
//!
//! A master restarted with *no* `--replicas` left (the operator removed its only replica)
//! attaches no replicator, and so used to release nothing: the saved consumer pinned the log
//! (up to `max_retained_wal_bytes`, 1 GiB by default) for ever, across every later restart.

mod common;

use std::time::Duration;

use common::*;
use kvstore_core::KvStore;

fn consumers_in(dir: &std::path::Path) -> TestResult<Vec<(String, u64)>> {
    Ok(KvStore::open(dir)?.wal_consumers())
}

#[test]
fn a_master_restarted_without_replicas_releases_the_removed_replicas_retention() -> TestResult {
    let replica = TestServer::start_with(|c| c.replica(true))?;
    let master_dir = tempfile::tempdir()?;
    // First life: one replica, which registers its WAL retention.
    let master = kvstore_net::Server::start(
        kvstore_net::ServerConfig::new(master_dir.path())
            .bind("127.0.0.1:0".parse()?)
            .replicas(vec![replica.addr()]),
    )?;
    let mut client = kvstore_net::Client::connect(&master.local_addr().to_string())?;
    client.set(b"k", b"v")?;
    assert!(eventually(Duration::from_secs(10), || master
        .store()
        .wal_consumers()
        .iter()
        .any(|(_, lsn)| *lsn >= 1)));
    drop(client);
    master.shutdown()?;
    assert_eq!(consumers_in(master_dir.path())?.len(), 1);

    // Second life: the operator removed the replica from the configuration.
    let master = kvstore_net::Server::start(
        kvstore_net::ServerConfig::new(master_dir.path()).bind("127.0.0.1:0".parse()?),
    )?;
    let mut client = kvstore_net::Client::connect(&master.local_addr().to_string())?;
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
