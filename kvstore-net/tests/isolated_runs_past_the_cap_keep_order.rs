//! The cap of 16 read-modify-write commands per connection per group must not
//! change what a pipelining client sees: replies in order, nothing lost or stalled, a
//! transaction after the run still atomic, and a protocol error after the run still closes.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{resp, TestResult, TestServer};

fn read_until(stream: &mut TcpStream, want_lines: usize) -> TestResult<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    while got.windows(2).filter(|w| w == b"\r\n").count() < want_lines && Instant::now() < deadline
    {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(String::from_utf8_lossy(&got).into_owned())
}

#[test]
fn many_pipelined_incrs_answer_in_order() -> TestResult {
    let server = TestServer::start()?;
    let mut streams = Vec::new();
    for c in 0..3 {
        let mut s = TcpStream::connect(server.addr())?;
        let mut bytes = Vec::new();
        for _ in 0..100 {
            bytes.extend(resp(&[b"INCR", b"counter"]));
            bytes.extend(resp(&[b"INCR", format!("own{c}").as_bytes()]));
        }
        bytes.extend(resp(&[b"MULTI"]));
        bytes.extend(resp(&[b"INCR", format!("own{c}").as_bytes()]));
        bytes.extend(resp(&[b"INCR", format!("own{c}").as_bytes()]));
        bytes.extend(resp(&[b"EXEC"]));
        bytes.extend(resp(&[b"GET", format!("own{c}").as_bytes()]));
        s.write_all(&bytes)?;
        streams.push(s);
    }
    for (c, s) in streams.iter_mut().enumerate() {
        let text = read_until(s, 200 + 3 + 3 + 2)?;
        let lines: Vec<&str> = text.split("\r\n").collect();
        let own: Vec<i64> = lines
            .iter()
            .take(200)
            .skip(1)
            .step_by(2)
            .map(|l| l.trim_start_matches(':').parse().unwrap_or(-1))
            .collect();
        assert_eq!(
            own,
            (1..=100).collect::<Vec<i64>>(),
            "connection {c}: {text:.300}"
        );
        let counters: Vec<i64> = lines
            .iter()
            .take(200)
            .step_by(2)
            .map(|l| l.trim_start_matches(':').parse().unwrap_or(-1))
            .collect();
        assert!(
            counters.windows(2).all(|w| w[0] < w[1]),
            "connection {c}: {counters:?}"
        );
        assert_eq!(
            &lines[200..],
            &["+OK", "+QUEUED", "+QUEUED", "*2", ":101", ":102", "$3", "102", ""],
            "connection {c}"
        );
    }
    Ok(())
}

#[test]
fn protocol_error_after_a_long_run_runs_nothing_after_it() -> TestResult {
    let server = TestServer::start()?;
    let mut s = TcpStream::connect(server.addr())?;
    let mut bytes = Vec::new();
    for _ in 0..40 {
        bytes.extend(resp(&[b"INCR", b"n"]));
    }
    bytes.extend_from_slice(b"*1\r\n$-5\r\n");
    bytes.extend(resp(&[b"SET", b"after", b"1"]));
    s.write_all(&bytes)?;
    let text = read_until(&mut s, 41)?;
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(lines.len(), 42, "{text}");
    assert!(lines[40].starts_with("-ERR Protocol error"), "{text}");
    let mut client = server.client()?;
    assert_eq!(client.get(b"after")?, None);
    assert_eq!(client.get(b"n")?, Some(b"40".to_vec()));
    Ok(())
}
