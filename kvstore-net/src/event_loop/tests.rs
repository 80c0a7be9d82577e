//! One loop's steps and group commits, driven by hand over real loopback sockets, so the
//! order of the connections in a round is fixed instead of left to readiness.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use kvstore_core::Options;

use super::conn_state::{ClientSlot, LoopConn};
use super::dispatch::{step, Step};
use super::group::{Answer, Group};
use crate::config::ServerConfig;
use crate::frame::Frame;
use crate::node::Node;

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// A node over a temporary directory, and a listener for its connections.
fn node() -> TestResult<(Arc<Node>, TcpListener, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let store = Options::new().open(dir.path())?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let node = Node::new(store, ServerConfig::new(dir.path()), addr);
    Ok((Arc::new(node), listener, dir))
}

/// A loop connection whose peer has sent `bytes` (already in the server's socket).
fn conn_with(
    node: &Arc<Node>,
    listener: &TcpListener,
    bytes: &[u8],
) -> TestResult<(LoopConn, TcpStream)> {
    let mut client = TcpStream::connect(listener.local_addr()?)?;
    client.set_read_timeout(Some(Duration::from_secs(5)))?;
    let (server, peer) = listener.accept()?;
    client.write_all(bytes)?;
    // The bytes are on loopback once written; wait until the server's socket holds them.
    let mut probe = [0u8; 1];
    server.set_read_timeout(Some(Duration::from_secs(5)))?;
    server.peek(&mut probe)?;
    server.set_nonblocking(true)?;
    let slot = ClientSlot::take(node).ok_or("no client slot")?;
    let conn = LoopConn::new(mio::net::TcpStream::from_std(server), peer, slot, node);
    Ok((conn, client))
}

/// Commits the group and queues each connection's replies, as the poller does.
fn commit(group: &mut Group, node: &Node, conns: &mut [&mut LoopConn]) -> Vec<usize> {
    let mut answered = Vec::new();
    for Answer { token, replies } in group.commit(node) {
        let conn = &mut conns[token];
        if let Some((reply, count)) = replies {
            for _ in 0..count {
                conn.reply(&reply);
            }
        }
        conn.in_group = false;
        answered.push(token);
    }
    answered
}

/// Writes `conn`'s queued replies and reads exactly `expected.len()` bytes back.
fn expect(conn: &mut LoopConn, client: &mut TcpStream, expected: &[u8]) -> TestResult {
    assert!(conn.write_out()?);
    let mut got = vec![0; expected.len()];
    client.read_exact(&mut got)?;
    assert_eq!(
        got.escape_ascii().to_string(),
        expected.escape_ascii().to_string()
    );
    Ok(())
}

#[test]
fn a_del_joins_the_rounds_group_instead_of_committing_on_its_own() -> TestResult {
    let (node, listener, _dir) = node()?;
    node.store.put(b"k", b"v")?;
    let (mut conn, mut client) = conn_with(&node, &listener, b"DEL k nope k\r\n")?;
    let mut group = Group::default();
    assert_eq!(
        step(&mut conn, 0, &node, &mut group),
        Step::Wait { again: false }
    );
    // Nothing written yet: the delete waits for the round's one commit.
    assert!(!group.is_empty());
    assert!(node.store.contains_key(b"k")?);
    assert_eq!(conn.wire.pending_output(), 0);
    commit(&mut group, &node, &mut [&mut conn]);
    assert!(!node.store.contains_key(b"k")?);
    expect(&mut conn, &mut client, b":1\r\n")
}

#[test]
fn a_del_of_a_key_the_group_writes_counts_that_write() -> TestResult {
    let (node, listener, _dir) = node()?;
    let (mut writer, mut writer_client) = conn_with(&node, &listener, b"SET k v\r\n")?;
    let (mut deleter, mut deleter_client) = conn_with(&node, &listener, b"DEL k\r\nEXISTS k\r\n")?;
    let mut group = Group::default();
    // The SET runs first in this round, so the DEL that follows must see it.
    assert_eq!(
        step(&mut writer, 0, &node, &mut group),
        Step::Wait { again: false }
    );
    assert_eq!(
        step(&mut deleter, 1, &node, &mut group),
        Step::Wait { again: false }
    );
    assert_eq!(
        deleter.wire.pending_output(),
        0,
        "the DEL ran before the SET committed"
    );
    assert_eq!(
        commit(&mut group, &node, &mut [&mut writer, &mut deleter]),
        [0, 1]
    );
    expect(&mut writer, &mut writer_client, b"+OK\r\n")?;
    // Next round: the DEL runs against the committed SET and joins a new group.
    assert_eq!(
        step(&mut deleter, 1, &node, &mut group),
        Step::Wait { again: false }
    );
    commit(&mut group, &node, &mut [&mut writer, &mut deleter]);
    assert_eq!(
        step(&mut deleter, 1, &node, &mut group),
        Step::Wait { again: false }
    );
    expect(&mut deleter, &mut deleter_client, b":1\r\n:0\r\n")?;
    assert!(!node.store.contains_key(b"k")?);
    Ok(())
}

