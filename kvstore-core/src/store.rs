//! `KvStore`: the public handle, and the shared state behind it.

use std::fs::{self, File};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::batch::{OpRef, OpView, WriteBatch};
use crate::error::{Error, IoContext, Result};
use crate::hook::CommitHook;
use crate::index::State;
use crate::iter::Range;
use crate::maintenance::Maintenance;
use crate::options::Options;
use crate::stats::Stats;
use crate::wal::iter::WalIter;
use crate::wal::record::{EncodedRecord, WalRecord, RECORD_HEADER_BYTES};
use crate::wal::recovery;
use crate::wal::writer::{no_answer, ActiveSegment, CommitQueue, LsnRule, Outcome};
use crate::{Lsn, LOCK_FILE_NAME, MAX_KEY_BYTES, MAX_RECORD_BYTES};

/// An open store. Cheap to clone: clones share one engine; the last one to drop syncs the
/// log and stops the background threads.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let store = kvstore_core::KvStore::open(dir.path())?;
/// store.put(b"user:1", b"ada")?;
/// assert_eq!(store.get(b"user:1")?, Some(b"ada".to_vec()));
/// assert!(store.delete(b"user:1")?);
/// assert!(!store.contains_key(b"user:1")?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct KvStore {
    pub(crate) inner: Arc<Inner>,
    _closer: Arc<Closer>,
}

/// A write committed here whose replication is still to be waited for, from
/// [`KvStore::write_batch_then_wait`].
#[must_use = "the write's replication requirement is met only once `wait` returns Ok"]
pub struct Replicating {
    lsn: Lsn,
    hook: Option<Arc<dyn CommitHook>>,
}

impl std::fmt::Debug for Replicating {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replicating")
            .field("lsn", &self.lsn)
            .finish()
    }
}

impl Replicating {
    /// The write's LSN (durable here already).
    pub fn lsn(&self) -> Lsn {
        self.lsn
    }

    /// Waits until the commit hook's replication requirement is met for the write, as
    /// [`KvStore::write_batch`] does before it returns; its error (e.g.
    /// [`Error::QuorumNotReached`]) says the write is durable here but not replicated as
    /// required. Returns the write's LSN.
    pub fn wait(self) -> Result<Lsn> {
        if let Some(hook) = &self.hook {
            hook.wait_replicated(self.lsn)?;
        }
        Ok(self.lsn)
    }
}

/// What a key held at one moment, from [`KvStore::key_version`]: compare two with `==`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyVersion {
    /// The LSN of the write that gave the key its value, if it had one.
    lsn: Option<Lsn>,
    /// For a key without a value: the newest delete applied by then.
    deletes_up_to: Lsn,
    /// Snapshot installs made by then.
    installs: u64,
}

/// Shared by the user-visible handles only (never by the background threads), so that the last
/// handle's drop stops the threads and syncs on the dropping thread, before the lock is freed.
struct Closer(Arc<Inner>);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.maintenance.stop();
        if self.0.poison_reason().is_none() {
            if let Err(e) = self.0.trim_active() {
                tracing::warn!(error = %e, "could not trim the active segment on close");
            }
            if let Err(e) = self.0.flush() {
                tracing::error!(error = %e, "final sync on close failed");
            }
        }
        if let Err(e) = self.0.save_wal_consumers(false) {
            tracing::warn!(error = %e, "could not save the WAL consumers on close");
        }
    }
}

impl std::fmt::Debug for KvStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvStore")
            .field("dir", &self.inner.dir)
            .field("last_lsn", &self.last_lsn())
            .finish()
    }
}

/// Longest a commit leader waits for more writers to join its group: 200 µs.
const MAX_GATHER_NS: u64 = 200_000;

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub fsyncs: AtomicU64,
    /// Moving average of `fdatasync` time on the log.
    pub sync_ewma_ns: AtomicU64,
    pub compactions: AtomicU64,
    /// Bytes appended to the log by commits, ever (how fast writes stream in).
    pub appended_bytes: AtomicU64,
}

/// Stripes of `Inner::delete_stripes`: deletes of keys in different stripes run side by side.
const DELETE_STRIPES: usize = 64;

