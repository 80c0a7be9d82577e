//! Snapshots for full resynchronisation of a replica: reading one on the master, installing
//! one on the replica.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use crate::batch::Op;
use crate::error::{Error, Result};
use crate::index::{DeadOps, State};
use crate::iter::Range;
use crate::wal::compacted::CompactedWriter;
use crate::wal::record::op_disk_bytes;
use crate::wal::segment::{EndCheck, SegmentHeader, SegmentId};
use crate::wal::swap::{self, SwapPlan};
use crate::wal::writer::ActiveSegment;
use crate::{KvStore, Lsn, MAX_KEY_BYTES};

/// A fuzzy snapshot of a store, from [`KvStore::snapshot`]: every key with a value at least as
/// new as [`lsn`](Snapshot::lsn) (writes after it may show through, as the scan does not block
/// writers). Installing it and then applying `wal_since(lsn)` converges to the master's state,
/// because every write after `lsn` is replayed over it in order.
#[derive(Debug)]
pub struct Snapshot {
    lsn: Lsn,
    entries: Range,
}

impl Snapshot {
    /// Every write up to this LSN is reflected in the snapshot.
    pub fn lsn(&self) -> Lsn {
        self.lsn
    }
}

impl Iterator for Snapshot {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.entries.next()
    }
}

impl KvStore {
    /// Starts a snapshot for a replica's full resync. Register the replica with
    /// [`retain_wal`](KvStore::retain_wal) at `snapshot.lsn()` first, so that the records to
    /// replay after it stay available.
    pub fn snapshot(&self) -> Snapshot {
        // The index and `last_lsn` are published together, so every write up to this LSN is
        // already in the index the scan reads.
        let lsn = self.last_lsn();
        Snapshot {
            lsn,
            entries: self.iter(),
        }
    }

    /// Starts replacing this store's whole contents with a snapshot taken at `lsn` on a
    /// master. The store keeps serving its current contents until
    /// [`SnapshotInstall::finish`]; dropping the install unfinished changes nothing.
    pub fn begin_snapshot_install(&self, lsn: Lsn) -> Result<SnapshotInstall> {
        if let Some(reason) = self.inner.poison_reason() {
            return Err(Error::Poisoned { reason });
        }
        Ok(SnapshotInstall {
            store: self.clone(),
            lsn,
            writer: CompactedWriter::new(&self.inner, lsn),
            added: 0,
        })
    }
}

/// A snapshot being written into a store, from [`KvStore::begin_snapshot_install`].
pub struct SnapshotInstall {
    store: KvStore,
    lsn: Lsn,
    writer: CompactedWriter,
    /// Puts added so far.
    added: usize,
}

impl std::fmt::Debug for SnapshotInstall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotInstall")
            .field("lsn", &self.lsn)
            .field("added", &self.added)
            .finish()
    }
}

