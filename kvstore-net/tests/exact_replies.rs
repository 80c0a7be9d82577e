//! Every client command and its errors, as raw bytes in and exact bytes out.

mod common;

use common::{resp, TestResult, TestServer};

#[test]
fn data_commands_reply_exactly_like_redis() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    c.check(b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n")?;
    c.check(&resp(&[b"ping", b"hi"]), b"$2\r\nhi\r\n")?;
    c.check(
        &resp(&[b"PING", b"a", b"b"]),
        b"-ERR wrong number of arguments for 'ping' command\r\n",
    )?;
    c.check(&resp(&[b"SET", b"k", b"v\r\n\0"]), b"+OK\r\n")?;
    c.check(&resp(&[b"GET", b"k"]), b"$4\r\nv\r\n\0\r\n")?;
    c.check(&resp(&[b"GET", b"missing"]), b"$-1\r\n")?;
    c.check(
        &resp(&[b"SET", b"k", b"v", b"EX", b"10"]),
        b"-ERR syntax error\r\n",
    )?;
    c.check(
        &resp(&[b"SET", b"k"]),
        b"-ERR wrong number of arguments for 'set' command\r\n",
    )?;
    c.check(&resp(&[b"put", b"k2", b"v2"]), b"+OK\r\n")?;
    c.check(
        &resp(&[b"PUT", b"k2", b"v2", b"x"]),
        b"-ERR wrong number of arguments for 'put' command\r\n",
    )?;
    c.check(&resp(&[b"READ", b"k2"]), b"$2\r\nv2\r\n")?;
    c.check(&resp(&[b"MSET", b"a", b"1", b"b", b"2"]), b"+OK\r\n")?;
    c.check(
        &resp(&[b"MSET", b"a", b"1", b"b"]),
        b"-ERR wrong number of arguments for 'mset' command\r\n",
    )?;
    c.check(&resp(&[b"BATCHPUT", b"c", b"3"]), b"+OK\r\n")?;
    c.check(
        &resp(&[b"MGET", b"a", b"nope", b"c"]),
        b"*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n3\r\n",
    )?;
    c.check(&resp(&[b"EXISTS", b"a", b"nope", b"a"]), b":2\r\n")?;
    c.check(&resp(&[b"DBSIZE"]), b":5\r\n")?;
    c.check(&resp(&[b"DEL", b"a", b"nope", b"a"]), b":1\r\n")?;
    c.check(&resp(&[b"DELETE", b"b"]), b":1\r\n")?;
    c.check(&resp(&[b"DEL", b"b"]), b":0\r\n")?;
    c.check(
        &resp(&[b"DEL"]),
        b"-ERR wrong number of arguments for 'del' command\r\n",
    )?;
    c.check(
        &resp(&[b"RANGE", b"", b""]),
        b"*6\r\n$1\r\nc\r\n$1\r\n3\r\n$1\r\nk\r\n$4\r\nv\r\n\0\r\n$2\r\nk2\r\n$2\r\nv2\r\n",
    )?;
    c.check(
        &resp(&[b"RANGE", b"c", b"k2", b"LIMIT", b"1"]),
        b"*2\r\n$1\r\nc\r\n$1\r\n3\r\n",
    )?;
    c.check(&resp(&[b"RANGE", b"z", b"a"]), b"*0\r\n")?;
    c.check(
        &resp(&[b"RANGE", b"a", b"b", b"LIMIT", b"0"]),
        b"-ERR LIMIT must be between 1 and 100000\r\n",
    )?;
    c.check(
        &resp(&[b"RANGE", b"a", b"b", b"LIMIT", b"x"]),
        b"-ERR value is not an integer or out of range\r\n",
    )?;
    c.check(
        &resp(&[b"RANGE", b"a", b"b", b"SIDEWAYS"]),
        b"-ERR syntax error\r\n",
    )?;
    c.check(&resp(&[b"COMPACT"]), b"+OK\r\n")?;
    c.check(
        &resp(&[b"FOO", b"a", b"b"]),
        b"-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n",
    )?;
    Ok(())
}