pub(crate) struct Inner {
    pub dir: PathBuf,
    pub opts: Options,
    pub state: RwLock<State>,
    pub active: Mutex<ActiveSegment>,
    pub commits: CommitQueue,
    /// Orders the publication of pipelined commit groups.
    pub sequencer: crate::wal::sequencer::Sequencer,
    pub last_lsn: AtomicU64,
    /// The newest LSN known to be on stable storage: every record up to it was synced.
    /// Raised only after a sync returns; each record written to the log says how far it had
    /// come (`synced_gap`), which is how recovery tells a torn unsynced write from damage.
    pub synced_lsn: AtomicU64,
    /// LSN of the first record written through this handle (not applied from a master)
    /// before the first `claim_writes`; 0 for none. Set and read under the state lock.
    pub first_unclaimed_write: AtomicU64,
    /// `claim_writes` has been called.
    pub writes_claimed: AtomicBool,
    pub next_segment_id: AtomicU32,
    /// Id of the segment being appended to (mirrors `active.id` without its lock).
    pub active_segment: AtomicU32,
    pub counters: Counters,
    poisoned: AtomicBool,
    poison_reason: Mutex<Option<String>>,
    hook: RwLock<Option<Arc<dyn CommitHook>>>,
    /// WAL consumers (replicas) and the LSN each has consumed up to, saved across restarts.
    pub wal_consumers: crate::wal::consumers::WalConsumers,
    pub compaction_lock: Mutex<()>,
    /// Held across each sync of the log and the poisoning its failure causes (see
    /// `timed_sync`).
    pub sync_lock: Mutex<()>,
    /// Held by `delete` from its existence check to its commit, one lock per stripe of keys:
    /// two deletes of one key both saw it and both logged a tombstone and answered `true`.
    delete_stripes: [Mutex<()>; DELETE_STRIPES],
    /// Memory for the active segment's in-memory mirror, passed from segment to segment.
    pub tail_chunks: Arc<crate::tail_cache::TailChunks>,
    /// Held by the commit leader (only ever one): its reusable buffers.
    pub leader_scratch: Mutex<crate::commit::LeaderScratch>,
    pub maintenance: Maintenance,
    _lock_file: File,
}

impl Inner {
    pub(crate) fn poison_reason(&self) -> Option<String> {
        if !self.poisoned.load(Ordering::Acquire) {
            return None;
        }
        self.poison_reason.lock().clone()
    }

    /// `Err(Poisoned)` once the store is poisoned: for the write paths that may answer
    /// without reaching the commit (which checks too), such as a delete of a key the index
    /// does not hold, which after a failed commit may well be in the log.
    pub(crate) fn check_writable(&self) -> Result<()> {
        match self.poison_reason() {
            Some(reason) => Err(Error::Poisoned { reason }),
            None => Ok(()),
        }
    }

    pub(crate) fn poison(&self, reason: &str) {
        tracing::error!(dir = %self.dir.display(), %reason, "store poisoned for writes");
        let mut slot = self.poison_reason.lock();
        if slot.is_none() {
            *slot = Some(reason.to_string());
        }
        self.poisoned.store(true, Ordering::Release);
    }

    /// How long a commit leader may wait for more writers: half a typical fsync (capped), so
    /// that gathering adds at most half an fsync to a durable write that shares it with others;
    /// a lone writer never waits. A quarter was measured too short for writers woken after a
    /// sync to come back on a 2-core machine (3.0 writes per fsync with 4 writers, against 3.9).
    pub(crate) fn gather_window(&self) -> Option<std::time::Duration> {
        if self.opts.sync_policy != crate::SyncPolicy::Always {
            return None;
        }
        let sync_ns = self.counters.sync_ewma_ns.load(Ordering::Relaxed);
        Some(std::time::Duration::from_nanos(
            (sync_ns / 2).min(MAX_GATHER_NS),
        ))
    }

    pub(crate) fn active_id(&self) -> u32 {
        self.active_segment.load(Ordering::Acquire)
    }

    pub(crate) fn hook(&self) -> Option<Arc<dyn CommitHook>> {
        self.hook.read().clone()
    }

    /// Saves the WAL consumers if they changed: at once, or (`throttled`) only if the last
    /// save is a while old.
    pub(crate) fn save_wal_consumers(&self, throttled: bool) -> Result<()> {
        let consumers = &self.wal_consumers;
        if throttled {
            consumers.save_if_due(&self.dir, &*self.opts.vfs)
        } else {
            consumers.save_if_changed(&self.dir, &*self.opts.vfs)
        }
    }

    pub(crate) fn sync_dir(&self) -> Result<()> {
        self.opts
            .vfs
            .sync_dir(&self.dir)
            .ctx(|| format!("syncing directory {}", self.dir.display()))
    }

