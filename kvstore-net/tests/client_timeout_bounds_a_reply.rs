//! `kvstore_net::Client::connect_timeout`: "Connects within `timeout`, which then also bounds
//! each reply and write." (and `DEFAULT_CLIENT_TIMEOUT`: "Default bound on connecting and on
//! waiting for a reply").
//!
//! The timeout used to be only the socket's read timeout, which bounds each `read` call, not
//! a reply: a peer that sent a reply's bytes a little at a time, each within the timeout,
//! kept the client waiting for as long as it liked. The fake server below (a plain listener
//! on 127.0.0.1:0, no process) trickles a 40-byte bulk reply at one byte per 100 ms to a
//! client whose timeout is 500 ms.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kvstore_net::Client;

#[test]
fn a_trickled_reply_is_bounded_by_the_client_timeout() -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let stop_server = stop.clone();
    let server = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut sock, _) = listener.accept()?;
        sock.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut request = [0u8; 64];
        let _ = sock.read(&mut request)?;
        sock.write_all(b"$40\r\n")?;
        // At most 40 bytes at 100 ms each: 4 s, then the CRLF.
        for _ in 0..40 {
            if stop_server.load(Ordering::Relaxed) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
            if sock.write_all(b"x").is_err() {
                return Ok(());
            }
        }
        let _ = sock.write_all(b"\r\n");
        Ok(())
    });

    let timeout = Duration::from_millis(500);
    let mut client = Client::connect_timeout(&addr.to_string(), timeout)?;
    let started = Instant::now();
    let reply = client.get(b"k");
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    drop(client);
    let _ = server.join();

    assert!(
        took < timeout * 3,
        "connect_timeout({timeout:?}) promises to bound each reply, but GET waited {took:?} \
         for a reply trickled a byte every 100 ms (result: {reply:?})"
    );
    assert!(
        reply.is_err(),
        "a reply not complete within the timeout is an error"
    );
    Ok(())
}
