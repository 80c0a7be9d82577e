//! The "unknown command" error text is Redis's.
//!
//! Redis 7.0 (server.c, processCommand → commandCheckExistence) builds it as
//!   "unknown command '%.128s', with args beginning with: " + for each arg while the
//!   args text is < 128 bytes: "'%.*s' " (the arg cut to what is left of the 128),
//! and addReplyErrorFormat only turns '\r' and '\n' into spaces: every other byte (tab,
//! UTF-8, …) is sent as is. kvstore used to show at most 8 arguments whatever their length,
//! never cut them to the 128-byte budget, and escape every byte outside 0x20..0x7e
//! (including CR/LF, tab and UTF-8) as `\xNN`. Replies observed on redis-server 7.0.15 are
//! asserted below.

mod common;

use common::{resp, TestResult, TestServer};

#[test]
fn all_short_arguments_are_shown_not_only_eight() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    c.check(
        &resp(&[b"FOO", b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8", b"9"]),
        b"-ERR unknown command 'FOO', with args beginning with: '0' '1' '2' '3' '4' '5' '6' '7' '8' '9' \r\n",
    )
}

#[test]
fn arguments_share_a_128_byte_budget() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    let a = vec![b'a'; 100];
    let b = vec![b'b'; 100];
    let mut expected = b"-ERR unknown command 'FOO', with args beginning with: '".to_vec();
    expected.extend_from_slice(&a);
    expected.extend_from_slice(b"' '");
    expected.extend_from_slice(&b[..25]);
    expected.extend_from_slice(b"' \r\n");
    c.check(&resp(&[b"FOO", &a, &b]), &expected)
}

#[test]
fn cr_lf_become_spaces_and_other_bytes_are_sent_as_they_are() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    c.check(
        &resp(&[b"FOO", b"a\r\nb"]),
        b"-ERR unknown command 'FOO', with args beginning with: 'a  b' \r\n",
    )?;
    c.check(
        &resp(&[b"FOO", b"a\tb", "\u{e9}".as_bytes()]),
        "-ERR unknown command 'FOO', with args beginning with: 'a\tb' '\u{e9}' \r\n".as_bytes(),
    )
}
