//! `SCAN … MATCH` character classes read as Redis's `stringmatchlen` reads them.
//!
//! In Redis's `stringmatchlen` (util.c), inside `[...]`:
//! - `\c` matches the literal `c` and is never the start of a range, so `[\a-c]` is the set
//!   {a, '-', c};
//! - `x-y` is a range whenever two more pattern bytes follow, *including* `]`: `[a-]` is the
//!   range `]`..`a` (0x5d..0x61), `[x-]` the range `]`..`x`, `[--]` the range `-`..`]`.
//!
//! kvstore's `class()` used to apply the escape and then still read `\a-c` as the range a..c,
//! and to treat a `-` before `]` as a literal dash.
//!
//! Observed on redis-server 7.0.15 with keys - ] ^ a b c x x-y \ (SCAN 0 MATCH p COUNT
//! 1000; the key sets are shown here in kvstore's key order):
//!   [\a-c] -> - a c        kvstore: a b c
//!   [a-]   -> ] ^ a        kvstore: - a
//!   [x-]   -> ] ^ a b c x  kvstore: - x
//!   [--]   -> - \ ]        kvstore: -
//! A client that scans with a pattern built from user input gets other keys than on Redis.

mod common;

use common::{resp, Raw, TestResult, TestServer};

const KEYS: &[&[u8]] = &[b"-", b"]", b"^", b"a", b"b", b"c", b"x", b"x-y", b"\\"];

fn seeded() -> TestResult<(TestServer, Raw)> {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    let mut mset: Vec<&[u8]> = vec![b"MSET"];
    for k in KEYS {
        mset.push(k);
        mset.push(b"1");
    }
    c.check(&resp(&mset), b"+OK\r\n")?;
    Ok((server, c))
}

/// The reply of a finished SCAN holding exactly `keys` (in key order).
fn scan_reply(keys: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*2\r\n$1\r\n0\r\n*{}\r\n", keys.len()).into_bytes();
    for k in keys {
        out.extend_from_slice(format!("${}\r\n", k.len()).as_bytes());
        out.extend_from_slice(k);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn scan(c: &mut Raw, pattern: &[u8], expected: &[&[u8]]) -> TestResult {
    c.send(&resp(&[
        b"SCAN", b"0", b"MATCH", pattern, b"COUNT", b"1000",
    ]))?;
    let want = String::from_utf8_lossy(&scan_reply(expected)).into_owned();
    let lines = want.matches("\r\n").count();
    let got = c.read_lines(lines)?;
    assert_eq!(got, want, "SCAN 0 MATCH {}", pattern.escape_ascii());
    Ok(())
}

#[test]
fn an_escaped_byte_in_a_class_does_not_start_a_range() -> TestResult {
    let (_server, mut c) = seeded()?;
    // redis-server 7.0.15: [\a-c] is {a, -, c}; "b" does not match.
    scan(&mut c, b"[\\a-c]", &[b"-", b"a", b"c"])
}

#[test]
fn a_dash_before_the_closing_bracket_makes_a_range_as_in_redis() -> TestResult {
    let (_server, mut c) = seeded()?;
    // redis-server 7.0.15: [a-] is the range ']'..'a'; "-" does not match.
    scan(&mut c, b"[a-]", &[b"]", b"^", b"a"])?;
    // [--] is the range '-'..']'.
    scan(&mut c, b"[--]", &[b"-", b"\\", b"]"])
}
