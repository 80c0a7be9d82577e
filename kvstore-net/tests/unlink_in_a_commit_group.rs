//! UNLINK is "the same delete" as DEL (cmd/del.rs), also in an event loop's commit group: a
//! DEL of a key the round's group already writes waits for the group's commit "so that it
//! counts that write" (event_loop/dispatch.rs `join_group`). UNLINK joined the group as a
//! delete, but `keys_read_by_write` knew only DEL and DELETE, so an UNLINK was counted when it
//! was prepared, against what was committed: two UNLINKs of one key in one round both
//! answered 1.
//!
//! The ordering is forced, not timed: one event loop (`io_threads(1)`) is kept busy by a
//! slow inline `SCAN … MATCH` on a third connection while both UNLINKs arrive, so the loop
//! takes both in its next round (the same round, one group).

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{resp, TestResult, TestServer};

/// A 60 000-byte key of `a`s, and a pattern `*aaa…ab` of `n` `a`s: matching costs about
/// `n × key` byte comparisons (glob.rs: O(pattern × key)), so the SCAN takes a while.
fn slow_scan(n: usize) -> Vec<u8> {
    let mut pattern = b"*".to_vec();
    pattern.extend(std::iter::repeat_n(b'a', n));
    pattern.push(b'b');
    resp(&[b"SCAN", b"0", b"MATCH", &pattern, b"COUNT", b"100"])
}

fn read_until_idle(stream: &mut std::net::TcpStream, want_lines: usize) -> TestResult<String> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.windows(2).filter(|w| w == b"\r\n").count() < want_lines {
        match stream.read(&mut buf)? {
            0 => break,
            n => got.extend_from_slice(&buf[..n]),
        }
    }
    Ok(String::from_utf8_lossy(&got).into_owned())
}

fn int_reply(text: &str) -> TestResult<i64> {
    text.trim()
        .strip_prefix(':')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("not an integer reply: {text:?}").into())
}

/// Two clients delete one key "at once" (in one event-loop round): exactly one of them
/// removed it, so the counts add up to 1, with `verb`.
fn two_deletes_of_one_key(verb: &[u8]) -> TestResult<(i64, i64)> {
    let server = TestServer::start_with(|c| c.io_threads(1))?;
    let mut setup = server.raw()?;
    let key = vec![b'a'; 60_000];
    setup.check(&resp(&[b"SET", &key, b"x"]), b"+OK\r\n")?;
    setup.check(&resp(&[b"SET", b"victim", b"1"]), b"+OK\r\n")?;

    // Calibrate the busy SCAN to about two seconds.
    let probe_n = 2_000;
    let started = Instant::now();
    setup.send(&slow_scan(probe_n))?;
    read_until_idle(&mut setup.stream, 3)?;
    let per_a = started.elapsed().as_secs_f64() / probe_n as f64;
    let n = ((2.0 / per_a) as usize).clamp(probe_n, 59_000);

    let mut busy = server.raw()?;
    let mut first = server.raw()?;
    let mut second = server.raw()?;
    // Connected and registered with the loop before it gets busy.
    first.check(&resp(&[b"PING"]), b"+PONG\r\n")?;
    second.check(&resp(&[b"PING"]), b"+PONG\r\n")?;

    busy.send(&slow_scan(n))?;
    std::thread::sleep(Duration::from_millis(300));
    // Both arrive while the loop is inside the SCAN: its next round takes them together.
    first.send(&resp(&[verb, b"victim"]))?;
    second.send(&resp(&[verb, b"victim"]))?;
    let scanned = read_until_idle(&mut busy.stream, 3)?;
    assert!(scanned.starts_with("*2\r\n"), "{scanned:?}");
    let a = int_reply(&read_until_idle(&mut first.stream, 1)?)?;
    let b = int_reply(&read_until_idle(&mut second.stream, 1)?)?;
    setup.check(&resp(&[b"EXISTS", b"victim"]), b":0\r\n")?;
    Ok((a, b))
}

#[test]
fn two_dels_of_one_key_in_one_round_count_it_once() -> TestResult {
    let (a, b) = two_deletes_of_one_key(b"DEL")?;
    assert_eq!(a + b, 1, "DEL replies {a} and {b}");
    Ok(())
}

#[test]
fn two_unlinks_of_one_key_in_one_round_count_it_once() -> TestResult {
    let (a, b) = two_deletes_of_one_key(b"UNLINK")?;
    assert_eq!(
        a + b,
        1,
        "one key existed and two UNLINKs both answered that they removed it: {a} and {b}"
    );
    Ok(())
}
