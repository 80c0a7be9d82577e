//! Replies gathered from many values stay within `max_reply_bytes`: MGET and RANGE refuse
//! with an error (nothing partial), SCAN ends its page early and resumes where it stopped.

mod common;

use std::collections::BTreeSet;

use common::{resp, TestResult, TestServer};
use kvstore_core::SyncPolicy;
use kvstore_net::Frame;

fn server() -> TestResult<TestServer> {
    TestServer::start_with(|c| c.max_reply_bytes(1000).sync_policy(SyncPolicy::Never))
}

/// `MGET big big big …` used to build a reply of (count × value size) bytes: one 64 MiB
/// value named 1,000 times in a 10 KB request asked the server for 64 GB.
#[test]
fn mget_refuses_a_reply_over_the_limit() -> TestResult {
    let server = server()?;
    let mut c = server.raw()?;
    let value = vec![b'v'; 600];
    c.check(&resp(&[b"SET", b"big", &value]), b"+OK\r\n")?;
    let mut one = b"*2\r\n$600\r\n".to_vec();
    one.extend_from_slice(&value);
    one.extend_from_slice(b"\r\n$-1\r\n");
    c.check(&resp(&[b"MGET", b"big", b"missing"]), &one)?;
    c.check(
        &resp(&[b"MGET", b"big", b"missing", b"big"]),
        b"-ERR reply exceeds the limit of 1000 bytes; ask for fewer keys\r\n",
    )?;
    c.check(&resp(&[b"PING"]), b"+PONG\r\n")?;
    Ok(())
}

#[test]
fn range_refuses_a_reply_over_the_limit() -> TestResult {
    let server = server()?;
    let mut c = server.raw()?;
    let value = vec![b'v'; 600];
    c.check(&resp(&[b"MSET", b"a", &value, b"b", &value]), b"+OK\r\n")?;
    c.check(
        &resp(&[b"RANGE", b"", b""]),
        b"-ERR reply exceeds the limit of 1000 bytes; lower LIMIT\r\n",
    )?;
    let mut first = b"*2\r\n$1\r\na\r\n$600\r\n".to_vec();
    first.extend_from_slice(&value);
    first.extend_from_slice(b"\r\n");
    c.check(&resp(&[b"RANGE", b"", b"", b"LIMIT", b"1"]), &first)?;
    Ok(())
}

#[test]
fn scan_pages_end_at_the_limit_and_miss_nothing() -> TestResult {
    let server = server()?;
    let mut client = server.client()?;
    let mut expected = BTreeSet::new();
    for i in 0..30 {
        let key = format!("{i:03}{}", "k".repeat(97)).into_bytes();
        client.set(&key, b"v")?;
        expected.insert(key);
    }
    let mut seen = BTreeSet::new();
    let mut cursor = "0".to_string();
    let mut pages = 0;
    loop {
        let reply = client.command(&["SCAN", &cursor, "COUNT", "1000"])?;
        let Frame::Array(parts) = reply else {
            return Err(format!("SCAN replied {reply}").into());
        };
        let [Frame::Bulk(next), Frame::Array(keys)] = parts.as_slice() else {
            return Err("SCAN reply is not [cursor, keys]".into());
        };
        // 1000 bytes of 100-byte keys: at most 10 per page.
        assert!(keys.len() <= 10, "a page of {} keys", keys.len());
        for key in keys {
            let Frame::Bulk(key) = key else {
                return Err("a key is not a bulk string".into());
            };
            assert!(seen.insert(key.clone()), "a key returned twice");
        }
        pages += 1;
        cursor = String::from_utf8(next.clone())?;
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen, expected);
    assert!(pages >= 3);
    Ok(())
}
