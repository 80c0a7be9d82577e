//! A replica killed (its endpoint dropped and its directory reopened) after it installed the
//! last snapshot chunk but before the master saw the ack; meanwhile keys the snapshot holds
//! are deleted and overwritten on the master. The replica must end equal to the master (the
//! deletes after the snapshot's LSN reach it), with no resync loop.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use kvstore_core::KvStore;
use kvstore_replication::{
    Ack, Error, Hello, HelloReply, InProcessReplica, InProcessTransport, Replicator, Result,
    SharedRecord, SnapshotAck, SnapshotChunk, Transport,
};

struct KillAtLast {
    inner: InProcessTransport,
    replica: InProcessReplica,
    dir: PathBuf,
    master: KvStore,
    chunks: Arc<AtomicU32>,
    killed: Arc<AtomicBool>,
}

impl Transport for KillAtLast {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn hello(&mut self, hello: &Hello) -> Result<HelloReply> {
        self.inner.hello(hello)
    }
    fn send_records(&mut self, records: &[SharedRecord]) -> Result<()> {
        self.inner.send_records(records)
    }
    fn send_window(&mut self, records: Vec<SharedRecord>) -> Result<()> {
        self.inner.send_window(records)
    }
    fn recv_ack(&mut self, timeout: Duration) -> Result<Option<Ack>> {
        self.inner.recv_ack(timeout)
    }
    fn recv_acks(&mut self, timeout: Duration, acks: &mut Vec<Ack>) -> Result<()> {
        self.inner.recv_acks(timeout, acks)
    }
    fn send_snapshot_chunk(&mut self, chunk: &SnapshotChunk) -> Result<SnapshotAck> {
        if self.chunks.fetch_add(1, Ordering::SeqCst) == 1 {
            // After the snapshot's LSN: deletes and overwrites of keys it holds.
            for i in 0..100u32 {
                self.master
                    .delete(format!("k{i:04}"))
                    .map_err(Error::from)?;
                self.master
                    .put(format!("k{:04}", 100 + i), b"after")
                    .map_err(Error::from)?;
            }
        }
        let ack = self.inner.send_snapshot_chunk(chunk)?;
        if chunk.last && !self.killed.swap(true, Ordering::SeqCst) {
            assert!(ack.finished);
            let endpoint = self
                .replica
                .stop()
                .ok_or_else(|| Error::transport("kill", "the replica was already down"))?;
            drop(endpoint);
            let reopened = reopen(&self.dir)
                .map_err(|e| Error::transport("kill", format!("reopening the replica: {e}")))?;
            self.replica.start(reopened);
            return Err(Error::transport("kill", "replica killed before its ack"));
        }
        Ok(ack)
    }
    fn close(&mut self) {
        self.inner.close()
    }
}

#[test]
fn replica_killed_between_last_chunk_and_ack_ends_equal() -> TestResult {
    let master_opts = fast()
        .segment_bytes(8 << 10)
        .max_retained_wal_bytes(64 << 10)
        .auto_compaction(false);
    let c = cluster(1, master_opts)?;
    c.replicas[0].faults().partition();
    let killed = Arc::new(AtomicBool::new(false));
    let repl = Replicator::builder()
        .replica(KillAtLast {
            inner: c.replicas[0].transport(),
            replica: c.replicas[0].clone(),
            dir: c.replica_dirs[0].path().to_path_buf(),
            master: c.master.clone(),
            chunks: Arc::new(AtomicU32::new(0)),
            killed: killed.clone(),
        })
        .snapshot_chunk_bytes(4 << 10)
        .queue_capacity(8)
        .probe_interval(Duration::from_millis(20))
        .backoff(Duration::from_millis(1), Duration::from_millis(10))
        .attach(&c.master)?;
    for round in 0..3u32 {
        for i in 0..300u32 {
            c.master
                .put(format!("k{i:04}"), format!("round {round} value {i:040}"))?;
        }
        c.master.compact()?;
    }
    c.replicas[0].faults().heal();
    assert!(
        wait_until(Duration::from_secs(20), || killed.load(Ordering::SeqCst)
            && repl.status().replicas[0].acked_lsn >= c.master.last_lsn()),
        "not caught up: {:?}",
        repl.status()
    );
    let status = repl.status();
    drop(repl);
    assert_all_same(&c)?;
    assert_eq!(
        status.replicas[0].resyncs, 1,
        "no second resync: {status:?}"
    );
    Ok(())
}
