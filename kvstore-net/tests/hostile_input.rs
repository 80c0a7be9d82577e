//! Hostile input: each case gets an error reply (or a closed connection), the server stays up
//! and the stored data is exactly what it was.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{resp, Raw, TestResult, TestServer};
use rand::{Rng, SeedableRng};

fn seeded() -> TestResult<(TestServer, String)> {
    let server = TestServer::start_with(|c| c.max_clients(400))?;
    let mut client = server.client()?;
    for i in 0..50 {
        client.set(format!("key{i}").as_bytes(), format!("value{i}").as_bytes())?;
    }
    let digest = client.digest()?;
    Ok((server, digest))
}

fn assert_untouched(server: &TestServer, digest: &str) -> TestResult {
    let mut client = server.client()?;
    assert_eq!(client.integer(&["DBSIZE"])?, 50);
    assert_eq!(client.digest()?, digest);
    Ok(())
}

/// Sends `bytes`, expects exactly `reply`, then the server closes the connection.
fn refused(server: &TestServer, bytes: &[u8], reply: &[u8]) -> TestResult {
    let mut c = server.raw()?;
    c.check(bytes, reply)?;
    assert!(c.is_closed()?, "connection left open after {reply:?}");
    Ok(())
}

#[test]
fn malformed_lengths_are_refused_without_allocating() -> TestResult {
    let (server, digest) = seeded()?;
    refused(
        &server,
        b"*1\r\n$-5\r\n",
        b"-ERR Protocol error: invalid bulk length\r\n",
    )?;
    refused(
        &server,
        b"*1\r\n$abc\r\n",
        b"-ERR Protocol error: invalid bulk length\r\n",
    )?;
    refused(
        &server,
        b"*x\r\n",
        b"-ERR Protocol error: invalid multibulk length\r\n",
    )?;
    refused(
        &server,
        b"*99999999999\r\n",
        b"-ERR Protocol error: multibulk length 99999999999 exceeds the limit of 1048576 arguments\r\n",
    )?;
    // A declared 1 GB value is refused at its header, before a byte of it is sent.
    refused(
        &server,
        b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$1073741824\r\n",
        b"-ERR Protocol error: bulk length 1073741824 exceeds the limit of 67108864 bytes\r\n",
    )?;
    refused(
        &server,
        b"*1\r\n$99999999999999999999999\r\n",
        b"-ERR Protocol error: invalid bulk length\r\n",
    )?;
    refused(
        &server,
        b"*2\r\n$3\r\nGET\r\n$1\r\nkXY",
        b"-ERR Protocol error: expected CRLF after bulk data\r\n",
    )?;
    assert_untouched(&server, &digest)
}

#[test]
fn nested_arrays_and_non_bulk_elements_are_refused() -> TestResult {
    let (server, digest) = seeded()?;
    refused(
        &server,
        b"*1\r\n*1\r\n$3\r\nDEL\r\n",
        b"-ERR Protocol error: expected '$', got '*'\r\n",
    )?;
    refused(
        &server,
        b"*2\r\n$3\r\nDEL\r\n:5\r\n",
        b"-ERR Protocol error: expected '$', got ':'\r\n",
    )?;
    assert_untouched(&server, &digest)
}

#[test]
fn truncated_frames_change_nothing() -> TestResult {
    let (server, digest) = seeded()?;
    let full = resp(&[b"SET", b"key1", b"overwritten"]);
    for cut in [1, 4, 10, full.len() - 3, full.len() - 1] {
        let mut c = server.raw()?;
        c.send(&full[..cut])?;
        drop(c);
    }
    let del = resp(&[b"DEL", b"key1", b"key2"]);
    let mut c = server.raw()?;
    c.send(&del[..del.len() - 2])?;
    c.stream.shutdown(std::net::Shutdown::Write)?;
    assert!(c.is_closed()?);
    std::thread::sleep(Duration::from_millis(50));
    assert_untouched(&server, &digest)
}

