//! A member of an event loop's commit group whose batch the store would refuse (a key over
//! `MAX_KEY_BYTES`) is refused when planned, and the members planned after it do not see it.
//! It used to go into the group's view anyway: later members saw writes that never happened
//! and committed values derived from them.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{resp, TestResult, TestServer};

fn huge_key() -> Vec<u8> {
    vec![b'k'; (64 << 10) + 1]
}

/// One connection, one packet: the MSETNX is refused, so `a` is never set; the SETNX after it
/// (planned in the same group) must set it.
#[test]
fn refused_msetnx_is_not_seen_by_a_later_setnx_of_the_same_group() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    let mut packet = resp(&[b"MSETNX", b"a", b"1", &huge_key(), b"2"]);
    packet.extend(resp(&[b"SETNX", b"a", b"x"]));
    packet.extend(resp(&[b"GET", b"a"]));
    c.send(&packet)?;
    let got = c.read_lines(4)?;
    assert_eq!(
        got,
        "-ERR key of 65537 bytes exceeds the maximum of 65536 bytes\r\n:1\r\n$1\r\nx\r\n"
    );
    Ok(())
}

/// The INCR after a refused MSETNX must start from no value, and must not commit 42.
#[test]
fn refused_msetnx_is_not_seen_by_a_later_incr_of_the_same_group() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    let mut packet = resp(&[b"MSETNX", b"n", b"41", &huge_key(), b"v"]);
    packet.extend(resp(&[b"INCR", b"n"]));
    packet.extend(resp(&[b"GET", b"n"]));
    c.send(&packet)?;
    let got = c.read_lines(4)?;
    assert_eq!(
        got,
        "-ERR key of 65537 bytes exceeds the maximum of 65536 bytes\r\n:1\r\n$1\r\n1\r\n"
    );
    Ok(())
}

/// Two connections: a refused MSET (blind, in the group) and an INCR of one of its keys from
/// another connection in the same round. The INCR must not count from the refused value.
/// A third connection keeps the loop busy so that both land in one round.
#[test]
fn refused_mset_is_not_seen_by_another_connections_incr() -> TestResult {
    let server = TestServer::start()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut trial = 0;
    while Instant::now() < deadline && trial < 30 {
        trial += 1;
        let key = format!("ctr{trial}").into_bytes();
        let mut busy = server.raw()?;
        let mut a = server.raw()?;
        let mut b = server.raw()?;
        let mut reader = busy.stream.try_clone()?;
        let pings: usize = 50_000;
        let drain = std::thread::spawn(move || {
            let mut left = pings * 7;
            let mut buf = vec![0u8; 1 << 16];
            while left > 0 {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => left = left.saturating_sub(n),
                }
            }
        });
        busy.send(&b"PING\r\n".repeat(pings))?;
        std::thread::sleep(Duration::from_millis(2));
        a.send(&resp(&[b"MSET", &key, b"41", &huge_key(), b"v"]))?;
        b.send(&resp(&[b"INCR", &key]))?;
        let got_a = a.read_lines(1)?;
        let got_b = b.read_lines(1)?;
        drain.join().map_err(|_| "drain panicked")?;
        assert!(got_a.starts_with("-ERR key of"), "{got_a:?}");
        // The MSET never happened: INCR counts from no value (or, had it run first, 42
        // would need the MSET to have committed, which it did not).
        assert_eq!(
            got_b, ":1\r\n",
            "trial {trial}: INCR saw the refused MSET's value"
        );
    }
    Ok(())
}
