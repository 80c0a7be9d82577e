//! `Connection::read_frame_within` sets the socket's read timeout to the time left before
//! each read, and puts back the caller's when it returns: it used to leave it, so a later
//! `read_frame` (documented to wait for the next reply; the caller set no read timeout)
//! failed with the leftover of the earlier deadline.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use kvstore_net::{Connection, ReadError};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn read_frame_after_read_frame_within_waits_as_configured() -> TestResult {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr: SocketAddr = listener.local_addr()?;
    let peer = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut socket, _) = listener.accept()?;
        socket.write_all(b"+FIRST\r\n")?;
        // The second reply comes later than the first call's limit would allow.
        std::thread::sleep(Duration::from_millis(700));
        socket.write_all(b"+SECOND\r\n")?;
        std::thread::sleep(Duration::from_millis(200));
        Ok(())
    });

    let mut conn = Connection::connect(&addr, Duration::from_secs(2))?;
    conn.set_read_timeout(None)?; // wait for as long as it takes
    let first = conn.read_frame_within(Duration::from_millis(300));
    assert!(matches!(first, Ok(Some(_))), "first reply: {first:?}");

    let second = conn.read_frame();
    let shown = match &second {
        Ok(frame) => format!("Ok({frame:?})"),
        Err(ReadError::Io(e)) => format!("Io({:?}: {e})", e.kind()),
        Err(other) => format!("{other:?}"),
    };
    peer.join().map_err(|_| "peer panicked")??;
    assert!(
        matches!(second, Ok(Some(_))),
        "read_frame with no read timeout set gave {shown}: the 300 ms deadline of the \
         previous read_frame_within stayed on the socket"
    );
    Ok(())
}