#[test]
fn a_long_line_without_newline_is_refused() -> TestResult {
    let (server, digest) = seeded()?;
    let mut c = server.raw()?;
    let mut writer = c.stream.try_clone()?;
    let sender = std::thread::spawn(move || {
        // The server stops reading after its limit: later writes may fail, which is expected.
        let _ = writer.write_all(&vec![b'A'; 2 << 20]);
    });
    c.expect(b"-ERR Protocol error: too big inline request (limit 65536 bytes)\r\n")?;
    assert!(c.is_closed()?);
    drop(c);
    let _ = sender.join();
    assert_untouched(&server, &digest)
}

#[test]
fn binary_garbage_never_breaks_the_server() -> TestResult {
    let (server, digest) = seeded()?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for round in 0..40 {
        let len = rng.random_range(1..4096);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        // Keep the stored keys out of reach of accidental inline commands.
        for b in bytes.iter_mut() {
            if b.is_ascii_alphabetic() {
                *b = b'#';
            }
        }
        if round % 2 == 0 {
            bytes[0] = b'*';
        }
        let mut c = server.raw()?;
        c.stream
            .set_read_timeout(Some(Duration::from_millis(300)))?;
        let _ = c.stream.write_all(&bytes);
        let _ = c.stream.shutdown(std::net::Shutdown::Write);
        let _ = c.is_closed();
    }
    assert_untouched(&server, &digest)
}

#[test]
fn hundreds_of_idle_connections_and_the_connection_limit() -> TestResult {
    let (server, digest) = seeded()?;
    let idle: Vec<Raw> = (0..390).map(|_| server.raw()).collect::<TestResult<_>>()?;
    let mut busy = server.raw()?;
    busy.check(&resp(&[b"GET", b"key7"]), b"$6\r\nvalue7\r\n")?;
    // 392 connections are open (the seeding client closed); fill up to the limit of 400.
    let filler: Vec<Raw> = (0..9).map(|_| server.raw()).collect::<TestResult<_>>()?;
    let mut extra = server.raw()?;
    extra.expect(b"-ERR max number of clients reached\r\n")?;
    assert!(extra.is_closed()?);
    busy.check(&resp(&[b"PING"]), b"+PONG\r\n")?;
    drop(filler);
    drop(idle);
    assert!(common::eventually(Duration::from_secs(5), || {
        server
            .client()
            .and_then(|mut c| Ok(c.integer(&["DBSIZE"])?))
            .is_ok()
    }));
    assert_untouched(&server, &digest)
}

/// Before `AUTH`, a connection to a server with a password may send no more than 10
/// arguments and 16 KiB per bulk, as Redis allows (CVE-2021-32675): anyone who could connect
/// could otherwise make the server buffer 128 MiB per connection (six such connections grew
/// the server by 768 MiB, found in review). Once authenticated it gets the full limits.
#[test]
fn connections_that_have_not_authenticated_get_tight_limits() -> TestResult {
    let server = TestServer::start_with(|c| c.requirepass(Some("s3cret".into())))?;
    let mut big = server.raw()?;
    big.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$67108864\r\n")?;
    big.expect(b"-ERR Protocol error: bulk length 67108864 exceeds the limit of 16384 bytes\r\n")?;
    assert!(big.is_closed()?);
    let mut many = server.raw()?;
    many.send(b"*11\r\n")?;
    many.expect(b"-ERR Protocol error: multibulk length 11 exceeds the limit of 10 arguments\r\n")?;
    assert!(many.is_closed()?);
    let mut inline = server.raw()?;
    inline.send(&vec![b'a'; 20 << 10])?;
    inline.expect(b"-ERR Protocol error: too big inline request (limit 16384 bytes)\r\n")?;
    assert!(inline.is_closed()?);

    let mut c = server.raw()?;
    let value = vec![b'v'; 1 << 20];
    let mut requests = resp(&[b"AUTH", b"s3cret"]);
    requests.extend(resp(&[b"SET", b"k", &value]));
    c.check(&requests, b"+OK\r\n+OK\r\n")?;
    let mut hello = server.raw()?;
    hello.send(&resp(&[b"HELLO", b"2", b"AUTH", b"default", b"s3cret"]))?;
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while !reply.ends_with(b"$7\r\nmodules\r\n*0\r\n") {
        std::io::Read::read_exact(&mut hello.stream, &mut byte)?;
        reply.push(byte[0]);
    }
    hello.check(&resp(&[b"SET", b"k2", &value]), b"+OK\r\n")?;
    Ok(())
}