/// What `redis-cli --bigkeys` and Redis GUIs ask of the keys they list, and `ECHO`/`TIME`;
/// the bytes were compared with Redis 7.0's for the same requests, inside `MULTI` too.
#[test]
fn key_introspection_replies_exactly_like_redis() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    c.check(&resp(&[b"SET", b"k", b"abc"]), b"+OK\r\n")?;
    for (request, reply) in [
        (&[&b"TYPE"[..], b"k"][..], &b"+string\r\n"[..]),
        (&[b"TYPE", b"nope"], b"+none\r\n"),
        (&[b"STRLEN", b"k"], b":3\r\n"),
        (&[b"STRLEN", b"nope"], b":0\r\n"),
        (&[b"TTL", b"k"], b":-1\r\n"),
        (&[b"TTL", b"nope"], b":-2\r\n"),
        (&[b"PTTL", b"k"], b":-1\r\n"),
        (&[b"PTTL", b"nope"], b":-2\r\n"),
        (&[b"ECHO", b"hi"], b"$2\r\nhi\r\n"),
        (
            &[b"ECHO"],
            b"-ERR wrong number of arguments for 'echo' command\r\n",
        ),
        (
            &[b"ECHO", b"a", b"b"],
            b"-ERR wrong number of arguments for 'echo' command\r\n",
        ),
        (
            &[b"TIME", b"x"],
            b"-ERR wrong number of arguments for 'time' command\r\n",
        ),
        (
            &[b"TYPE"],
            b"-ERR wrong number of arguments for 'type' command\r\n",
        ),
    ] {
        c.check(&resp(request), reply)?;
    }
    c.check(
        &[
            resp(&[b"MULTI"]),
            resp(&[b"SET", b"k", b"abcdef"]),
            resp(&[b"STRLEN", b"k"]),
            resp(&[b"DEL", b"k"]),
            resp(&[b"STRLEN", b"k"]),
            resp(&[b"TYPE", b"k"]),
            resp(&[b"TTL", b"k"]),
            resp(&[b"ECHO", b"x"]),
            resp(&[b"EXEC"]),
        ]
        .concat(),
        &[
            &b"+OK\r\n"[..],
            &b"+QUEUED\r\n".repeat(7),
            b"*7\r\n+OK\r\n:6\r\n:1\r\n:0\r\n+none\r\n:-2\r\n$1\r\nx\r\n",
        ]
        .concat(),
    )?;
    // TIME: Unix seconds and microseconds, as two bulk strings.
    let mut client = server.client()?;
    match client.command(&["TIME"])? {
        kvstore_net::Frame::Array(parts) => {
            let numbers: Vec<u64> = parts
                .iter()
                .map(|p| match p {
                    kvstore_net::Frame::Bulk(b) => std::str::from_utf8(b)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(u64::MAX),
                    _ => u64::MAX,
                })
                .collect();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs();
            assert_eq!(numbers.len(), 2, "{parts:?}");
            assert!(numbers[0].abs_diff(now) < 60, "{numbers:?} against {now}");
            assert!(numbers[1] < 1_000_000, "{numbers:?}");
        }
        other => panic!("TIME answered {other:?}"),
    }
    Ok(())
}

#[test]
fn inline_commands_work_over_a_plain_socket() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    c.check(b"PUT x \"y z\"\r\n", b"+OK\r\n")?;
    c.check(b"\r\n\nREAD x\n", b"$3\r\ny z\r\n")?;
    c.check(b"BATCHPUT p 1 q 2\r\nDELETE p\r\n", b"+OK\r\n:1\r\n")?;
    c.check(
        b"GET \"open\r\n",
        b"-ERR Protocol error: unbalanced quotes in request\r\n",
    )?;
    assert!(c.is_closed()?);
    Ok(())
}

#[test]
fn scan_walks_every_key_with_numeric_cursors() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    c.check(
        &resp(&[b"MSET", b"a", b"1", b"b", b"2", b"c", b"3"]),
        b"+OK\r\n",
    )?;
    c.check(
        &resp(&[b"SCAN", b"0"]),
        b"*2\r\n$1\r\n0\r\n*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n",
    )?;
    c.check(
        &resp(&[b"SCAN", b"0", b"MATCH", b"[bc]"]),
        b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\nb\r\n$1\r\nc\r\n",
    )?;
    c.check(&resp(&[b"SCAN", b"x"]), b"-ERR invalid cursor\r\n")?;
    c.check(&resp(&[b"SCAN", b"987"]), b"-ERR invalid cursor\r\n")?;
    c.check(
        &resp(&[b"SCAN", b"0", b"COUNT", b"0"]),
        b"-ERR syntax error\r\n",
    )?;
    c.check(
        &resp(&[b"SCAN", b"0", b"COUNT", b"x"]),
        b"-ERR value is not an integer or out of range\r\n",
    )?;
    c.check(&resp(&[b"SCAN", b"0", b"BOGUS"]), b"-ERR syntax error\r\n")?;
    // Page by page with the typed client: cursors are decimal numbers, the last one is 0.
    let mut client = server.client()?;
    let mut cursor = "0".to_string();
    let mut seen = Vec::new();
    loop {
        let reply = client.call(&["SCAN", &cursor, "COUNT", "2"])?;
        let kvstore_net::Frame::Array(parts) = reply else {
            panic!("SCAN reply is not an array")
        };
        let [kvstore_net::Frame::Bulk(next), kvstore_net::Frame::Array(keys)] = parts.as_slice()
        else {
            panic!("SCAN reply has the wrong shape")
        };
        seen.extend(keys.iter().map(|k| k.to_string()));
        cursor = String::from_utf8(next.clone())?;
        assert!(cursor.parse::<u64>().is_ok());
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen, ["\"a\"", "\"b\"", "\"c\""]);
    Ok(())
}

