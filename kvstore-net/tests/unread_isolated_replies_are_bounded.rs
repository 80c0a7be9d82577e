//! A client that pipelines read-modify-write commands (`SET k v NX GET`, planned in the
//! loop's commit group) and never reads its replies is bounded in memory, as a client
//! pipelining `GET`s is (`unread_replies_are_bounded.rs`). Each `SET big x NX GET` is ~40
//! bytes and answers the 1 MiB value of `big`; one read's worth of them used to queue
//! hundreds of MiB of replies. A connection now adds at most 16 such commands to a group.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::{resp, settled_command_count, ServerProcess, TestResult};

fn rss_kib(pid: u32) -> TestResult<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS".into())
}

#[test]
fn unread_replies_of_isolated_commands_are_bounded() -> TestResult {
    let dir = tempfile::tempdir()?;
    let server = ServerProcess::start(dir.path(), 0, &["--fsync".into(), "everysec".into()])?;
    let big = vec![b'x'; 1 << 20];
    let mut client = server.client()?;
    client.set(b"big", &big)?;
    let before = rss_kib(server.pid())?;

    let mut greedy = TcpStream::connect(&server.addr)?;
    let request = resp(&[b"SET", b"big", b"x", b"NX", b"GET"]);
    let pipeline: Vec<u8> = request
        .iter()
        .copied()
        .cycle()
        .take(request.len() * 2000)
        .collect();
    greedy.set_write_timeout(Some(Duration::from_secs(10)))?;
    greedy.write_all(&pipeline)?;

    let (last, _) =
        settled_command_count(&mut client, 2).ok_or("the command count never settled")?;
    let grown = rss_kib(server.pid())?.saturating_sub(before);
    eprintln!("commands run: {last}; server grew by {grown} KiB");
    assert!(
        grown < 64 << 10,
        "the server grew by {grown} KiB for a client that reads nothing ({last} commands ran)"
    );
    assert!(
        last < 500,
        "{last} commands ran for a client that reads nothing"
    );
    drop(greedy);
    Ok(())
}
