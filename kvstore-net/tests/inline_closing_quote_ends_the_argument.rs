//! A closing quote ends the argument, also when a vertical tab or form feed follows it.
//!
//! In Redis's `sdssplitargs` a closing quote must be followed by `isspace()` (VT and FF
//! included) or the end; the token then ENDS, and the VT/FF is skipped as a blank before the
//! next token. Once kvstore's inline.rs ended unquoted tokens only at ' ', '\t', '\r', '\n',
//! the loop that went on after a closing quote appended the VT/FF to the quoted argument and
//! glued whatever followed onto it.
//!
//! redis-server 7.0.15, observed:
//!   ECHO "a"\x0c\r\n     -> $1\r\na\r\n
//!   ECHO 'a'\x0c\r\n     -> $1\r\na\r\n
//!   ECHO "a"\x0bb\r\n    -> -ERR wrong number of arguments for 'echo' command\r\n  (two args)
//!   SET k "v"\x0c  / GET k -> +OK $1 v
//! kvstore answered: $2 a\x0c / $2 a\x0c / $3 a\x0bb / stored "v\x0c".

mod common;

use common::{TestResult, TestServer};

#[test]
fn form_feed_after_a_closing_double_quote_ends_the_argument() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    // The wrong reply is shorter than the right one: do not wait the default 10 s for it.
    c.stream
        .set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
    c.check(b"ECHO \"a\"\x0c\r\n", b"$1\r\na\r\n")
}

#[test]
fn form_feed_after_a_closing_single_quote_ends_the_argument() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    // The wrong reply is shorter than the right one: do not wait the default 10 s for it.
    c.stream
        .set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
    c.check(b"ECHO 'a'\x0c\r\n", b"$1\r\na\r\n")
}

#[test]
fn vertical_tab_after_a_closing_quote_separates_two_arguments() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    // The wrong reply is shorter than the right one: do not wait the default 10 s for it.
    c.stream
        .set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
    c.check(
        b"ECHO \"a\"\x0bb\r\n",
        b"-ERR wrong number of arguments for 'echo' command\r\n",
    )
}

#[test]
fn value_stored_from_a_quoted_token_has_no_trailing_form_feed() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    // The wrong reply is shorter than the right one: do not wait the default 10 s for it.
    c.stream
        .set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
    c.check(b"SET k \"v\"\x0c\r\nGET k\r\n", b"+OK\r\n$1\r\nv\r\n")
}
