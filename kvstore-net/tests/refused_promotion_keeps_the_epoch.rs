//! `REPLICAOF NO ONE` on a replica whose write quorum its `--replicas` list cannot meet (the
//! list names the node itself) is refused, and the node stays a replica of its master. The
//! refusal must leave the stored epoch as it was: raised first, it made the replica, once
//! restarted, refuse its own master as stale, for ever.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::{resp, Raw, TestResult};
use kvstore_net::{ReplicationMode, Server, ServerConfig};

fn config(dir: &std::path::Path, port: u16, other: u16) -> TestResult<ServerConfig> {
    Ok(ServerConfig::new(dir)
        .bind(format!("127.0.0.1:{port}").parse()?)
        .sync_policy(kvstore_core::SyncPolicy::Never)
        .replica(true)
        // One list for every node: it names this node too, so one replica is left.
        .replicas(vec![
            format!("127.0.0.1:{port}"),
            format!("127.0.0.1:{other}"),
        ])
        .replication_mode(ReplicationMode::Sync {
            quorum: 2,
            timeout: Duration::from_secs(1),
        }))
}

#[test]
fn a_refused_promotion_leaves_the_epoch_alone() -> TestResult {
    let dir = tempfile::tempdir()?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let other = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let server = Server::start(config(dir.path(), port, other)?)?;
    let addr = server.local_addr().to_string();
    // The master (epoch 1) opens a session: epoch 1 is stored.
    let hello = resp(&[b"REPLICATE", b"HELLO", b"127.0.0.1:7000", b"1", b"0"]);
    let mut link = Raw::connect(&addr)?;
    link.check_hello(&hello, [0, 1, -1, 0])?;
    let stored_before = kvstore_replication::epoch::read_epoch(dir.path())?;
    assert_eq!(stored_before, Some(1));

    let mut admin = Raw::connect(&addr)?;
    admin.send(&resp(&[b"REPLICAOF", b"NO", b"ONE"]))?;
    let reply = admin.read_lines(1)?;
    assert!(
        reply.starts_with('-') && reply.contains("quorum"),
        "the promotion should be refused (quorum 2, one other replica): {reply:?}"
    );
    let stored_after = kvstore_replication::epoch::read_epoch(dir.path())?;
    drop(link);
    drop(admin);
    drop(server);

    // After a restart, the replica's own master (still epoch 1) must still be taken.
    let server = Server::start(config(dir.path(), port, other)?)?;
    let mut link = Raw::connect(&server.local_addr().to_string())?;
    link.send(&hello)?;
    let answer = link.read_lines(1)?;
    assert!(
        stored_after == stored_before && answer.starts_with("*5"),
        "a refused promotion bumped the stored epoch from {stored_before:?} to \
         {stored_after:?}; after a restart the replica answers its master's HELLO with \
         {answer:?}"
    );
    drop(link);
    drop(server);
    Ok(())
}