#[test]
fn a_del_on_a_node_demoted_before_the_commit_is_refused() -> TestResult {
    let (node, listener, _dir) = node()?;
    node.store.put(b"k", b"v")?;
    let (mut conn, mut client) = conn_with(&node, &listener, b"DEL k\r\n")?;
    let mut group = Group::default();
    step(&mut conn, 0, &node, &mut group);
    // A REPLICAOF on another thread between the gathering and the commit.
    crate::role::become_replica(&node, None)?;
    commit(&mut group, &node, &mut [&mut conn]);
    assert!(node.store.contains_key(b"k")?);
    let readonly = Frame::error("READONLY You can't write against a read only replica.");
    let mut expected = Vec::new();
    readonly.write_to(&mut expected);
    expect(&mut conn, &mut client, &expected)
}

#[test]
fn increments_planned_in_a_group_see_its_earlier_writes() -> TestResult {
    let (node, listener, _dir) = node()?;
    let (mut writer, mut writer_client) = conn_with(&node, &listener, b"SET k 5\r\n")?;
    let (mut adder, mut adder_client) =
        conn_with(&node, &listener, b"INCR k\r\nINCRBY k 10\r\nDEL k\r\n")?;
    let mut group = Group::default();
    step(&mut writer, 0, &node, &mut group);
    step(&mut adder, 1, &node, &mut group);
    // All in one round: the SET, then both increments (pipelined), planned in that order.
    assert_eq!(
        commit(&mut group, &node, &mut [&mut writer, &mut adder]),
        [0, 1, 1]
    );
    expect(&mut writer, &mut writer_client, b"+OK\r\n")?;
    expect(&mut adder, &mut adder_client, b":6\r\n:16\r\n")?;
    assert_eq!(node.store.get(b"k")?, Some(b"16".to_vec()));
    // The DEL waited for the next round, and counts the increments' key.
    step(&mut adder, 1, &node, &mut group);
    commit(&mut group, &node, &mut [&mut writer, &mut adder]);
    expect(&mut adder, &mut adder_client, b":1\r\n")
}

#[test]
fn a_write_the_store_refuses_is_not_seen_by_the_members_after_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Options::new().max_value_bytes(8).open(dir.path())?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let node = Arc::new(Node::new(
        store,
        ServerConfig::new(dir.path()),
        listener.local_addr()?,
    ));
    let (mut writer, mut writer_client) = conn_with(&node, &listener, b"SET k 1234567890123\r\n")?;
    let (mut adder, mut adder_client) = conn_with(&node, &listener, b"INCR k\r\n")?;
    let mut group = Group::default();
    step(&mut writer, 0, &node, &mut group);
    step(&mut adder, 1, &node, &mut group);
    commit(&mut group, &node, &mut [&mut writer, &mut adder]);
    let mut refused = Vec::new();
    Frame::error("ERR value of 13 bytes exceeds the maximum of 8 bytes").write_to(&mut refused);
    expect(&mut writer, &mut writer_client, &refused)?;
    // The refused SET never happened: the INCR starts from nothing.
    expect(&mut adder, &mut adder_client, b":1\r\n")?;
    assert_eq!(node.store.get(b"k")?, Some(b"1".to_vec()));
    Ok(())
}

