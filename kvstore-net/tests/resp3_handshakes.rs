//! What client libraries send when they connect — `HELLO 3` (redis-py 8 does by default, and
//! gives up on a server that refuses it), `HELLO … AUTH`, `CLIENT SETINFO`, `CLIENT SETNAME`,
//! `SELECT 0` — and the RESP3 replies a connection gets once it chose RESP3: exact bytes.

mod common;

use common::{resp, Raw, TestResult, TestServer};

/// `HELLO`'s reply as a map (RESP3) or a flat array (RESP2).
fn hello_reply(protocol: u8, id: u64, role: &str) -> Vec<u8> {
    let header = if protocol == 3 { "%7" } else { "*14" };
    format!(
        "{header}\r\n$6\r\nserver\r\n$7\r\nkvstore\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n\
         $5\r\nproto\r\n:{protocol}\r\n$2\r\nid\r\n:{id}\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n\
         $4\r\nrole\r\n${}\r\n{role}\r\n$7\r\nmodules\r\n*0\r\n",
        role.len()
    )
    .into_bytes()
}

/// The connection's `CLIENT ID`.
fn client_id(c: &mut Raw) -> TestResult<u64> {
    c.send(&resp(&[b"CLIENT", b"ID"]))?;
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while !reply.ends_with(b"\r\n") {
        std::io::Read::read_exact(&mut c.stream, &mut byte)?;
        reply.push(byte[0]);
    }
    let text = String::from_utf8(reply)?;
    Ok(text.trim_start_matches(':').trim_end().parse()?)
}

#[test]
fn hello_3_switches_the_connection_to_resp3() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    let id = client_id(&mut c)?;
    c.check(&resp(&[b"HELLO", b"3"]), &hello_reply(3, id, "master"))?;
    // Nulls, maps, sets and verbatim strings take their RESP3 forms.
    c.check(&resp(&[b"GET", b"missing"]), b"_\r\n")?;
    c.check(&resp(&[b"SET", b"k", b"v"]), b"+OK\r\n")?;
    c.check(
        &resp(&[b"MGET", b"k", b"missing"]),
        b"*2\r\n$1\r\nv\r\n_\r\n",
    )?;
    c.check(
        &resp(&[b"CONFIG", b"GET", b"appendonly"]),
        b"%1\r\n$10\r\nappendonly\r\n$3\r\nyes\r\n",
    )?;
    c.check(&resp(&[b"COMMAND", b"DOCS"]), b"%0\r\n")?;
    c.check(
        &resp(&[b"COMMAND", b"INFO", b"set", b"nope"]),
        b"*2\r\n*10\r\n$3\r\nset\r\n:-3\r\n~1\r\n+write\r\n:1\r\n:1\r\n:1\r\n\
          ~1\r\n+@write\r\n~0\r\n~0\r\n~0\r\n_\r\n",
    )?;
    c.check(
        &resp(&[b"INFO", b"keyspace"]),
        b"=48\r\ntxt:# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n\r\n",
    )?;
    c.check(&resp(&[b"CLIENT", b"GETNAME"]), b"_\r\n")?;
    // Pipelined writes are answered after their group's commit: still in RESP3, in order.
    let mut pipeline = resp(&[b"SET", b"a", b"1"]);
    pipeline.extend(resp(&[b"DEL", b"a", b"b"]));
    pipeline.extend(resp(&[b"GET", b"a"]));
    c.check(&pipeline, b"+OK\r\n:1\r\n_\r\n")?;
    // A connection handed to a thread of its own (`WAIT` blocks) keeps its protocol there.
    c.check(&resp(&[b"WAIT", b"0", b"0"]), b":0\r\n")?;
    c.check(&resp(&[b"GET", b"missing"]), b"_\r\n")?;
    c.check(&resp(&[b"HELLO", b"2"]), &hello_reply(2, id, "master"))?;
    c.check(&resp(&[b"GET", b"missing"]), b"$-1\r\n")?;
    Ok(())
}

#[test]
fn hello_refuses_what_redis_refuses_and_changes_nothing() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    let id = client_id(&mut c)?;
    c.check(
        &resp(&[b"HELLO", b"4"]),
        b"-NOPROTO unsupported protocol version\r\n",
    )?;
    // Redis reads the version as a strict integer: no leading zeros, no negative zero.
    for version in [&b"three"[..], b"03", b"-0"] {
        c.check(
            &resp(&[b"HELLO", version]),
            b"-ERR Protocol version is not an integer or out of range\r\n",
        )?;
    }
    c.check(
        &resp(&[b"HELLO", b"3", b"AUTH", b"default"]),
        b"-ERR Syntax error in HELLO option 'AUTH'\r\n",
    )?;
    c.check(
        &resp(&[b"HELLO", b"3", b"SETNAME", b"a b"]),
        b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n",
    )?;
    c.check(
        &resp(&[b"HELLO", b"3", b"AUTH", b"admin", b"x"]),
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    )?;
    // None of those switched the protocol; without a version HELLO only describes.
    c.check(&resp(&[b"HELLO"]), &hello_reply(2, id, "master"))?;
    c.check(&resp(&[b"GET", b"missing"]), b"$-1\r\n")?;
    // No password configured: the default user's credentials are taken, as in Redis.
    c.check(
        &resp(&[
            b"HELLO", b"3", b"AUTH", b"default", b"any", b"SETNAME", b"app",
        ]),
        &hello_reply(3, id, "master"),
    )?;
    c.check(&resp(&[b"CLIENT", b"GETNAME"]), b"$3\r\napp\r\n")?;
    Ok(())
}

