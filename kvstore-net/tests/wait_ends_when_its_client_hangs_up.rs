//! A client that sends `WAIT n 0` (no timeout) and then disconnects: its connection is gone,
//! and the wait ends with it. The thread it was handed to used to keep waiting (up to 24 h)
//! and keep its place under `--max-clients`: two such clients exhausted `--max-clients 2`
//! for a day, every new client refused although none was connected.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use common::{eventually, resp, ServerProcess, TestResult};

#[test]
fn disconnected_wait_clients_free_their_connection_slots() -> TestResult {
    let dir = tempfile::tempdir()?;
    // A replica address nobody listens on: WAIT 1 can never be met.
    let dead = TcpListener::bind("127.0.0.1:0")?;
    let dead_addr = dead.local_addr()?.to_string();
    drop(dead);
    let master = ServerProcess::start(
        &dir.path().join("m"),
        0,
        &[
            "--fsync".into(),
            "no".into(),
            "--replicas".into(),
            dead_addr,
            "--max-clients".into(),
            "2".into(),
        ],
    )?;
    for _ in 0..2 {
        let mut s = TcpStream::connect(&master.addr)?;
        s.write_all(&resp(&[b"SET", b"k", b"v"]))?;
        let mut ok = [0u8; 5];
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.read_exact(&mut ok)?;
        s.write_all(&resp(&[b"WAIT", b"1", b"0"]))?;
        std::thread::sleep(Duration::from_millis(200));
        drop(s); // the client goes away
    }
    // Both clients are gone; a new one must be served.
    let served = eventually(Duration::from_secs(5), || {
        let Ok(mut s) = TcpStream::connect(&master.addr) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(&resp(&[b"PING"])).is_err() {
            return false;
        }
        let mut got = [0u8; 7];
        s.read_exact(&mut got).is_ok() && &got == b"+PONG\r\n"
    });
    let mut last = Vec::new();
    if !served {
        let mut s = TcpStream::connect(&master.addr)?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        let _ = s.write_all(&resp(&[b"PING"]));
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap_or(0);
        last = buf[..n].to_vec();
    }
    assert!(
        served,
        "no client is connected, yet a new one gets {:?}: the two disconnected WAIT clients still hold their places",
        String::from_utf8_lossy(&last)
    );
    Ok(())
}
