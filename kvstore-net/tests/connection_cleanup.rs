//! What a connection holds is released when the connection ends, not later.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{eventually, ServerProcess, TestResult};

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .unwrap_or(usize::MAX)
}

/// Closed connections used to keep the accept loop's duplicate of their socket (and their
/// thread handle) until the next connection was accepted: 100 clients that left held 100
/// file descriptors in CLOSE_WAIT for as long as nobody else connected.
#[test]
fn closed_connections_release_their_file_descriptors_without_a_new_accept() -> TestResult {
    let dir = tempfile::tempdir()?;
    let server = ServerProcess::start(dir.path(), 0, &[])?;
    let pid = server.pid();
    let mut first = TcpStream::connect(&server.addr)?;
    first.set_read_timeout(Some(Duration::from_secs(10)))?;
    first.write_all(b"PING\r\n")?;
    let mut reply = [0u8; 7];
    first.read_exact(&mut reply)?;
    let baseline = open_fds(pid);

    let mut clients = Vec::new();
    for _ in 0..100 {
        let mut client = TcpStream::connect(&server.addr)?;
        client.set_read_timeout(Some(Duration::from_secs(10)))?;
        client.write_all(b"PING\r\n")?;
        client.read_exact(&mut reply)?;
        assert_eq!(&reply, b"+PONG\r\n");
        clients.push(client);
    }
    assert!(open_fds(pid) >= baseline + 100);
    drop(clients);

    let released = eventually(Duration::from_secs(5), || open_fds(pid) <= baseline);
    assert!(
        released,
        "{} descriptors open after every client left, {baseline} before they came",
        open_fds(pid)
    );
    // The connection that stayed is still served.
    first.write_all(b"PING\r\n")?;
    first.read_exact(&mut reply)?;
    assert_eq!(&reply, b"+PONG\r\n");
    Ok(())
}
