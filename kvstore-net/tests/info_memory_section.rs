//! `INFO` has a `# Memory` section with `used_memory`, which `redis-cli --stat` (an unchanged
//! redis-cli mode) reads: without it, it showed garbage memory against kvstore-server.
//!
//! redis-cli's statMode() sends `INFO` and reads `used_memory` with getLongInfoField();
//! a missing field is LONG_MIN, printed as "--9223372036854775808B". Observed:
//!   redis-server 7.0.15:  keys 10  mem 1.36M                 clients 1 ...
//!   kvstore-server:       keys 9   mem --9223372036854775808B clients 1 ...
//! redis-server 7.0.15 answers `INFO` with a `# Memory` section holding
//! `used_memory:<bytes>` (and `used_memory_human`, used by dashboards such as Sidekiq's).
//! kvstore's INFO had no memory section at all (`INFO memory` was empty).

mod common;

use std::io::{BufRead, BufReader, Read, Write};

use common::{resp, TestResult, TestServer};

fn info(addr: &str, args: &[&[u8]]) -> TestResult<String> {
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    stream.write_all(&resp(args))?;
    let mut reader = BufReader::new(stream);
    let mut header = String::new();
    reader.read_line(&mut header)?;
    let len: usize = header
        .trim_end()
        .strip_prefix('$')
        .ok_or_else(|| format!("not a bulk: {header:?}"))?
        .parse()?;
    let mut body = vec![0; len + 2];
    reader.read_exact(&mut body)?;
    Ok(String::from_utf8_lossy(&body[..len]).into_owned())
}

fn used_memory(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn default_info_reports_used_memory_for_redis_cli_stat() -> TestResult {
    let server = TestServer::start()?;
    let text = info(&server.addr(), &[b"INFO"])?;
    assert!(
        used_memory(&text).is_some(),
        "INFO has no numeric used_memory field (redis-cli --stat shows \
         --9223372036854775808B); INFO was:\n{text}"
    );
    Ok(())
}

#[test]
fn info_memory_is_a_section() -> TestResult {
    let server = TestServer::start()?;
    let text = info(&server.addr(), &[b"INFO", b"memory"])?;
    assert!(
        text.starts_with("# Memory\r\n") && used_memory(&text).is_some(),
        "INFO memory: {text:?}"
    );
    Ok(())
}
