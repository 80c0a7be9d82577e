//! A master sending a record larger than a blob writes it part by part, so a record of up to
//! 1 GiB is never copied whole into its output buffer; once a part cannot be written (the
//! replica stopped reading) it stops there. It used to go on queueing every remaining part
//! only to drop them with the connection: the whole rest of the record copied into memory
//! while the link was failing. Found in review.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use kvstore_core::EncodedWalRecord;
use kvstore_net::TcpTransport;
use kvstore_replication::{Hello, Timeline, Transport};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn peak_rss_kib() -> Result<u64, Box<dyn std::error::Error>> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmHWM".into())
}

#[test]
fn a_failed_part_write_queues_no_more_parts() -> TestResult {
    // A "replica" that answers HELLO, then never reads again until the test is over.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let replica = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut stream, _) = listener.accept()?;
        let mut buf = [0u8; 4096];
        let mut got = Vec::new();
        // HELLO has 5 arguments.
        while !got.ends_with(b"\r\n") || got.iter().filter(|&&b| b == b'$').count() < 5 {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            got.extend_from_slice(&buf[..n]);
        }
        stream.write_all(b"*4\r\n:0\r\n:1\r\n:-1\r\n:0\r\n")?;
        let _ = done_rx.recv_timeout(Duration::from_secs(30));
        Ok(())
    });
    let mut transport =
        TcpTransport::new(addr, None).timeouts(Duration::from_secs(2), Duration::from_millis(500));
    transport.hello(&Hello {
        master_id: "m".into(),
        epoch: 1,
        master_last_lsn: 1,
        force_resync: false,
        timeline: Timeline::default(),
    })?;
    // 160 MiB: ten parts. Its bytes are resident before measuring.
    let record = EncodedWalRecord::from_committed_bytes(1, vec![7u8; 160 << 20].into());
    let before = peak_rss_kib()?;
    let sent = transport.send_records(std::slice::from_ref(&record));
    let grown_mib = peak_rss_kib()?.saturating_sub(before) / 1024;
    let _ = done_tx.send(());
    replica.join().map_err(|_| "replica thread panicked")??;
    assert!(sent.is_err(), "the replica never reads: the send fails");
    assert!(
        grown_mib < 64,
        "peak memory grew by {grown_mib} MiB: parts after the failed write were queued"
    );
    Ok(())
}
