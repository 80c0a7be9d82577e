//! A blocked `WAIT` and role changes or shutdown: the waiting client is answered, the
//! demoted master's replicator really stops, and a later master's replication is intact.

mod common;

use std::time::Duration;

use common::{eventually, info_field, resp, Cluster, Raw, TestResult};

fn replicaof(cluster: &Cluster) -> Vec<u8> {
    let port = cluster.replicas[0].port().to_string();
    resp(&[b"REPLICAOF", b"127.0.0.1", port.as_bytes()])
}

/// Returns once the master reports a client blocked in WAIT.
fn wait_until_blocked(cluster: &Cluster) -> TestResult {
    let mut client = cluster.master.client()?;
    let blocked = eventually(Duration::from_secs(5), || {
        info_field(&mut client, "clients", "blocked_clients").is_ok_and(|n| n == "1")
    });
    assert!(blocked, "the WAIT never blocked");
    Ok(())
}

/// One reply line, CRLF included.
fn read_line(raw: &mut Raw) -> TestResult<Vec<u8>> {
    use std::io::Read;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        raw.stream.read_exact(&mut byte)?;
        line.push(byte[0]);
    }
    Ok(line)
}

const UNBLOCKED: &[u8] = b"-UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)\r\n";

/// `WAIT 2 0` (no timeout) held the master's replicator: after `REPLICAOF` the demoted node
/// kept streaming to its old replica (whose link stayed up) until the WAIT ended, i.e. never.
#[test]
fn demotion_unblocks_wait_and_stops_streaming() -> TestResult {
    let cluster = Cluster::start(1, &["--fsync", "no"], &["--fsync", "no"])?;
    let mut waiter = Raw::connect(&cluster.master.addr)?;
    waiter.check(&resp(&[b"SET", b"k", b"v"]), b"+OK\r\n")?;
    let mut replica = cluster.replicas[0].client()?;
    assert!(eventually(Duration::from_secs(5), || {
        info_field(&mut replica, "replication", "master_link_status").is_ok_and(|s| s == "up")
    }));

    waiter.send(&resp(&[b"WAIT", b"2", b"0"]))?;
    let mut admin = Raw::connect(&cluster.master.addr)?;
    wait_until_blocked(&cluster)?;
    admin.check(&replicaof(&cluster), b"+OK\r\n")?;
    waiter.expect(UNBLOCKED)?;
    let down = eventually(Duration::from_secs(5), || {
        info_field(&mut replica, "replication", "master_link_status").is_ok_and(|s| s == "down")
    });
    assert!(down, "the demoted master still streams to its old replica");
    Ok(())
}

/// The old replicator, dropped late by a WAIT that outlived a demotion and a promotion,
/// detached the store's commit hook, which by then was the new replicator's: the promoted
/// master's writes were no longer streamed.
#[test]
fn a_wait_across_demotion_and_promotion_leaves_replication_working() -> TestResult {
    let cluster = Cluster::start(1, &["--fsync", "no"], &["--fsync", "no"])?;
    let mut waiter = Raw::connect(&cluster.master.addr)?;
    waiter.check(&resp(&[b"SET", b"k", b"v"]), b"+OK\r\n")?;
    waiter.send(&resp(&[b"WAIT", b"2", b"1500"]))?;
    let mut admin = Raw::connect(&cluster.master.addr)?;
    wait_until_blocked(&cluster)?;
    admin.check(&replicaof(&cluster), b"+OK\r\n")?;
    admin.check(&resp(&[b"REPLICAOF", b"NO", b"ONE"]), b"+OK\r\n")?;
    // Now -UNBLOCKED; before, `:1` once the 1.5 s ran out, after the late drop.
    let reply = read_line(&mut waiter)?;
    assert!(reply == UNBLOCKED || reply == b":1\r\n", "{reply:?}");
    // The new master's writes reach the replica.
    admin.check(&resp(&[b"SET", b"after", b"promotion"]), b"+OK\r\n")?;
    admin.check(&resp(&[b"WAIT", b"1", b"5000"]), b":1\r\n")?;
    let mut replica = cluster.replicas[0].client()?;
    assert_eq!(replica.get(b"after")?, Some(b"promotion".to_vec()));
    Ok(())
}

/// SIGTERM while a `WAIT 2 0` blocks: the waiter gets its count and the server exits
/// cleanly, instead of the connection being cut without a reply after the grace period.
#[test]
fn shutdown_answers_a_blocked_wait() -> TestResult {
    let mut cluster = Cluster::start(1, &["--fsync", "no"], &["--fsync", "no"])?;
    let mut waiter = Raw::connect(&cluster.master.addr)?;
    waiter.check(&resp(&[b"SET", b"k", b"v"]), b"+OK\r\n")?;
    waiter.check(&resp(&[b"WAIT", b"1", b"5000"]), b":1\r\n")?;
    waiter.send(&resp(&[b"WAIT", b"2", b"0"]))?;
    // An idle client does not hold up shutdown either.
    let _idle = Raw::connect(&cluster.master.addr)?;
    wait_until_blocked(&cluster)?;
    assert!(
        cluster.master.terminate()?,
        "the server did not exit cleanly"
    );
    waiter.expect(b":1\r\n")?;
    assert!(waiter.is_closed()?);
    Ok(())
}
