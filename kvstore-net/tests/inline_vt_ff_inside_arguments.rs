//! Inline requests split as Redis's `sdssplitargs` does (as inline.rs promises).
//!
//! In `sdssplitargs` an *unquoted* token ends only at ' ', '\n', '\r', '\t' or NUL; the
//! vertical tab (0x0b) and form feed (0x0c) are skipped only *between* tokens (`isspace`)
//! but are ordinary bytes inside a token. redis-server 7.0.15, observed:
//!
//!   "SET vt a\x0bb\r\nGET vt\r\n" -> "+OK\r\n$3\r\na\x0bb\r\n"
//!   "SET ff a\x0cb\r\nGET ff\r\n" -> "+OK\r\n$3\r\na\x0cb\r\n"
//!
//! kvstore used to split the token in two (`SET vt a b`) and answer `-ERR syntax error`, so a
//! value that Redis stores was refused (and, with `PUT`/`ECHO`, the wrong arguments ran).

mod common;

use common::{TestResult, TestServer};

#[test]
fn vertical_tab_inside_an_unquoted_token_is_part_of_it() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    c.check(b"SET vt a\x0bb\r\nGET vt\r\n", b"+OK\r\n$3\r\na\x0bb\r\n")?;
    Ok(())
}

#[test]
fn form_feed_inside_an_unquoted_token_is_part_of_it() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    c.check(b"SET ff a\x0cb\r\nGET ff\r\n", b"+OK\r\n$3\r\na\x0cb\r\n")?;
    Ok(())
}

#[test]
fn echo_with_a_vertical_tab_gets_one_argument() -> TestResult {
    // redis-server 7.0.15: "ECHO a\x0bb\r\n" -> "$3\r\na\x0bb\r\n" (one argument); kvstore
    // runs ECHO with two arguments and answers the arity error instead.
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    c.check(b"ECHO a\x0bb\r\n", b"$3\r\na\x0bb\r\n")?;
    // Leading VT/FF are blanks in both (this part already matches).
    c.check(b"\x0b\x0cECHO x\r\n", b"$1\r\nx\r\n")?;
    Ok(())
}