impl SnapshotInstall {
    /// Adds one key. A key added twice keeps its last value.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let (key, value) = (key.as_ref(), value.as_ref());
        if key.len() > MAX_KEY_BYTES {
            return Err(Error::KeyTooLarge {
                len: key.len(),
                max: MAX_KEY_BYTES,
            });
        }
        let max = self.store.inner.opts.max_value_bytes;
        if value.len() > max {
            return Err(Error::ValueTooLarge {
                len: value.len(),
                max,
            });
        }
        let op = Op::Put {
            key: key.to_vec(),
            value: value.to_vec(),
        };
        self.writer.append(op, None)?;
        self.added += 1;
        Ok(())
    }

    /// The largest value the store being installed into accepts.
    pub fn max_value_bytes(&self) -> usize {
        self.store.inner.opts.max_value_bytes
    }

    /// Puts added so far (a key sent twice counts twice).
    pub fn len(&self) -> usize {
        self.added
    }

    /// Whether nothing was added yet.
    pub fn is_empty(&self) -> bool {
        self.added == 0
    }

    /// Atomically replaces the store's contents with the snapshot and sets its applied LSN to
    /// the snapshot's. After a crash, the store holds either its old contents or the snapshot.
    pub fn finish(self) -> Result<()> {
        let SnapshotInstall {
            store, lsn, writer, ..
        } = self;
        let inner = &store.inner;
        let (outputs, placements) = writer.finish()?;
        // The index the store will have: the last placement of each key wins.
        let mut new_state = State::default();
        let mut dead: HashMap<SegmentId, DeadOps> = HashMap::new();
        for p in &placements {
            let bytes = op_disk_bytes(p.key.len(), p.new.value_len as usize);
            new_state.live_bytes += bytes;
            if let Some(old) = new_state.index.insert(&p.key, p.new) {
                let replaced = op_disk_bytes(p.key.len(), old.value_len as usize);
                dead.entry(old.segment)
                    .or_default()
                    .put(old.value_offset, replaced);
                new_state.live_bytes -= replaced;
            }
        }
        drop(placements);
        let _no_compaction = inner.compaction_lock.lock();
        let mut active = inner.active.lock();
        // Groups written before the swap publish first (into the state about to be replaced).
        inner.sequencer.drain();
        if let Some(reason) = inner.poison_reason() {
            CompactedWriter::abandon(&outputs, &inner.dir);
            return Err(Error::Poisoned { reason });
        }
        let old_ids: Vec<u32> = inner.state.read().segments.keys().copied().collect();
        let plan = SwapPlan {
            install: outputs.iter().map(|o| o.id).collect(),
            delete: old_ids,
        };
        if let Err(e) = inner.sync_dir() {
            CompactedWriter::abandon(&outputs, &inner.dir);
            return Err(e);
        }
        match swap::commit(&inner.dir, &plan, &*inner.opts.vfs) {
            Ok(()) => {}
            Err(swap::CommitError::NotCommitted(e)) => {
                CompactedWriter::abandon(&outputs, &inner.dir);
                return Err(e);
            }
            Err(swap::CommitError::Undecided(e)) => {
                // A reopen finishes the install with the snapshot's segments.
                inner.poison(&format!("committing a snapshot install failed: {e}"));
                return Err(e);
            }
        }
        // From here the swap is durable; a failure leaves the on-disk store right but this
        // handle stale, so it is poisoned and a reopen finishes the job.
        let result = (|| {
            swap::apply(&inner.dir, &plan, &*inner.opts.vfs)?;
            let id = inner.next_segment_id.fetch_add(1, Ordering::SeqCst);
            let header = SegmentHeader {
                id,
                compacted: false,
                lsn_mark: lsn,
                // What came before was replaced by the snapshot.
                end_check: EndCheck::None,
                salt: crate::wal::segment::new_salt(),
            };
            let file = inner.create_active_segment_file(id, &header)?;
            Ok((header, file))
        })();
        let (header, file) = match result {
            Ok(v) => v,
            Err(e) => {
                inner.poison(&format!("installing a snapshot failed midway: {e}"));
                return Err(e);
            }
        };
        for out in outputs {
            let mut segment = out.segment;
            if let Some(ops) = dead.remove(&out.id) {
                segment.absorb(ops);
            }
            new_state.segments.insert(out.id, segment);
        }
        let id = header.id;
        new_state
            .segments
            .insert(id, crate::index::Segment::fresh_log(file.clone(), &header));
        {
            let mut state = inner.state.write();
            new_state.installs = state.installs + 1;
            new_state.last_delete_lsn = state.last_delete_lsn;
            *state = new_state;
            inner.last_lsn.store(lsn, Ordering::Release);
            // The installed segments were synced before the swap; LSNs may have gone down.
            inner.synced_lsn.store(lsn, Ordering::Release);
            // The log now holds the master's records only: no local write of this handle is
            // left for a later owner to answer for (see `KvStore::claim_writes`).
            inner.first_unclaimed_write.store(0, Ordering::Release);
        }
        *active = ActiveSegment::fresh(file, &header);
        inner.active_segment.store(id, Ordering::Release);
        tracing::info!(lsn, keys = store.len(), "snapshot installed");
        Ok(())
    }
}