#[test]
fn planned_members_in_a_row_commit_as_one_record_in_order() -> TestResult {
    let (node, listener, _dir) = node()?;
    let (mut first, mut first_client) = conn_with(&node, &listener, b"INCR k\r\nINCR k\r\n")?;
    let (mut second, mut second_client) = conn_with(
        &node,
        &listener,
        b"SETNX k x\r\nINCRBY k 5\r\nSET n 1 NX\r\n",
    )?;
    let (mut blind, mut blind_client) = conn_with(&node, &listener, b"SET k 100\r\n")?;
    let (mut last, mut last_client) = conn_with(&node, &listener, b"INCR k\r\n")?;
    let mut group = Group::default();
    for (token, conn) in [&mut first, &mut second, &mut blind, &mut last]
        .into_iter()
        .enumerate()
    {
        step(conn, token, &node, &mut group);
    }
    let before = node.store.last_lsn();
    commit(
        &mut group,
        &node,
        &mut [&mut first, &mut second, &mut blind, &mut last],
    );
    expect(&mut first, &mut first_client, b":1\r\n:2\r\n")?;
    expect(&mut second, &mut second_client, b":0\r\n:7\r\n+OK\r\n")?;
    expect(&mut blind, &mut blind_client, b"+OK\r\n")?;
    expect(&mut last, &mut last_client, b":101\r\n")?;
    assert_eq!(node.store.get(b"k")?, Some(b"101".to_vec()));
    assert_eq!(node.store.get(b"n")?, Some(b"1".to_vec()));
    // The first five planned members are one record, the SET its own, the last INCR one.
    assert_eq!(node.store.last_lsn(), before + 3);
    Ok(())
}

#[test]
fn a_long_row_of_planned_members_is_cut_into_records_of_bounded_size() -> TestResult {
    let (node, _listener, _dir) = node()?;
    // Three APPENDs of 9 MiB in a row: the first two pass the 16 MiB a row's record may
    // reach, so the third starts another record (a row of many large values used to become
    // one record over the engine's 1 GiB limit, refused as a whole).
    let value = vec![b'v'; 9 << 20];
    let mut group = Group::default();
    for key in [&b"a"[..], b"b", b"c"] {
        group.add_isolated(
            0,
            crate::parse::Request::from_args([&b"APPEND"[..], key, &value]),
        );
    }
    let before = node.store.last_lsn();
    let replies: Vec<Frame> = group
        .commit(&node)
        .into_iter()
        .filter_map(|answer| answer.replies.map(|(reply, _)| reply))
        .collect();
    assert_eq!(replies, vec![Frame::Integer(9 << 20); 3]);
    for key in [&b"a"[..], b"b", b"c"] {
        assert_eq!(node.store.value_len(key), Some(9 << 20));
    }
    assert_eq!(node.store.last_lsn() - before, 2, "records written");
    Ok(())
}

// Groups of planned members and blind batches in a fixed order, checked through the
// group planner's view: rows cut at the record limit, blind batches between planned
// members, and chains of conditional writes (written in review of the hashed view).

fn commit_replies(group: &mut Group, node: &Node) -> Vec<Frame> {
    group
        .commit(node)
        .into_iter()
        .filter_map(|answer| answer.replies.map(|(reply, _)| reply))
        .collect()
}

fn req(args: &[&[u8]]) -> crate::parse::Request {
    crate::parse::Request::from_args(args.iter().copied())
}

fn blind(pairs: &[(&[u8], &[u8])]) -> kvstore_core::WriteBatch {
    let mut batch = kvstore_core::WriteBatch::new();
    for (key, value) in pairs {
        batch.put(key, value);
    }
    batch
}

/// A key written in a row, taken when the row passes MAX_RUN_BYTES, then written again by
/// the next row: the next row's record must hold its new final state.
#[test]
fn a_key_taken_at_the_row_cut_and_written_again_is_in_the_next_record() -> TestResult {
    let (node, _listener, _dir) = node()?;
    let big = vec![b'v'; 9 << 20];
    let mut group = Group::default();
    group.add_isolated(0, req(&[b"APPEND", b"k", &big]));
    group.add_isolated(0, req(&[b"INCR", b"n"]));
    group.add_isolated(0, req(&[b"APPEND", b"k", &big])); // row cut here
    group.add_isolated(0, req(&[b"APPEND", b"k", b"x"]));
    group.add_isolated(0, req(&[b"INCR", b"n"]));
    group.add_isolated(0, req(&[b"GETDEL", b"n"]));
    group.add_isolated(0, req(&[b"SETNX", b"n", b"7"]));
    let before = node.store.last_lsn();
    let replies = commit_replies(&mut group, &node);
    assert_eq!(
        replies,
        vec![
            Frame::Integer(9 << 20),
            Frame::Integer(1),
            Frame::Integer(18 << 20),
            Frame::Integer((18 << 20) + 1),
            Frame::Integer(2),
            Frame::Bulk(b"2".to_vec()),
            Frame::Integer(1),
        ]
    );
    assert_eq!(node.store.value_len(b"k"), Some((18 << 20) + 1));
    assert_eq!(node.store.get(b"n")?, Some(b"7".to_vec()));
    assert_eq!(node.store.len(), 2);
    // Cut after the second APPEND (18 MiB pending) and after the third (an APPEND puts the
    // whole 18 MiB value again); the INCR, GETDEL and SETNX after it make the third record.
    assert_eq!(node.store.last_lsn() - before, 3, "records written");
    Ok(())
}