    /// Syncs the active segment if it holds unsynced writes: every record written before
    /// the call is durable when it returns.
    ///
    /// The sync runs without the active segment's lock, so writers go on appending (a sync
    /// may take tens of milliseconds after a second of writes, and under the lock it stalled
    /// every writer once a second under `EveryMillis(1000)`, as Redis's `everysec` avoids by
    /// syncing on a background thread). A write that lands meanwhile keeps the segment
    /// marked unsynced for the next flush.
    pub(crate) fn flush(&self) -> Result<()> {
        let (file, id, len, written_lsn) = {
            let active = self.active.lock();
            if !active.unsynced {
                return Ok(());
            }
            (
                active.file.clone(),
                active.id,
                active.len,
                active.written_lsn,
            )
        };
        let result = self.timed_sync(&*file, id);
        match &result {
            Ok(()) => {
                let mut active = self.active.lock();
                if active.id == id {
                    // Not after a snapshot install (a new id): its LSNs may be lower.
                    self.synced_lsn.fetch_max(written_lsn, Ordering::Release);
                    if active.len == len {
                        active.unsynced = false;
                    }
                }
            }
            Err(e) => self.poison(&e.to_string()),
        }
        result
    }

    fn check_key(&self, key: &[u8]) -> Result<()> {
        if key.len() > MAX_KEY_BYTES {
            return Err(Error::KeyTooLarge {
                len: key.len(),
                max: MAX_KEY_BYTES,
            });
        }
        Ok(())
    }

    pub(crate) fn check_ops<O: OpView>(&self, ops: impl IntoIterator<Item = O>) -> Result<()> {
        let mut total = RECORD_HEADER_BYTES;
        for op in ops {
            self.check_key(op.key())?;
            let value_len = op.value().map_or(0, <[u8]>::len);
            if value_len > self.opts.max_value_bytes {
                return Err(Error::ValueTooLarge {
                    len: value_len,
                    max: self.opts.max_value_bytes,
                });
            }
            total += crate::wal::record::op_disk_bytes(op.key().len(), value_len) as usize;
        }
        if total > MAX_RECORD_BYTES {
            return Err(Error::BatchTooLarge {
                len: total,
                max: MAX_RECORD_BYTES,
            });
        }
        Ok(())
    }

    fn commit<O: OpView>(&self, ops: &[O], rule: LsnRule) -> Result<Outcome> {
        self.check_ops(ops)?;
        self.commit_record(EncodedRecord::encode(ops), rule)
    }

    fn commit_record(&self, record: EncodedRecord, rule: LsnRule) -> Result<Outcome> {
        self.commits
            .commit(record, rule, self.gather_window(), |group, results| {
                self.lead_group(group, results)
            })
    }

    /// A local write: admitted by the hook, committed, then replicated as the hook requires.
    fn write<O: OpView>(&self, ops: &[O]) -> Result<Lsn> {
        self.check_ops(ops)?;
        self.write_record(EncodedRecord::encode(ops))
    }

    /// A local write of the (checked, non-empty) `batch`, committed as the record it holds.
    fn write_batch(&self, batch: WriteBatch) -> Result<Lsn> {
        self.commit_batch(batch)?.wait()
    }

    /// Commits a non-empty `batch` here; the wait for replication is the caller's.
    fn commit_batch(&self, batch: WriteBatch) -> Result<Replicating> {
        self.check_ops(batch.ops())?;
        self.commit_replicating(record_of(batch)?)
    }

    fn write_record(&self, record: EncodedRecord) -> Result<Lsn> {
        self.commit_replicating(record)?.wait()
    }

    /// Commits `record` here, reading the commit hook once for its admission and for the
    /// replication wait the result holds.
    fn commit_replicating(&self, record: EncodedRecord) -> Result<Replicating> {
        let hook = self.hook();
        let lsn = self.commit_local(record, hook.as_deref())?;
        Ok(Replicating { lsn, hook })
    }

    /// A local write's commit here: admitted by `hook`, then written and durable per the
    /// sync policy. The caller waits for replication as the hook requires.
    fn commit_local(&self, record: EncodedRecord, hook: Option<&dyn CommitHook>) -> Result<Lsn> {
        if let Some(hook) = hook {
            hook.admit()?;
        }
        self.commit_record(record, LsnRule::Next)?.local_lsn()
    }
}

/// The record a checked, non-empty batch commits as. Checked means under
/// [`MAX_RECORD_BYTES`], so the record always forms; an error rather than a panic if not.
fn record_of(batch: WriteBatch) -> Result<EncodedRecord> {
    let len = batch.encoded_len();
    EncodedRecord::from_batch(batch).ok_or(Error::BatchTooLarge {
        len,
        max: MAX_RECORD_BYTES,
    })
}

