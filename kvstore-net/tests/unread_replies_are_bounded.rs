//! A client that pipelines requests and never reads the replies gets back-pressure, not an
//! ever-growing output buffer: the server stops running its requests while its replies wait,
//! its memory stays flat, and the other clients are served. The same holds for commands that
//! read before they write, whose replies are built at a group's commit.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::{resp, settled_command_count, ServerProcess, TestResult};
use kvstore_net::Client;

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> TestResult<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS".into())
}

/// A server holding a 1 MiB value at `big`, a client of it, and a connection that has sent
/// 2,000 `request`s and reads none of the replies; then how many commands ran once their
/// count settled, and how much the server grew meanwhile (KiB).
struct Flood {
    server: ServerProcess,
    client: Client,
    greedy: TcpStream,
    commands_run: u64,
    grown_kib: u64,
}

fn flood(dir: &std::path::Path, request: &[u8]) -> TestResult<Flood> {
    let server = ServerProcess::start(dir, 0, &["--fsync".into(), "everysec".into()])?;
    let mut client = server.client()?;
    client.set(b"big", &vec![b'x'; BIG])?;
    let before = rss_kib(server.pid())?;
    let mut greedy = TcpStream::connect(&server.addr)?;
    let pipeline: Vec<u8> = request
        .iter()
        .copied()
        .cycle()
        .take(request.len() * 2000)
        .collect();
    greedy.set_write_timeout(Some(Duration::from_secs(10)))?;
    greedy.write_all(&pipeline)?;
    // The server runs requests until the replies fill the socket and its own bounded
    // buffer, then stops: the command count settles well below 2,000 (each INFO asked
    // here counts one).
    let (commands_run, _) =
        settled_command_count(&mut client, 2).ok_or("the command count never settled")?;
    let grown_kib = rss_kib(server.pid())?.saturating_sub(before);
    Ok(Flood {
        server,
        client,
        greedy,
        commands_run,
        grown_kib,
    })
}

const BIG: usize = 1 << 20;

#[test]
fn a_client_that_does_not_read_cannot_grow_the_servers_memory() -> TestResult {
    let dir = tempfile::tempdir()?;
    // 2,000 GETs of a 1 MiB value: 2 GB of replies, never read.
    let Flood {
        server,
        mut client,
        greedy,
        commands_run: last,
        grown_kib: grown,
    } = flood(dir.path(), &resp(&[b"GET", b"big"]))?;
    assert!(
        last < 500,
        "{last} commands ran for a client that reads nothing"
    );
    assert!(grown < 64 << 10, "the server grew by {grown} KiB");

    // Others are served meanwhile, large replies included.
    assert_eq!(client.get(b"big")?.map(|v| v.len()), Some(BIG));
    client.set(b"small", b"v")?;
    assert_eq!(client.get(b"small")?, Some(b"v".to_vec()));
    drop(greedy);
    assert_eq!(client.integer(&["DBSIZE"])?, 2);
    drop(server);
    Ok(())
}

/// The same for read-modify-write commands, planned in the loop's commit group: each
/// `SET big x NX GET` is ~40 bytes and answers the 1 MiB value (NX keeps it). Their replies
/// are built at the commit, past the loop's back-pressure check; one read's worth of them
/// used to queue hundreds of MiB. A connection now adds at most 16 such commands to a group.
#[test]
fn unread_replies_of_isolated_commands_are_bounded() -> TestResult {
    let dir = tempfile::tempdir()?;
    let Flood {
        server,
        greedy,
        commands_run: last,
        grown_kib: grown,
        ..
    } = flood(dir.path(), &resp(&[b"SET", b"big", b"x", b"NX", b"GET"]))?;
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
    drop(server);
    Ok(())
}
