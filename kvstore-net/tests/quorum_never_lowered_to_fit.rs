//! Sync mode is never silently downgraded (DESIGN §4: a write returns after k replicas
//! acknowledged, else `QuorumNotReached`). `--replicas` may name the node itself (one list for
//! every node, so that a promoted replica streams to the others), and a node is not its own
//! replica: the quorum used to be clamped to the replicas left, so a master started with
//! `--write-quorum 2` and one other replica acknowledged writes after one ack, while INFO
//! reported `write_quorum:2`. Such flags are now refused at start, as bad flags are.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{server_binary, TestResult};

/// Runs the server with `args`; its exit code and output, or an error if it is still running
/// after 10 s (then it is killed).
fn run_to_exit(args: &[String]) -> TestResult<(i32, String)> {
    let mut child = Command::new(server_binary())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the server started with a write quorum it cannot meet".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut text = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        stderr.read_to_string(&mut text)?;
    }
    Ok((status.code().unwrap_or(-1), text))
}

fn refused(flags: &[&str], names: &str) -> TestResult {
    let dir = tempfile::tempdir()?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let other = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut args: Vec<String> = vec![
        "--data-dir".into(),
        dir.path().display().to_string(),
        "--port".into(),
        port.to_string(),
        "--replicas".into(),
        format!("127.0.0.1:{port},127.0.0.1:{other}"),
    ];
    args.extend(flags.iter().map(|f| f.to_string()));
    let (code, text) = run_to_exit(&args)?;
    assert_eq!(code, 2, "exit code, output: {text}");
    assert!(
        text.contains(names) && text.contains("1 replica"),
        "the refusal should say what cannot be met and why: {text}"
    );
    Ok(())
}

#[test]
fn a_write_quorum_above_the_other_replicas_is_refused_at_start() -> TestResult {
    refused(
        &["--replication-mode", "sync", "--write-quorum", "2"],
        "write quorum",
    )
}

#[test]
fn min_replicas_to_write_above_the_other_replicas_is_refused_at_start() -> TestResult {
    refused(&["--min-replicas-to-write", "2"], "min-replicas-to-write")
}
