//! `master_link_status` on a replica follows the master's connections: a connection counts
//! once however many `REPLICATE HELLO`s it sends, and the link is down once it is closed. A
//! second HELLO on one connection used to count it twice and leave the link "up" for ever
//! after it closed. Found in review.

mod common;

use std::time::Duration;

use common::{eventually, info_field, resp, TestResult, TestServer};

#[test]
fn the_link_is_down_once_the_masters_connection_is_gone() -> TestResult {
    let server = TestServer::start_with(|c| c.replica(true))?;
    let mut client = server.client()?;
    assert_eq!(
        info_field(&mut client, "replication", "master_link_status")?,
        "down"
    );
    let mut link = server.raw()?;
    let hello = resp(&[b"REPLICATE", b"HELLO", b"127.0.0.1:7000", b"1", b"0"]);
    link.check_hello(&hello, [0, 1, -1, 0])?;
    link.check_hello(&hello, [0, 1, -1, 0])?;
    assert_eq!(
        info_field(&mut client, "replication", "master_link_status")?,
        "up"
    );
    drop(link);
    let down = eventually(Duration::from_secs(10), || {
        info_field(&mut client, "replication", "master_link_status").ok()
            == Some("down".to_string())
    });
    assert!(down, "no connection is open, yet the link is reported up");
    Ok(())
}