#[test]
fn admin_and_introspection_commands() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    c.check(&resp(&[b"SET", b"k", b"v"]), b"+OK\r\n")?;
    c.check(
        &resp(&[b"INFO", b"keyspace"]),
        b"$44\r\n# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n\r\n",
    )?;
    c.check(&resp(&[b"INFO", b"nosuch"]), b"$0\r\n\r\n")?;
    c.check(&resp(&[b"ROLE"]), b"*3\r\n$6\r\nmaster\r\n:1\r\n*0\r\n")?;
    c.check(&resp(&[b"WAIT", b"0", b"0"]), b":0\r\n")?;
    c.check(
        &resp(&[b"WAIT", b"x", b"0"]),
        b"-ERR value is not an integer or out of range\r\n",
    )?;
    c.check(
        &resp(&[b"WAIT", b"1", b"-1"]),
        b"-ERR timeout is negative\r\n",
    )?;
    c.check(
        &resp(&[b"REPLICAOF", b"h", b"notaport"]),
        b"-ERR Invalid master port\r\n",
    )?;
    c.check(&resp(&[b"REPLICAOF", b"NO", b"ONE"]), b"+OK\r\n")?;
    c.check(
        &resp(&[b"AUTH", b"pw"]),
        b"-ERR AUTH <password> called without any password configured for the default user. \
          Are you sure your configuration is correct?\r\n",
    )?;
    c.check(&resp(&[b"COMMAND", b"COUNT"]), b":53\r\n")?;
    c.check(&resp(&[b"COMMAND", b"DOCS"]), b"*0\r\n")?;
    c.check(
        &resp(&[b"COMMAND", b"INFO", b"get", b"nope"]),
        b"*2\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n\
          *2\r\n+@read\r\n+@fast\r\n*0\r\n*0\r\n*0\r\n$-1\r\n",
    )?;
    c.check(
        &resp(&[b"CONFIG", b"GET", b"appendonly"]),
        b"*2\r\n$10\r\nappendonly\r\n$3\r\nyes\r\n",
    )?;
    c.check(
        &resp(&[b"CONFIG", b"GET", b"save"]),
        b"*2\r\n$4\r\nsave\r\n$0\r\n\r\n",
    )?;
    c.check(
        &resp(&[b"CONFIG", b"SET", b"save", b""]),
        b"-ERR CONFIG SET is not supported: kvstore-server is configured by its command line\r\n",
    )?;
    let mut digest = kvstore_net::Digest::default();
    digest.add(b"k", b"v");
    let expected = format!("$32\r\n{}\r\n", digest.hex());
    c.check(&resp(&[b"DIGEST"]), expected.as_bytes())?;
    c.check(
        &resp(&[b"REPLICATE", b"PUT", b"1", b"k", b"v"]),
        b"-ERR this node is a master and refuses REPLICATE; make it a replica with REPLICAOF first\r\n",
    )?;
    c.check(&resp(&[b"QUIT"]), b"+OK\r\n")?;
    assert!(c.is_closed()?);
    Ok(())
}

#[test]
fn requirepass_gates_every_command_but_auth() -> TestResult {
    let server = TestServer::start_with(|c| c.requirepass(Some("s3cret".into())))?;
    let mut c = server.raw()?;
    c.check(
        &resp(&[b"GET", b"k"]),
        b"-NOAUTH Authentication required.\r\n",
    )?;
    c.check(&resp(&[b"PING"]), b"-NOAUTH Authentication required.\r\n")?;
    // As Redis 7 checks: the command's existence and arity come before authentication.
    c.check(
        &resp(&[b"NOSUCH"]),
        b"-ERR unknown command 'NOSUCH', with args beginning with: \r\n",
    )?;
    c.check(
        &resp(&[b"AUTH", b"wrong"]),
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    )?;
    c.check(
        &resp(&[b"AUTH", b"admin", b"s3cret"]),
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    )?;
    c.check(&resp(&[b"AUTH", b"default", b"s3cret"]), b"+OK\r\n")?;
    c.check(&resp(&[b"SET", b"k", b"v"]), b"+OK\r\n")?;
    let mut other = server.raw()?;
    other.check(b"AUTH s3cret\r\nGET k\r\n", b"+OK\r\n$1\r\nv\r\n")?;
    Ok(())
}

#[test]
fn pipelined_sets_get_one_reply_each_in_order() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    let mut pipeline = Vec::new();
    for request in [
        &[&b"SET"[..], b"a", b"1"][..],
        &[b"PUT", b"a", b"2"],
        &[b"GET", b"a"],
        &[b"SET", b"b", b"3"],
        &[b"SET", b"b"],
        &[b"set", b"c", b"4"],
    ] {
        pipeline.extend(resp(request));
    }
    pipeline.extend(b"*1\r\n$3\r\nGET\r\n*1\r\n*1\r\n");
    c.check(
        &pipeline,
        b"+OK\r\n+OK\r\n$1\r\n2\r\n+OK\r\n-ERR wrong number of arguments for 'set' command\r\n\
          +OK\r\n-ERR wrong number of arguments for 'get' command\r\n\
          -ERR Protocol error: expected '$', got '*'\r\n",
    )?;
    assert!(c.is_closed()?);
    let mut client = server.client()?;
    assert_eq!(client.get(b"b")?, Some(b"3".to_vec()));
    assert_eq!(client.get(b"c")?, Some(b"4".to_vec()));
    Ok(())
}
