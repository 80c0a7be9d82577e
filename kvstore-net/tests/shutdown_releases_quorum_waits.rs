//! SIGTERM while a sync-mode write waits for its quorum: shutdown ends within its own grace
//! period (5 s for connections, 5 s for replication), not after --sync-timeout-ms. The
//! blocked write holds the role lock (shared) until its quorum wait ends, and `role::stop`
//! takes that lock exclusively: the process stayed up for the whole sync timeout. Shutdown
//! now ends the quorum waits first.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{resp, Cluster, TestResult};

#[test]
fn sigterm_is_not_held_up_by_a_write_waiting_for_its_quorum() -> TestResult {
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
            "60000",
        ],
        &["--fsync", "no"],
    )?;
    let mut c = cluster.master.client()?;
    c.set(b"warm", b"up")?; // the link works
    cluster.replicas[0].kill();

    // A write that waits up to 60 s for its quorum.
    let mut writer = TcpStream::connect(&cluster.master.addr)?;
    writer.write_all(&resp(&[b"SET", b"k", b"v"]))?;
    std::thread::sleep(Duration::from_millis(500));

    let start = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &cluster.master.pid().to_string()])
        .status()?;
    assert!(status.success());
    let mut exited = false;
    while start.elapsed() < Duration::from_secs(20) {
        if cluster.master.child.try_wait()?.is_some() {
            exited = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = start.elapsed();
    cluster.master.kill(); // by PID, whatever happened
    drop(writer);
    assert!(
        exited,
        "the master was still running {took:?} after SIGTERM (a write waits 60 s for its quorum)"
    );
    Ok(())
}