impl KvStore {
    /// Opens (creating if needed) the store in `dir` with default [`Options`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(dir, Options::default())
    }

    /// Opens (creating if needed) the store in `dir`: takes the directory lock, recovers the
    /// index from hint files and segments, and starts the background threads.
    pub fn open_with(dir: impl AsRef<Path>, opts: Options) -> Result<Self> {
        opts.validate()?;
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).ctx(|| format!("creating directory {}", dir.display()))?;
        let lock_path = dir.join(LOCK_FILE_NAME);
        let lock_file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .ctx(|| format!("opening {}", lock_path.display()))?;
        match lock_file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(Error::Locked { dir }),
            Err(fs::TryLockError::Error(e)) => {
                return Err(Error::io(format!("locking {}", lock_path.display()), e))
            }
        }
        let tail_chunks = crate::tail_cache::TailChunks::new(opts.tail_cache_budget());
        let recovered = recovery::recover(&dir, &opts, &tail_chunks)?;
        let wal_consumers = crate::wal::consumers::WalConsumers::load(&dir);
        let active_id = recovered.active.id;
        let inner = Arc::new(Inner {
            dir,
            state: RwLock::new(recovered.state),
            active: Mutex::new(recovered.active),
            commits: CommitQueue::default(),
            sequencer: Default::default(),
            last_lsn: AtomicU64::new(recovered.last_lsn),
            // Recovery synced what it found (see `recover`).
            synced_lsn: AtomicU64::new(recovered.last_lsn),
            first_unclaimed_write: AtomicU64::new(0),
            writes_claimed: AtomicBool::new(false),
            next_segment_id: AtomicU32::new(recovered.next_segment_id),
            active_segment: AtomicU32::new(active_id),
            counters: Counters::default(),
            poisoned: AtomicBool::new(false),
            poison_reason: Mutex::new(None),
            hook: RwLock::new(None),
            wal_consumers,
            compaction_lock: Mutex::new(()),
            sync_lock: Mutex::new(()),
            delete_stripes: std::array::from_fn(|_| Mutex::new(())),
            leader_scratch: Mutex::default(),
            tail_chunks,
            maintenance: Maintenance::default(),
            opts,
            _lock_file: lock_file,
        });
        // Before any background thread starts: a failed open must leave nothing running (an
        // automatic compaction of the half-opened store would hold its lock and its files).
        let sealed_tail = inner.roll_recovered_tail()?;
        inner.maintenance.start(&inner);
        inner.finish_seal(sealed_tail.as_slice());
        for id in recovered.segments_without_hint {
            inner.schedule_hint(id);
        }
        Ok(KvStore {
            _closer: Arc::new(Closer(inner.clone())),
            inner,
        })
    }

    /// Sets `key` to `value`; returns the write's LSN once it is durable per the sync policy.
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<Lsn> {
        self.inner.write(&[OpRef::Put {
            key: key.as_ref(),
            value: value.as_ref(),
        }])
    }

    /// The value of `key`, read from disk, or `None`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        let key = key.as_ref();
        let (loc, file) = {
            let state = self.inner.state.read();
            let Some(loc) = state.index.get(key) else {
                return Ok(None);
            };
            let file = state
                .segments
                .get(&loc.segment)
                .map(|s| s.file.clone())
                .ok_or_else(|| missing_segment(&self.inner.dir, loc.segment))?;
            (loc, file)
        };
        loc.read_value(&*file, key, &self.inner.dir).map(Some)
    }

    /// The values of `keys`, in order, as they all were at one moment: the writes of one
    /// batch (or one commit group) are seen all or none, which one [`get`](Self::get) per
    /// key does not promise. Refused with [`Error::ReadTooLarge`], before any value is read,
    /// if the values add up to more than `max_bytes` (a key named twice counts twice).
    pub fn get_many<K: AsRef<[u8]>>(
        &self,
        keys: &[K],
        max_bytes: usize,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let found = {
            let state = self.inner.state.read();
            let mut found = Vec::with_capacity(keys.len());
            let mut len = 0usize;
            for key in keys {
                let Some(loc) = state.index.get(key.as_ref()) else {
                    found.push(None);
                    continue;
                };
                len = len.saturating_add(loc.value_len as usize);
                let file = state
                    .segments
                    .get(&loc.segment)
                    .map(|s| s.file.clone())
                    .ok_or_else(|| missing_segment(&self.inner.dir, loc.segment))?;
                found.push(Some((loc, file)));
            }
            if len > max_bytes {
                return Err(Error::ReadTooLarge {
                    len,
                    max: max_bytes,
                });
            }
            found
        };
        // Read outside the lock: a location's bytes never change, and the file handle keeps
        // a segment readable even if compaction retires it meanwhile.
        found
            .into_iter()
            .zip(keys)
            .map(|(found, key)| match found {
                Some((loc, file)) => loc
                    .read_value(&*file, key.as_ref(), &self.inner.dir)
                    .map(Some),
                None => Ok(None),
            })
            .collect()
    }

    /// Whether each of `keys` has a value, all as of one moment (see
    /// [`get_many`](Self::get_many)); no disk read.
    pub fn contains_keys<K: AsRef<[u8]>>(&self, keys: &[K]) -> Vec<bool> {
        let state = self.inner.state.read();
        keys.iter()
            .map(|key| state.index.contains_key(key.as_ref()))
            .collect()
    }

    /// Whether `key` has a value (no disk read).
    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        Ok(self.inner.state.read().index.contains_key(key.as_ref()))
    }

    /// A token of what `key` holds now, to compare with one taken later (no disk read): if
    /// the two are equal, the key kept one value in between, or had none all along. Any
    /// write of the key changes it (even of the same bytes), and so does a snapshot install.
    /// It may also change without a change of the key (a compaction that moved its value;
    /// while it has no value, a delete of any key), never the other way round. This is what
    /// a server's `WATCH` compares.
    pub fn key_version(&self, key: impl AsRef<[u8]>) -> KeyVersion {
        let state = self.inner.state.read();
        match state.index.get(key.as_ref()) {
            Some(loc) => KeyVersion {
                lsn: Some(loc.lsn),
                deletes_up_to: 0,
                installs: state.installs,
            },
            None => KeyVersion {
                lsn: None,
                deletes_up_to: state.last_delete_lsn,
                installs: state.installs,
            },
        }
    }

    /// The length in bytes of `key`'s value, or `None` if it has none (no disk read).
    pub fn value_len(&self, key: impl AsRef<[u8]>) -> Option<usize> {
        self.inner
            .state
            .read()
            .index
            .get(key.as_ref())
            .map(|loc| loc.value_len as usize)
    }

    /// Whether a write of `ops` would be taken as to its shape (key and value sizes, the
    /// record's size): the checks [`write_batch`](Self::write_batch) makes before it writes,
    /// for a caller that plans writes ahead of committing them. Takes a batch's
    /// [`ops`](WriteBatch::ops), or owned operations [`borrowed`](crate::Op::borrowed).
    pub fn check_ops<'a>(&self, ops: impl IntoIterator<Item = OpRef<'a>>) -> Result<()> {
        self.inner.check_ops(ops)
    }

    /// Removes `key`; returns whether it existed. Deleting a missing key logs nothing. Of
    /// concurrent deletes of one key, one answers `true` and logs the delete.
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        let key = key.as_ref();
        self.inner.check_key(key)?;
        self.inner.check_writable()?;
        let stripe = crate::wal::checksum::crc32(key) as usize % DELETE_STRIPES;
        let hook = self.inner.hook();
        let lsn = {
            // From the check to the local commit only: waiting for replicas under the lock
            // would make unrelated deletes of the stripe wait out each other's quorum.
            let _deleting = self.inner.delete_stripes[stripe].lock();
            if !self.contains_key(key)? {
                return Ok(false);
            }
            let ops = [OpRef::Delete { key }];
            self.inner.check_ops(ops)?;
            self.inner
                .commit_local(EncodedRecord::encode(&ops), hook.as_deref())?
        };
        if let Some(hook) = &hook {
            hook.wait_replicated(lsn)?;
        }
        Ok(true)
    }

    /// Commits every operation of `batch` atomically, as one log record with one LSN.
    /// An empty batch commits nothing and returns the current last LSN.
    pub fn write_batch(&self, batch: WriteBatch) -> Result<Lsn> {
        if batch.is_empty() {
            self.inner.check_writable()?;
            return Ok(self.last_lsn());
        }
        self.inner.write_batch(batch)
    }

    /// Commits `batch` here as [`write_batch`](Self::write_batch) does (admitted by the commit
    /// hook, durable per the sync policy), but leaves the wait for replication — the hook's
    /// requirement, such as a sync-mode quorum — to the returned [`Replicating`]. For a caller
    /// that holds a lock of its own around the commit: it lets go before it waits, so that
    /// other writers do not wait out its quorum timeout one after the other.
    pub fn write_batch_then_wait(&self, batch: WriteBatch) -> Result<Replicating> {
        if batch.is_empty() {
            self.inner.check_writable()?;
            return Ok(Replicating {
                lsn: self.last_lsn(),
                hook: None,
            });
        }
        self.inner.commit_batch(batch)
    }

    /// Commits several batches in one commit group: each batch is its own log record with its
    /// own LSN (atomic on its own, in the order given), and all of them share one write and,
    /// under [`SyncPolicy::Always`](crate::SyncPolicy::Always), one `fdatasync`. For a caller
    /// that serves many clients from one thread (an event loop), this is what group commit is
    /// for concurrent writer threads.
    ///
    /// The inner results are per batch: a batch that breaks a limit (key, value or batch size)
    /// gets its error and is not written, the others are; an empty batch commits nothing and
    /// gets the LSN before the group. The outer error is for the whole call: the commit hook
    /// refused the writes up front (nothing written), or they were committed and are durable
    /// here but the hook's replication requirement failed (e.g. `QuorumNotReached`).
    pub fn write_batches(&self, batches: Vec<WriteBatch>) -> Result<Vec<Result<Lsn>>> {
        let (answers, replicating) = self.write_batches_then_wait(batches)?;
        replicating.wait()?;
        Ok(answers)
    }

    /// Commits `batches` as [`write_batches`](Self::write_batches) does, but leaves the wait
    /// for replication (of the newest batch committed, which covers the others: acks are
    /// cumulative) to the returned [`Replicating`], as
    /// [`write_batch_then_wait`](Self::write_batch_then_wait) does for one batch.
    pub fn write_batches_then_wait(
        &self,
        batches: Vec<WriteBatch>,
    ) -> Result<(Vec<Result<Lsn>>, Replicating)> {
        let inner = &self.inner;
        inner.check_writable()?;
        let hook = inner.hook();
        if let Some(hook) = &hook {
            hook.admit()?;
        }
        let before = self.last_lsn();
        let mut answers: Vec<Option<Result<Lsn>>> = Vec::with_capacity(batches.len());
        let mut encoded = Vec::new();
        for batch in batches {
            if batch.is_empty() {
                answers.push(Some(Ok(before)));
                continue;
            }
            match inner.check_ops(batch.ops()).and_then(|()| record_of(batch)) {
                Ok(record) => {
                    encoded.push((record, LsnRule::Next));
                    answers.push(None);
                }
                Err(e) => answers.push(Some(Err(e))),
            }
        }
        let mut committed = inner
            .commits
            .commit_many(encoded, inner.gather_window(), |group, results| {
                inner.lead_group(group, results)
            })
            .into_iter();
        let mut newest = None;
        let answers: Vec<Result<Lsn>> = answers
            .into_iter()
            .map(|answer| {
                answer.unwrap_or_else(|| {
                    let lsn = committed
                        .next()
                        .unwrap_or_else(|| Err(no_answer()))
                        .and_then(Outcome::local_lsn)?;
                    newest = Some(lsn);
                    Ok(lsn)
                })
            })
            .collect();
        let replicating = match newest {
            Some(lsn) => Replicating { lsn, hook },
            None => Replicating {
                lsn: before,
                hook: None,
            },
        };
        Ok((answers, replicating))
    }

    /// Key-ordered iteration over `range`, in both directions (`.rev()`). Holds no lock between
    /// chunks, so a long scan never blocks writers; each item is the newest value at the time
    /// its chunk was read.
    pub fn range<K, R>(&self, range: R) -> Range
    where
        K: AsRef<[u8]>,
        R: RangeBounds<K>,
    {
        Range::new(self.clone(), range)
    }

    /// All keys in order.
    pub fn iter(&self) -> Range {
        self.range::<&[u8], _>(..)
    }

    /// The keys that start with `prefix`, in order.
    pub fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Range {
        Range::prefix(self.clone(), prefix.as_ref())
    }

    /// Number of live keys.
    pub fn len(&self) -> usize {
        self.inner.state.read().index.len()
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes every write acknowledged so far durable (useful under `EveryMillis` / `Never`).
    pub fn flush(&self) -> Result<()> {
        if let Some(reason) = self.inner.poison_reason() {
            return Err(Error::Poisoned { reason });
        }
        self.inner.flush()
    }

    /// Reclaims the space of overwritten and deleted values now, fully: seals the active
    /// segment, then rewrites every log segment and every compacted segment with dead bytes
    /// that no WAL consumer still needs (registered with [`retain_wal`](Self::retain_wal)) into
    /// densely packed compacted segments. Reads and writes go on meanwhile. (Automatic
    /// compaction is lighter: it only rewrites sealed segments with dead bytes.) `wal_since`
    /// cannot serve records older than a compaction.
    pub fn compact(&self) -> Result<crate::CompactionReport> {
        self.inner.compact_all(true)
    }

    /// LSN of the newest committed record (0 for an empty store).
    pub fn last_lsn(&self) -> Lsn {
        self.inner.last_lsn.load(Ordering::Acquire)
    }

    /// The first LSN whose record a new owner of this handle's writes (a replicator's master
    /// incarnation) answers for: the first record written through this handle (a put,
    /// delete or batch, not [`apply_replicated`](Self::apply_replicated)) before the first
    /// [`claim_writes`](Self::claim_writes), if there was one, else the next LSN. Such early
    /// writes follow whatever the log held when it was opened, which a replica may know to be
    /// less than what it was before a crash. Changes nothing: the owner records the answer
    /// durably, then calls `claim_writes`, so that a failure in between leaves it to the
    /// next owner.
    pub fn unclaimed_writes_start(&self) -> Lsn {
        // Under the state lock, so that no group publishes between the reads.
        // The marker is only ever set before the first claim, which clears it.
        let _state = self.inner.state.read();
        let next = self.last_lsn() + 1;
        match self.inner.first_unclaimed_write.load(Ordering::Acquire) {
            0 => next,
            lsn => lsn.min(next),
        }
    }

    /// Marks every write of this handle, past and future, as belonging to the owner that
    /// recorded `recorded_start` from [`unclaimed_writes_start`](Self::unclaimed_writes_start):
    /// from now on that is always the next LSN. Fails with [`Error::WritesNotCovered`], and
    /// claims nothing, when a write below `recorded_start` exists or the next write would get
    /// an LSN below it: the log moved back in between (a snapshot install), so the owner must
    /// record a new start. Writes that only followed the recorded call are covered by it.
    pub fn claim_writes(&self, recorded_start: Lsn) -> Result<()> {
        let _state = self.inner.state.read();
        let next = self.last_lsn() + 1;
        let first_write = match self.inner.first_unclaimed_write.load(Ordering::Acquire) {
            0 => next,
            lsn => lsn.min(next),
        };
        if first_write < recorded_start {
            return Err(Error::WritesNotCovered {
                recorded_start,
                first_write,
            });
        }
        self.inner.writes_claimed.store(true, Ordering::Release);
        self.inner.first_unclaimed_write.store(0, Ordering::Release);
        Ok(())
    }

    /// The LSN up to which this store holds the log's effects: on a replica, the master's LSN
    /// of the last applied record. Survives restarts (it is the LSN stored in the log).
    pub fn applied_lsn(&self) -> Lsn {
        self.last_lsn()
    }

    /// Applies a record from a master with the master's LSN. A record at or below
    /// [`applied_lsn`](Self::applied_lsn) is ignored (`Ok(false)`); one that skips an LSN is
    /// [`Error::LsnGap`] and changes nothing. Returns `Ok(true)` once applied and durable.
    pub fn apply_replicated(&self, record: &WalRecord) -> Result<bool> {
        if record.lsn <= self.last_lsn() {
            return Ok(false);
        }
        match self
            .inner
            .commit(&record.ops, LsnRule::Exactly(record.lsn))?
        {
            Outcome::Committed(_) => Ok(true),
            Outcome::Duplicate => Ok(false),
        }
    }

    /// Applies a run of a master's records in one commit group (one write, one sync), in
    /// order, with [`apply_replicated`](Self::apply_replicated)'s rules for each: a record at
    /// or below the applied LSN is skipped, one that does not directly follow the records
    /// applied before it is refused with [`Error::LsnGap`] (and changes nothing), the others
    /// are applied. So `[1, 3, 2]` on an empty store applies 1 and 2 and refuses 3. Returns
    /// the applied LSN after the run, or the first error (the applied records stay applied).
    ///
    /// Records may be [`WalRecord`]s or the master's encoded bytes
    /// ([`crate::EncodedWalRecord`]), which are written as they are once verified. Before
    /// anything is written, every record to apply is checked: its checksums
    /// ([`Error::Corrupt`] for a damaged record) and this store's key and value limits. A
    /// failed check refuses the whole run and changes nothing.
    pub fn apply_replicated_batch<R: crate::ReplicatedRecord>(&self, records: &[R]) -> Result<Lsn> {
        let applied = self.last_lsn();
        let mut encoded = Vec::with_capacity(records.len());
        for record in records.iter().filter(|r| r.lsn() > applied) {
            let record = record.encoded()?;
            let verified = EncodedRecord::verified(&record)?;
            let max = self.inner.opts.max_value_bytes;
            if let Some(span) = verified.spans.iter().find(|s| s.value_len as usize > max) {
                return Err(Error::ValueTooLarge {
                    len: span.value_len as usize,
                    max,
                });
            }
            encoded.push((verified, LsnRule::Exactly(record.lsn())));
        }
        if encoded.is_empty() {
            return Ok(applied);
        }
        let inner = &self.inner;
        let results =
            inner
                .commits
                .commit_many(encoded, inner.gather_window(), |group, results| {
                    inner.lead_group(group, results)
                });
        for result in results {
            result?;
        }
        Ok(self.last_lsn())
    }

    /// The committed records after `lsn`, in LSN order, as of this call. Fails with
    /// [`Error::WalCompacted`] when compaction has removed some of them.
    pub fn wal_since(&self, lsn: Lsn) -> Result<WalIter> {
        WalIter::new(&self.inner, lsn)
    }

    /// Installs (or with `None` removes) the hook told of every committed write.
    pub fn set_commit_hook(&self, hook: Option<Arc<dyn CommitHook>>) {
        *self.inner.hook.write() = hook;
    }

    /// Removes the commit hook only if it is `hook` (the same allocation); returns whether it
    /// was. Lets an owner detach itself without removing a hook installed after it.
    pub fn remove_commit_hook(&self, hook: &Arc<dyn CommitHook>) -> bool {
        let mut slot = self.inner.hook.write();
        let ours = slot.as_ref().is_some_and(|h| Arc::ptr_eq(h, hook));
        if ours {
            *slot = None;
        }
        ours
    }

    /// Registers (or moves) a WAL consumer such as a replica: log segments holding records after
    /// `lsn` are kept from compaction, up to [`Options::max_retained_wal_bytes`].
    ///
    /// Like a PostgreSQL replication slot, the registration outlives this handle: it is saved
    /// in the data directory, and the next open keeps the log for it again, until
    /// [`release_wal`](Self::release_wal). A new consumer, or one moved back, is saved before
    /// this returns (a failure to save is logged and retried); a move forward is saved within
    /// about a second (later while a compaction runs) and at close, so a crash may lose it,
    /// which only keeps more log than needed.
    pub fn retain_wal(&self, consumer: &str, lsn: Lsn) {
        if self.inner.wal_consumers.set(consumer, lsn) {
            if let Err(e) = self.inner.save_wal_consumers(false) {
                tracing::warn!(error = %e, consumer, "could not save a WAL consumer; will retry");
            }
        }
    }

    /// Unregisters a WAL consumer, here and (within about a second, or at close) on disk.
    pub fn release_wal(&self, consumer: &str) {
        self.inner.wal_consumers.remove(consumer);
    }

    /// The registered WAL consumers (see [`retain_wal`](Self::retain_wal)), including those
    /// saved by an earlier open, and the LSN each has consumed up to; by name.
    pub fn wal_consumers(&self) -> Vec<(String, Lsn)> {
        self.inner.wal_consumers.list()
    }

    /// Bytes of sealed log the consumer at `lsn` still needs, and how many more may accumulate
    /// before compaction stops keeping them (then the consumer must resync from a snapshot).
    pub fn wal_retention(&self, lsn: Lsn) -> crate::stats::WalRetention {
        crate::stats::WalRetention::compute(&self.inner, lsn)
    }

    /// Counters and sizes; cheap enough to call often.
    pub fn stats(&self) -> Stats {
        Stats::collect(&self.inner)
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    /// The largest value this store accepts (`Options::max_value_bytes`).
    pub fn max_value_bytes(&self) -> usize {
        self.inner.opts.max_value_bytes
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &Options {
        &self.inner.opts
    }
}

pub(crate) fn missing_segment(dir: &Path, id: u32) -> Error {
    Error::Corrupt {
        path: crate::wal::segment::segment_path(dir, id),
        offset: 0,
        reason: "the index points into a segment that is not open".into(),
    }
}
