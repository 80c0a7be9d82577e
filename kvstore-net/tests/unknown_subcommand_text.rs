//! The `COMMAND` (and `CLIENT`) unknown-subcommand error prints the subcommand as Redis does,
//! with `%.128s` (commandCheckExistence in server.c:
//! "unknown subcommand '%.128s'. Try %s HELP."): at most 128 bytes, up to the first NUL.
//! It used to echo the whole argument (up to the request limit) back in one error line.
//!
//! redis-server 7.0.15, observed:
//!   COMMAND <200 x 'x'>  -> -ERR unknown subcommand '<128 x 'x'>'. Try COMMAND HELP.
//!   COMMAND a\0b         -> -ERR unknown subcommand 'a'. Try COMMAND HELP.
//! kvstore sent all 200 bytes, and 'a\0b'.

mod common;

use common::{resp, TestResult, TestServer};

#[test]
fn a_long_unknown_subcommand_is_cut_at_128_bytes() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    c.stream
        .set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
    let long = vec![b'x'; 200];
    let mut expected = b"-ERR unknown subcommand '".to_vec();
    expected.extend(vec![b'x'; 128]);
    expected.extend(b"'. Try COMMAND HELP.\r\n");
    c.check(&resp(&[b"COMMAND", &long]), &expected)
}

#[test]
fn an_unknown_subcommand_is_shown_up_to_its_first_nul() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    c.stream
        .set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
    c.check(
        &resp(&[b"COMMAND", b"a\x00b"]),
        b"-ERR unknown subcommand 'a'. Try COMMAND HELP.\r\n",
    )
}
