//! Shutting down while a client has replies queued that it has not read yet: the client
//! still gets every one of them, whole, then the end of the stream (not a cut reply or a
//! reset), and shutdown is not held up by an idle client that stays connected.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{resp, settled_command_count, TestResult, TestServer};

#[test]
fn a_client_reading_late_gets_every_queued_reply_whole() -> TestResult {
    let mut server = TestServer::start()?;
    // 16 MiB: far more than the socket buffers take, so most of a reply waits in the
    // server's own output buffer for this client.
    let value = vec![b'v'; (16 << 20) + 1];
    let mut client = server.client()?;
    client.set(b"big", &value)?;
    let reply_bytes = format!("${}\r\n", value.len()).len() + value.len() + 2;

    // Three GETs, never read until shutdown has begun: the first reply alone stops the
    // server from running the others (back-pressure).
    let mut slow = TcpStream::connect(server.addr())?;
    slow.set_read_timeout(Some(Duration::from_secs(10)))?;
    let request = resp(&[b"GET", b"big"]);
    let pipeline: Vec<u8> = request
        .iter()
        .copied()
        .cycle()
        .take(request.len() * 3)
        .collect();
    slow.write_all(&pipeline)?;
    // Wait until the server stops running them (back-pressure); then it has run `gets`.
    let (last, infos) =
        settled_command_count(&mut client, 3).ok_or("the command count never settled")?;
    // Less the SET and every INFO asked (each counts itself).
    let gets = (last - 1 - infos) as usize;

    let handle = server.handle.take().ok_or("no server")?;
    let started = Instant::now();
    let stopper = std::thread::spawn(move || handle.shutdown());
    // The client comes back to read only once shutdown has begun.
    std::thread::sleep(Duration::from_millis(300));
    let mut received = 0usize;
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        match slow.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => received += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("after {received} bytes: {e}").into()),
        }
    }
    drop(slow);
    stopper.join().map_err(|_| "shutdown panicked")??;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        started.elapsed()
    );
    assert!(gets > 0 && gets < 3, "{gets} GETs ran");
    assert_eq!(
        received,
        gets * reply_bytes,
        "{gets} replies of {reply_bytes} bytes were due"
    );
    Ok(())
}
