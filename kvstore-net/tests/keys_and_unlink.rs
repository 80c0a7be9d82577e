//! `KEYS pattern` (every matching key, in key order here; Redis's order is its hash table's)
//! and `UNLINK` (Redis's background `DEL`; here the same delete), which operators' tools and
//! client libraries send.

mod common;

use common::*;

#[test]
fn keys_lists_the_matching_keys() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    let mut load = Vec::new();
    for key in ["user:2", "user:1", "order:1", "user:10", "usex"] {
        load.extend(resp(&[b"SET", key.as_bytes(), b"v"]));
    }
    c.send(&load)?;
    c.read_lines(5)?;
    c.check(
        &resp(&[b"KEYS", b"user:*"]),
        b"*3\r\n$6\r\nuser:1\r\n$7\r\nuser:10\r\n$6\r\nuser:2\r\n",
    )?;
    c.check(
        &resp(&[b"KEYS", b"user:?"]),
        b"*2\r\n$6\r\nuser:1\r\n$6\r\nuser:2\r\n",
    )?;
    c.check(&resp(&[b"KEYS", b"nothing*"]), b"*0\r\n")?;
    c.check(
        &resp(&[b"KEYS", b"*"]),
        b"*5\r\n$7\r\norder:1\r\n$6\r\nuser:1\r\n$7\r\nuser:10\r\n$6\r\nuser:2\r\n$4\r\nusex\r\n",
    )?;
    c.check(
        &resp(&[b"KEYS"]),
        b"-ERR wrong number of arguments for 'keys' command\r\n",
    )
}

#[test]
fn keys_over_the_reply_limit_is_refused() -> TestResult {
    let server = TestServer::start_with(|c| c.max_reply_bytes(10_000))?;
    let mut c = server.raw()?;
    let mut load = Vec::new();
    for i in 0..2_000 {
        load.extend(resp(&[b"SET", format!("key:{i:05}").as_bytes(), b"v"]));
    }
    c.send(&load)?;
    c.read_lines(2_000)?;
    c.check(
        &resp(&[b"KEYS", b"key:*"]),
        b"-ERR reply exceeds the limit of 10000 bytes; use SCAN with MATCH instead\r\n",
    )?;
    c.check(&resp(&[b"KEYS", b"key:0000?"]), &{
        let mut want = b"*10\r\n".to_vec();
        for i in 0..10 {
            want.extend(format!("$9\r\nkey:0000{i}\r\n").as_bytes());
        }
        want
    })
}

#[test]
fn unlink_deletes_as_del_does() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    c.check(&resp(&[b"MSET", b"a", b"1", b"b", b"2"]), b"+OK\r\n")?;
    c.check(&resp(&[b"UNLINK", b"a", b"b", b"c"]), b":2\r\n")?;
    c.check(&resp(&[b"EXISTS", b"a", b"b"]), b":0\r\n")?;
    // Pipelined, in one commit group, and queued in a transaction.
    c.check(
        &[
            resp(&[b"SET", b"x", b"1"]),
            resp(&[b"UNLINK", b"x"]),
            resp(&[b"UNLINK", b"x"]),
        ]
        .concat(),
        b"+OK\r\n:1\r\n:0\r\n",
    )?;
    c.check(
        &[
            resp(&[b"SET", b"y", b"1"]),
            resp(&[b"MULTI"]),
            resp(&[b"UNLINK", b"y"]),
            resp(&[b"EXEC"]),
        ]
        .concat(),
        b"+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n:1\r\n",
    )
}
