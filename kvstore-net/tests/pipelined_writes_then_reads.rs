//! A connection's requests run strictly in order even though writes wait for the loop's
//! commit group: a read pipelined after a write sees it, on every connection of a group.

mod common;

use std::io::Read;

use common::{resp, TestResult, TestServer};

#[test]
fn a_read_pipelined_after_a_write_sees_it() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.raw()?;
    let mut pipeline = Vec::new();
    pipeline.extend(resp(&[b"GET", b"k"]));
    pipeline.extend(resp(&[b"SET", b"k", b"one"]));
    pipeline.extend(resp(&[b"GET", b"k"]));
    pipeline.extend(resp(&[b"SET", b"k", b"two"]));
    pipeline.extend(resp(&[b"SET", b"k", b"three"]));
    pipeline.extend(resp(&[b"GET", b"k"]));
    pipeline.extend(resp(&[b"MSET", b"k", b"four", b"j", b"x"]));
    pipeline.extend(resp(&[b"MGET", b"k", b"j"]));
    pipeline.extend(resp(&[b"DEL", b"k"]));
    pipeline.extend(resp(&[b"GET", b"k"]));
    // A command that runs on a thread of its own, between two that run on the loop.
    pipeline.extend(resp(&[b"WAIT", b"0", b"0"]));
    pipeline.extend(resp(&[b"SET", b"k", b"five"]));
    pipeline.extend(resp(&[b"GET", b"k"]));
    c.check(
        &pipeline,
        b"$-1\r\n+OK\r\n$3\r\none\r\n+OK\r\n+OK\r\n$5\r\nthree\r\n+OK\r\n\
          *2\r\n$4\r\nfour\r\n$1\r\nx\r\n:1\r\n$-1\r\n:0\r\n+OK\r\n$4\r\nfive\r\n",
    )?;
    Ok(())
}

#[test]
fn many_connections_writing_in_one_group_each_read_their_own_writes() -> TestResult {
    // The default fsync policy is `always`: each round's writes share one fdatasync.
    let server = TestServer::start()?;
    let addr = server.addr();
    let clients: Vec<_> = (0..16)
        .map(|client| {
            let addr = addr.clone();
            std::thread::spawn(move || -> Result<(), String> {
                let mut c = common::Raw::connect(&addr).map_err(|e| e.to_string())?;
                let key = format!("key{client}");
                let mut pipeline = Vec::new();
                let mut expected = Vec::new();
                for round in 0..50 {
                    let value = format!("value{client}-{round}");
                    pipeline.extend(resp(&[b"SET", key.as_bytes(), value.as_bytes()]));
                    pipeline.extend(resp(&[b"GET", key.as_bytes()]));
                    expected.extend_from_slice(b"+OK\r\n");
                    expected.extend(format!("${}\r\n{value}\r\n", value.len()).into_bytes());
                }
                c.send(&pipeline).map_err(|e| e.to_string())?;
                let mut got = vec![0; expected.len()];
                c.stream.read_exact(&mut got).map_err(|e| e.to_string())?;
                if got == expected {
                    Ok(())
                } else {
                    Err(format!("client {client} got {}", got.escape_ascii()))
                }
            })
        })
        .collect();
    for client in clients {
        client.join().map_err(|_| "client thread panicked")??;
    }
    let mut c = server.client()?;
    assert_eq!(c.integer(&["DBSIZE"])?, 16);
    assert_eq!(c.get(b"key7")?, Some(b"value7-49".to_vec()));
    Ok(())
}
