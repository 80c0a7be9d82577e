//! REPLICAOF issued while a sync-mode write waits for its quorum: the write holds the role
//! lock (shared) for up to --sync-timeout-ms, and REPLICAOF queued for it exclusively; from
//! then on every fair `role.read()` on the event loop (INFO, ROLE) parked the loop thread
//! behind the queued writer, and every other client of the loop (a plain PING) stalled until
//! the blocked write timed out. Now REPLICAOF ends the quorum waits before it takes the role,
//! and readers of the role never queue behind a writer.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{resp, Cluster, TestResult};

fn send(addr: &str, request: &[u8]) -> TestResult<TcpStream> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(request)?;
    Ok(s)
}

#[test]
fn a_pending_replicaof_does_not_freeze_other_clients() -> TestResult {
    let mut cluster = Cluster::start(
        1,
        &[
            "--fsync",
            "no",
            "--replication-mode",
            "sync",
            "--write-quorum",
            "1",
            "--sync-timeout-ms",
            "10000",
        ],
        &["--fsync", "no"],
    )?;
    let master = cluster.master.addr.clone();
    let mut c = cluster.master.client()?;
    c.set(b"warm", b"up")?; // replicated: the link works
    let replica_port = cluster.replicas[0].port().to_string();
    cluster.replicas[0].kill();

    // A write that waits for its quorum (10 s).
    let mut writer = send(&master, &resp(&[b"SET", b"k", b"v"]))?;
    std::thread::sleep(Duration::from_millis(300));
    // REPLICAOF queues behind it.
    let mut admin = send(
        &master,
        &resp(&[b"REPLICAOF", b"127.0.0.1", replica_port.as_bytes()]),
    )?;
    std::thread::sleep(Duration::from_millis(300));
    // A monitoring client asks INFO (on the event loop).
    let mut monitor = send(&master, &resp(&[b"INFO", b"replication"]))?;
    std::thread::sleep(Duration::from_millis(300));

    // An unrelated client's PING.
    let start = Instant::now();
    let mut pinger = send(&master, &resp(&[b"PING"]))?;
    let mut buf = [0u8; 7];
    pinger.set_read_timeout(Some(Duration::from_secs(20)))?;
    pinger.read_exact(&mut buf)?;
    let waited = start.elapsed();
    assert_eq!(&buf, b"+PONG\r\n");
    // Drain the others so the processes can be stopped cleanly.
    let mut scratch = [0u8; 1024];
    let _ = writer.read(&mut scratch);
    let _ = admin.read(&mut scratch);
    let _ = monitor.read(&mut scratch);
    assert!(
        waited < Duration::from_secs(2),
        "a PING from an unrelated client waited {waited:?}: the event loop was parked behind REPLICAOF"
    );
    Ok(())
}