/// Blind batches between planned members are only noted in the view: later members see
/// them, the rows around them commit in order, and a refused blind batch stays unseen.
#[test]
fn blind_batches_between_planned_members() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Options::new().max_value_bytes(8).open(dir.path())?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let node = Node::new(store, ServerConfig::new(dir.path()), listener.local_addr()?);
    node.store.put(b"gone", b"1")?;
    let mut group = Group::default();
    group.add_isolated(0, req(&[b"INCR", b"k"]));
    group.add(1, 1, blind(&[(b"k", b"5"), (b"k", b"6")]), Frame::ok());
    group.add_isolated(2, req(&[b"INCR", b"k"]));
    group.add_delete(3, vec![b"k".to_vec(), b"gone".to_vec()]);
    group.add_delete(3, vec![b"k".to_vec()]);
    // Refused (value too large): unseen by the SETNX after it.
    group.add(4, 1, blind(&[(b"k", b"123456789")]), Frame::ok());
    group.add_isolated(5, req(&[b"SETNX", b"k", b"a"]));
    group.add(6, 1, blind(&[(b"k", b"b")]), Frame::ok());
    group.add_isolated(7, req(&[b"APPEND", b"k", b"c"]));
    group.add_isolated(7, req(&[b"SET", b"k", b"z", b"XX", b"GET"]));
    let replies = commit_replies(&mut group, &node);
    assert_eq!(replies[0], Frame::Integer(1));
    assert_eq!(replies[1], Frame::ok());
    assert_eq!(replies[2], Frame::Integer(7));
    assert_eq!(replies[3], Frame::Integer(2));
    assert_eq!(replies[4], Frame::Integer(0));
    assert!(matches!(replies[5], Frame::Error(_)), "{:?}", replies[5]);
    assert_eq!(replies[6], Frame::Integer(1));
    assert_eq!(replies[7], Frame::ok());
    assert_eq!(replies[8], Frame::Integer(2));
    assert_eq!(replies[9], Frame::Bulk(b"bc".to_vec()));
    assert_eq!(node.store.get(b"k")?, Some(b"z".to_vec()));
    assert!(!node.store.contains_key(b"gone")?);
    assert_eq!(node.store.len(), 1);
    Ok(())
}

/// MSETNX and SET NX sequences in one group, over keys read (and remembered as last read)
/// without being written.
#[test]
fn msetnx_and_set_nx_sequences_in_one_group() -> TestResult {
    let (node, _listener, _dir) = node()?;
    node.store.put(b"b", b"old")?;
    let mut group = Group::default();
    group.add_isolated(0, req(&[b"MSETNX", b"a", b"1", b"b", b"2"])); // b exists: 0
    group.add_isolated(0, req(&[b"MSETNX", b"a", b"1", b"c", b"2"])); // 1
    group.add_isolated(0, req(&[b"SET", b"b", b"x", b"NX"])); // nil
    group.add_isolated(0, req(&[b"SET", b"d", b"x", b"XX"])); // nil, d read absent
    group.add_isolated(0, req(&[b"SET", b"d", b"y", b"NX", b"GET"])); // nil, sets d
    group.add_isolated(0, req(&[b"MSETNX", b"d", b"1", b"e", b"1"])); // 0
    group.add_isolated(0, req(&[b"GETDEL", b"b"])); // "old"
    group.add_isolated(0, req(&[b"SET", b"b", b"n", b"NX", b"GET"])); // nil, sets b
    group.add_isolated(0, req(&[b"GETSET", b"e", b"g"])); // nil
    let replies = commit_replies(&mut group, &node);
    assert_eq!(
        replies,
        vec![
            Frame::Integer(0),
            Frame::Integer(1),
            Frame::Null,
            Frame::Null,
            Frame::Null,
            Frame::Integer(0),
            Frame::Bulk(b"old".to_vec()),
            Frame::Null,
            Frame::Null,
        ]
    );
    for (key, value) in [
        (&b"a"[..], &b"1"[..]),
        (b"b", b"n"),
        (b"c", b"2"),
        (b"d", b"y"),
        (b"e", b"g"),
    ] {
        assert_eq!(node.store.get(key)?, Some(value.to_vec()), "{key:?}");
    }
    assert_eq!(node.store.len(), 5);
    Ok(())
}
