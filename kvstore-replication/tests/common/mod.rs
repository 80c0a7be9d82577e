//! Helpers shared by the integration tests: replicas in temporary directories, waiting with a
//! deadline, and the key-by-key comparison every test ends with.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use kvstore_core::{KvStore, Options, SyncPolicy};
use kvstore_replication::{
    Ack, Hello, HelloReply, InProcessReplica, InProcessTransport, ReplicaEndpoint, Replicator,
    SharedRecord, SnapshotAck, SnapshotChunk, Transport,
};
use tempfile::TempDir;

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A HELLO from master "m" with `epoch`, whose log ends at `master_last_lsn`.
pub fn hello(epoch: u64, master_last_lsn: u64) -> Hello {
    Hello {
        master_id: "m".into(),
        epoch,
        master_last_lsn,
        force_resync: false,
        timeline: Default::default(),
    }
}

/// Options for test stores: no fsync (the tests are about replication, not the disk).
pub fn fast() -> Options {
    Options::new().sync_policy(SyncPolicy::Never)
}

pub struct Cluster {
    pub master_dir: TempDir,
    pub master: KvStore,
    pub replica_dirs: Vec<TempDir>,
    pub replicas: Vec<InProcessReplica>,
}

pub fn cluster(
    replicas: usize,
    master_opts: Options,
) -> Result<Cluster, Box<dyn std::error::Error>> {
    let master_dir = tempfile::tempdir()?;
    let master = master_opts.open(master_dir.path())?;
    let mut replica_dirs = Vec::new();
    let mut handles = Vec::new();
    for i in 0..replicas {
        let dir = tempfile::tempdir()?;
        handles.push(InProcessReplica::open(format!("r{i}"), dir.path(), fast())?);
        replica_dirs.push(dir);
    }
    Ok(Cluster {
        master_dir,
        master,
        replica_dirs,
        replicas: handles,
    })
}

/// Polls `cond` every few milliseconds until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until every replica acknowledged the master's last LSN.
pub fn wait_caught_up(repl: &Replicator, master: &KvStore, limit: Duration) -> bool {
    wait_until(limit, || {
        let last = master.last_lsn();
        repl.status().replicas.iter().all(|r| r.acked_lsn >= last)
    })
}

/// Every key and value of `replica` equals the master's, in both directions.
pub fn assert_same(master: &KvStore, replica: &KvStore, name: &str) -> TestResult {
    let a: Vec<(Vec<u8>, Vec<u8>)> = master.iter().collect::<Result<_, _>>()?;
    let b: Vec<(Vec<u8>, Vec<u8>)> = replica.iter().collect::<Result<_, _>>()?;
    assert_eq!(a.len(), b.len(), "replica {name}: key count differs");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            x,
            y,
            "replica {name}: differs at key {:?}",
            String::from_utf8_lossy(&x.0)
        );
    }
    assert_eq!(
        master.last_lsn(),
        replica.applied_lsn(),
        "replica {name}: applied LSN"
    );
    Ok(())
}

/// Compares every running replica of the cluster with the master.
pub fn assert_all_same(c: &Cluster) -> TestResult {
    for r in &c.replicas {
        let store = r.store().ok_or("replica is down")?;
        assert_same(&c.master, &store, r.name())?;
    }
    Ok(())
}

/// Reopens a replica's store from `dir`, retrying while a courier thread still holds it.
pub fn reopen(dir: &std::path::Path) -> Result<ReplicaEndpoint, Box<dyn std::error::Error>> {
    Ok(ReplicaEndpoint::open(open_unlocked(dir)?)?)
}

/// Opens a test store in `dir`, retrying while threads that just let go of it (a replica's
/// courier, a dropped replicator's workers) still hold its lock.
pub fn open_unlocked(dir: &std::path::Path) -> Result<KvStore, Box<dyn std::error::Error>> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match fast().open(dir) {
            Err(kvstore_core::Error::Locked { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            other => return Ok(other?),
        }
    }
}

/// An in-process transport that hands every snapshot chunk to `on_chunk`, with the transport
/// to pass it on through; everything else goes straight through. For tests that act at a
/// given point of a full resync (cut the link, write on the master, kill the replica).
pub struct OnSnapshotChunk<F> {
    inner: InProcessTransport,
    on_chunk: F,
}

impl<F> OnSnapshotChunk<F> {
    pub fn new(inner: InProcessTransport, on_chunk: F) -> Self {
        OnSnapshotChunk { inner, on_chunk }
    }
}

impl<F> Transport for OnSnapshotChunk<F>
where
    F: FnMut(&SnapshotChunk, &mut InProcessTransport) -> kvstore_replication::Result<SnapshotAck>
        + Send,
{
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn hello(&mut self, hello: &Hello) -> kvstore_replication::Result<HelloReply> {
        self.inner.hello(hello)
    }
    fn send_records(&mut self, records: &[SharedRecord]) -> kvstore_replication::Result<()> {
        self.inner.send_records(records)
    }
    fn send_window(&mut self, records: Vec<SharedRecord>) -> kvstore_replication::Result<()> {
        self.inner.send_window(records)
    }
    fn recv_ack(&mut self, timeout: Duration) -> kvstore_replication::Result<Option<Ack>> {
        self.inner.recv_ack(timeout)
    }
    fn recv_acks(
        &mut self,
        timeout: Duration,
        acks: &mut Vec<Ack>,
    ) -> kvstore_replication::Result<()> {
        self.inner.recv_acks(timeout, acks)
    }
    fn send_snapshot_chunk(
        &mut self,
        chunk: &SnapshotChunk,
    ) -> kvstore_replication::Result<SnapshotAck> {
        (self.on_chunk)(chunk, &mut self.inner)
    }
    fn close(&mut self) {
        self.inner.close()
    }
}
