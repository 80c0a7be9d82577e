//! A client that pipelines requests and never reads the replies gets back-pressure, not an
//! ever-growing output buffer: the server stops running its requests while its replies wait,
//! its memory stays flat, and the other clients are served.

mod common;

use std::io::Write;
use std::net::TcpStream;

use common::{resp, settled_command_count, ServerProcess, TestResult};

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> TestResult<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS".into())
}

#[test]
fn a_client_that_does_not_read_cannot_grow_the_servers_memory() -> TestResult {
    let dir = tempfile::tempdir()?;
    let server = ServerProcess::start(dir.path(), 0, &["--fsync".into(), "everysec".into()])?;
    let big = vec![b'x'; 1 << 20];
    let mut client = server.client()?;
    client.set(b"big", &big)?;
    let before = rss_kib(server.pid())?;

    // 2,000 GETs of a 1 MiB value: 2 GB of replies, never read.
    let mut greedy = TcpStream::connect(&server.addr)?;
    let request = resp(&[b"GET", b"big"]);
    let pipeline: Vec<u8> = request
        .iter()
        .copied()
        .cycle()
        .take(request.len() * 2000)
        .collect();
    greedy.write_all(&pipeline)?;

    // The server runs requests until the replies fill the socket and its own bounded
    // buffer, then stops: the command count settles well below 2,000 (each INFO asked
    // here counts one).
    let (last, _) =
        settled_command_count(&mut client, 2).ok_or("the command count never settled")?;
    assert!(
        last < 500,
        "{last} commands ran for a client that reads nothing"
    );
    let grown = rss_kib(server.pid())?.saturating_sub(before);
    assert!(grown < 64 << 10, "the server grew by {grown} KiB");

    // Others are served meanwhile, large replies included.
    assert_eq!(client.get(b"big")?.map(|v| v.len()), Some(big.len()));
    client.set(b"small", b"v")?;
    assert_eq!(client.get(b"small")?, Some(b"v".to_vec()));
    drop(greedy);
    assert_eq!(client.integer(&["DBSIZE"])?, 2);
    Ok(())
}
