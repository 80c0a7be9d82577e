//! A node's own address in `--replicas` is left out of the replicas it streams to under any
//! name (`localhost:PORT` as well as `127.0.0.1:PORT`), so a quorum or
//! `--min-replicas-to-write` only it could fill is refused at start with exit code 2. Only
//! the exact string used to be recognised: the server started, counted itself as a replica,
//! and streamed to itself (which refuses every `REPLICATE`, being a master).

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{server_binary, TestResult};

fn free_port() -> TestResult<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Kills (by PID) and reaps the child on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the server with `args`; returns its exit code if it exits within 5 s, or `None`
/// and the first stdout line if it is still running (it is then killed by PID).
fn exit_code_within(args: &[String]) -> TestResult<(Option<i32>, String)> {
    let child = Command::new(server_binary())
        .args(args)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut guard = Guard(child);
    let stdout = guard.0.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Some(status) = guard.0.try_wait()? {
            return Ok((status.code(), String::new()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let line = rx.recv_timeout(Duration::from_secs(1)).unwrap_or_default();
    Ok((None, line))
}

#[test]
fn own_address_under_another_name_is_left_out_of_the_quorum() -> TestResult {
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let d = dir.path().display().to_string();
    let args: Vec<String> = [
        "--data-dir",
        &d,
        "--port",
        &port.to_string(),
        // This node itself, named as /etc/hosts names 127.0.0.1.
        "--replicas",
        &format!("localhost:{port}"),
        "--replication-mode",
        "sync",
        "--write-quorum",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (code, line) = exit_code_within(&args)?;
    assert_eq!(
        code,
        Some(2),
        "--replicas names only this node (localhost:{port}), so it streams to 0 replicas and \
         a write quorum of 1 must be refused at start with exit code 2; instead the server \
         kept running ({line:?})"
    );
    Ok(())
}

#[test]
fn own_address_under_another_name_is_left_out_of_min_replicas_to_write() -> TestResult {
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let d = dir.path().display().to_string();
    let args: Vec<String> = [
        "--data-dir",
        &d,
        "--port",
        &port.to_string(),
        "--replicas",
        &format!("localhost:{port}"),
        "--min-replicas-to-write",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (code, line) = exit_code_within(&args)?;
    assert_eq!(
        code,
        Some(2),
        "--replicas names only this node (localhost:{port}); --min-replicas-to-write 1 must be \
         refused at start with exit code 2; instead the server kept running ({line:?})"
    );
    Ok(())
}
