//! The `kvstore-server` command line: `--help` explains every flag, bad values exit with code
//! 2 and a clear message, SIGTERM and `SHUTDOWN` shut down cleanly with the data kept.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{server_binary, ServerProcess, TestResult};

fn run(args: &[&str]) -> TestResult<(i32, String)> {
    let out = Command::new(server_binary()).args(args).output()?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Ok((out.status.code().unwrap_or(-1), text))
}

#[test]
fn help_explains_every_flag() -> TestResult {
    let (code, help) = run(&["--help"])?;
    assert_eq!(code, 0);
    for flag in [
        "--host",
        "--port",
        "--data-dir",
        "--replicas",
        "--replication-mode",
        "--write-quorum",
        "--replica",
        "--fsync",
        "--requirepass",
        "--min-replicas-to-write",
        "--max-clients",
    ] {
        assert!(help.contains(flag), "--help does not mention {flag}");
    }
    Ok(())
}

#[test]
fn bad_values_exit_with_code_2() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path().to_str().ok_or("path")?;
    for (args, message) in [
        (
            vec!["--data-dir", d, "--port", "http"],
            "invalid value 'http'",
        ),
        (
            vec!["--data-dir", d, "--fsync", "sometimes"],
            "invalid value 'sometimes'",
        ),
        (
            vec!["--data-dir", d, "--replicas", "nohost"],
            "is not host:port",
        ),
        (vec!["--port", "1"], "--data-dir"),
        (
            vec![
                "--data-dir",
                d,
                "--replicas",
                "127.0.0.1:1",
                "--replication-mode",
                "sync",
                "--write-quorum",
                "2",
            ],
            "write quorum must be between 1 and the number of replicas (1), got 2",
        ),
        (
            vec!["--data-dir", d, "--write-quorum", "1"],
            "--write-quorum needs --replication-mode sync",
        ),
        (
            vec!["--data-dir", d, "--max-clients", "0"],
            "invalid value '0'",
        ),
    ] {
        let (code, text) = run(&args)?;
        assert_eq!(code, 2, "{args:?}: {text}");
        assert!(text.contains(message), "{args:?}: {text}");
    }
    Ok(())
}

#[test]
fn sigterm_shuts_down_cleanly_and_keeps_the_data() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut server = ServerProcess::start(dir.path(), 0, &[])?;
    server.client()?.set(b"kept", b"yes")?;
    assert!(
        server.terminate()?,
        "kvstore-server did not exit cleanly on SIGTERM"
    );
    server.restart()?;
    assert_eq!(server.client()?.get(b"kept")?, Some(b"yes".to_vec()));
    Ok(())
}

/// `SHUTDOWN` stops the server as SIGTERM does: the connection closes without a reply (what
/// redis-cli and redis-py expect), the process exits 0, and the data is there after a restart.
/// Everything pipelined before it is answered first.
#[test]
fn shutdown_command_stops_the_server_cleanly_and_keeps_the_data() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut server = ServerProcess::start(dir.path(), 0, &["--fsync".into(), "no".into()])?;
    let mut raw = common::Raw::connect(&server.addr)?;
    raw.check(
        &common::resp(&[b"SHUTDOWN", b"SAVE", b"NOSAVE"]),
        b"-ERR syntax error\r\n",
    )?;
    raw.check(
        &common::resp(&[b"SHUTDOWN", b"ABORT"]),
        b"-ERR No shutdown in progress.\r\n",
    )?;
    raw.send(
        &[
            common::resp(&[b"SET", b"kept", b"yes"]),
            common::resp(&[b"SHUTDOWN", b"nosave", b"NOW"]),
            common::resp(&[b"GET", b"kept"]),
        ]
        .concat(),
    )?;
    raw.expect(b"+OK\r\n")?;
    assert!(
        raw.is_closed()?,
        "the connection stayed open after SHUTDOWN"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            return Err("kvstore-server still runs 10 s after SHUTDOWN".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status}");
    server.restart()?;
    assert_eq!(server.client()?.get(b"kept")?, Some(b"yes".to_vec()));
    Ok(())
}
