//! Dropping a replicator whose worker is blocked in a transport call (a stalled replica:
//! the link takes bytes and answers nothing) ends within the shutdown timeout and a little
//! grace, by calling the transport's interrupter, rather than waiting out the transport's own
//! I/O timeouts (30 s over TCP).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use kvstore_replication::{
    Ack, Error, Hello, HelloReply, Interrupter, Replicator, Result, SharedRecord, SnapshotAck,
    SnapshotChunk, Transport,
};

/// A replica whose every call blocks until the transport is interrupted (or a minute passes).
struct Stalled {
    interrupted: Arc<AtomicBool>,
}

impl Stalled {
    fn block(&self) -> Error {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.interrupted.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        Error::transport("stalled", "interrupted")
    }
}

impl Transport for Stalled {
    fn describe(&self) -> String {
        "stalled".into()
    }
    fn hello(&mut self, _: &Hello) -> Result<HelloReply> {
        Err(self.block())
    }
    fn send_records(&mut self, _: &[SharedRecord]) -> Result<()> {
        Err(self.block())
    }
    fn recv_ack(&mut self, _: Duration) -> Result<Option<Ack>> {
        Err(self.block())
    }
    fn send_snapshot_chunk(&mut self, _: &SnapshotChunk) -> Result<SnapshotAck> {
        Err(self.block())
    }
    fn interrupter(&self) -> Option<Interrupter> {
        let interrupted = self.interrupted.clone();
        Some(Box::new(move || interrupted.store(true, Ordering::SeqCst)))
    }
}

#[test]
fn dropping_the_replicator_interrupts_a_stalled_link() -> TestResult {
    let c = cluster(0, fast())?;
    let interrupted = Arc::new(AtomicBool::new(false));
    let repl = Replicator::builder()
        .replica(Stalled {
            interrupted: interrupted.clone(),
        })
        .shutdown_timeout(Duration::from_millis(200))
        .attach(&c.master)?;
    c.master.put(b"k", b"v")?;
    // Let the worker get stuck in its HELLO.
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    drop(repl);
    let took = started.elapsed();
    assert!(interrupted.load(Ordering::SeqCst), "never interrupted");
    assert!(took < Duration::from_secs(5), "the drop took {took:?}");
    Ok(())
}
