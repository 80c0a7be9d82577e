//! `SHUTDOWN` in an embedded server: refused until the program running the server takes
//! its [`ShutdownRequest`](kvstore_net::ShutdownRequest), then handed to that program, which
//! alone stops the server; refused before `AUTH`.

mod common;

use std::time::Duration;

use common::{resp, TestResult, TestServer};

#[test]
fn shutdown_is_refused_until_the_program_takes_requests() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    c.check(
        &resp(&[b"SHUTDOWN"]),
        b"-ERR Errors trying to SHUTDOWN. Check logs.\r\n",
    )?;
    c.check(&resp(&[b"SHUTDOWN", b"sometime"]), b"-ERR syntax error\r\n")?;
    c.check(
        &resp(&[b"SHUTDOWN", b"ABORT", b"NOW"]),
        b"-ERR syntax error\r\n",
    )?;
    let handle = server.handle.as_ref().ok_or("no server")?;
    let request = handle.shutdown_request();
    // The refused SHUTDOWN left nothing behind for the new taker to act on.
    assert!(!request.is_requested());
    let waiter = {
        let request = request.clone();
        std::thread::spawn(move || request.wait())
    };
    c.send(&resp(&[b"SHUTDOWN"]))?;
    assert!(c.is_closed()?, "SHUTDOWN answered instead of hanging up");
    let reason = waiter.join().map_err(|_| "the waiter panicked")?;
    assert!(reason.starts_with("SHUTDOWN from 127.0.0.1:"), "{reason}");
    // The server runs until its program stops it.
    let mut other = server.client()?;
    other.set(b"still", b"serving")?;
    assert_eq!(other.get(b"still")?, Some(b"serving".to_vec()));
    Ok(())
}

#[test]
fn shutdown_needs_auth_and_a_signal_thread_can_request_too() -> TestResult {
    let server = TestServer::start_with(|c| c.requirepass(Some("secret".into())))?;
    let handle = server.handle.as_ref().ok_or("no server")?;
    let request = handle.shutdown_request();
    let mut c = server.raw()?;
    c.check(
        &resp(&[b"SHUTDOWN"]),
        b"-NOAUTH Authentication required.\r\n",
    )?;
    assert!(!request.is_requested());
    let from_signal = request.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        from_signal.request("signal 15");
    });
    assert_eq!(request.wait(), "signal 15");
    // The first reason is the one kept.
    request.request("later");
    assert_eq!(request.wait(), "signal 15");
    Ok(())
}