#[test]
fn hello_authenticates_with_requirepass() -> TestResult {
    let server = TestServer::start_with(|c| c.requirepass(Some("s3cret".into())))?;
    let mut c = server.raw()?;
    c.check(
        &resp(&[b"HELLO", b"3"]),
        b"-NOAUTH HELLO must be called with the client already authenticated, otherwise the \
          HELLO AUTH <user> <pass> option can be used to authenticate the client and \
          select the RESP protocol version at the same time\r\n",
    )?;
    c.check(
        &resp(&[b"HELLO", b"3", b"AUTH", b"default", b"wrong"]),
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    )?;
    // Refused for its name, a HELLO with the right password authenticates nothing.
    c.check(
        &resp(&[
            b"HELLO",
            b"3",
            b"AUTH",
            b"default",
            b"s3cret",
            b"SETNAME",
            b"bad name",
        ]),
        b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n",
    )?;
    c.check(
        &resp(&[b"CLIENT", b"ID"]),
        b"-NOAUTH Authentication required.\r\n",
    )?;
    c.check(
        &resp(&[b"GET", b"k"]),
        b"-NOAUTH Authentication required.\r\n",
    )?;
    c.send(&resp(&[b"HELLO", b"3", b"AUTH", b"default", b"s3cret"]))?;
    // The id is not known before authenticating; the reply starts like this whatever it is.
    c.expect(b"%7\r\n$6\r\nserver\r\n$7\r\nkvstore\r\n")?;
    let mut other = server.raw()?;
    other.check(&resp(&[b"AUTH", b"s3cret"]), b"+OK\r\n")?;
    let other_id = client_id(&mut other)?;
    other.check(
        &resp(&[b"HELLO", b"3"]),
        &hello_reply(3, other_id, "master"),
    )?;
    other.check(&resp(&[b"GET", b"k"]), b"_\r\n")?;
    Ok(())
}

#[test]
fn client_and_select_answer_what_libraries_send_on_connect() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    let id = client_id(&mut c)?;
    let mut second = server.raw()?;
    assert!(
        client_id(&mut second)? > id,
        "ids grow with each connection"
    );
    c.check(
        &resp(&[b"CLIENT", b"SETINFO", b"LIB-NAME", b"redis-py"]),
        b"+OK\r\n",
    )?;
    c.check(
        &resp(&[b"client", b"setinfo", b"lib-ver", b"8.1.0"]),
        b"+OK\r\n",
    )?;
    c.check(
        &resp(&[b"CLIENT", b"SETINFO", b"LIB-VER", b"8 1"]),
        b"-ERR lib-ver cannot contain spaces, newlines or special characters.\r\n",
    )?;
    c.check(
        &resp(&[b"CLIENT", b"SETINFO", b"COLOR", b"red"]),
        b"-ERR Unrecognized option 'COLOR'\r\n",
    )?;
    c.check(&resp(&[b"CLIENT", b"SETNAME", b"worker-1"]), b"+OK\r\n")?;
    c.check(&resp(&[b"CLIENT", b"GETNAME"]), b"$8\r\nworker-1\r\n")?;
    c.check(
        &resp(&[b"CLIENT", b"SETNAME", b"a\nb"]),
        b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n",
    )?;
    c.check(
        &resp(&[b"CLIENT", b"SETNAME"]),
        b"-ERR wrong number of arguments for 'client|setname' command\r\n",
    )?;
    c.check(
        &resp(&[b"CLIENT", b"KILL", b"ID", b"1"]),
        b"-ERR unknown subcommand 'KILL'. Try CLIENT HELP.\r\n",
    )?;
    let peer = c.stream.local_addr()?;
    let line =
        format!("id={id} addr={peer} name=worker-1 db=0 resp=2 lib-name=redis-py lib-ver=8.1.0\n");
    let expected = format!("${}\r\n{line}\r\n", line.len());
    c.check(&resp(&[b"CLIENT", b"INFO"]), expected.as_bytes())?;
    c.check(&resp(&[b"SELECT", b"0"]), b"+OK\r\n")?;
    c.check(
        &resp(&[b"SELECT", b"1"]),
        b"-ERR DB index is out of range\r\n",
    )?;
    c.check(
        &resp(&[b"SELECT", b"x"]),
        b"-ERR value is not an integer or out of range\r\n",
    )?;
    Ok(())
}
