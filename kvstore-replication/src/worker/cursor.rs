//! Where a worker reads records and snapshot chunks from on the master: a WAL cursor kept
//! across windows of a catch-up, and a snapshot cursor kept across reconnects of a resync.

use kvstore_core::{KvStore, Lsn, Snapshot, WalIter};

use crate::config::MAX_SNAPSHOT_CHUNK_ENTRIES;
use crate::error::Result;
use crate::protocol::{SharedRecord, SnapshotChunk, SnapshotPiece, SnapshotProgress};

/// An open `wal_since` iterator; reading it from the start of a segment again for every
/// window would cost a segment scan per window, so it is kept while it is useful.
pub(crate) struct WalCursor {
    iter: WalIter,
    /// The LSN the cursor yields next.
    next_lsn: Lsn,
}

impl WalCursor {
    /// Opens a cursor after `after`; fails with `WalCompacted` if the WAL no longer has it.
    pub fn open(store: &KvStore, after: Lsn) -> Result<Self> {
        Ok(WalCursor {
            iter: store.wal_since(after)?,
            next_lsn: after + 1,
        })
    }

    /// Whether the cursor continues right after `lsn`.
    pub fn continues(&self, lsn: Lsn) -> bool {
        self.next_lsn == lsn + 1
    }

    /// Up to `max` records, in the log's encoding as read (never decoded and encoded again);
    /// empty when the iterator reached the end it saw when opened.
    pub fn read(&mut self, max: usize) -> Result<Vec<SharedRecord>> {
        let mut out = Vec::with_capacity(max.min(1024));
        while out.len() < max {
            match self.iter.next_encoded() {
                Some(record) => {
                    let record = record?;
                    if record.lsn() < self.next_lsn {
                        continue;
                    }
                    self.next_lsn = record.lsn() + 1;
                    out.push(record);
                }
                None => break,
            }
        }
        Ok(out)
    }
}

/// A snapshot being streamed to a replica. Kept across reconnects so that a transfer
/// interrupted by the network resumes at the chunk the replica expects instead of restarting.
pub(crate) struct SnapshotCursor {
    snapshot: Snapshot,
    lsn: Lsn,
    /// Sequence number of the next chunk to generate.
    next_seq: u64,
    /// A chunk sent but not acknowledged (resent as is, never regenerated).
    pending: Option<SnapshotChunk>,
    /// A value only partly emitted: key, value, offset of the next piece.
    carry: Option<(Vec<u8>, Vec<u8>, usize)>,
    exhausted: bool,
}

impl SnapshotCursor {
    pub fn new(snapshot: Snapshot) -> Self {
        SnapshotCursor {
            lsn: snapshot.lsn(),
            snapshot,
            next_seq: 0,
            pending: None,
            carry: None,
            exhausted: false,
        }
    }

    /// The LSN of the snapshot being sent: the replica needs the WAL after it.
    pub fn lsn(&self) -> Lsn {
        self.lsn
    }

    /// Lines the cursor up with the replica's progress after a reconnect; false when the
    /// replica's state cannot be continued (a different or lost install), so a fresh snapshot
    /// is needed.
    pub fn resume(&mut self, progress: Option<SnapshotProgress>) -> bool {
        let Some(progress) = progress.filter(|p| p.snapshot_lsn == self.lsn) else {
            return false;
        };
        match &self.pending {
            Some(chunk) if chunk.seq == progress.next_seq => true,
            Some(chunk) if chunk.seq + 1 == progress.next_seq => {
                self.pending = None;
                true
            }
            Some(_) => false,
            None => progress.next_seq == self.next_seq,
        }
    }

    /// The chunk to send now: the unacknowledged one, or the next one.
    pub fn chunk(&mut self, chunk_bytes: usize) -> Result<SnapshotChunk> {
        if let Some(chunk) = &self.pending {
            return Ok(chunk.clone());
        }
        let chunk = self.generate(chunk_bytes)?;
        self.pending = Some(chunk.clone());
        Ok(chunk)
    }

    /// The replica took the pending chunk.
    pub fn acknowledged(&mut self) {
        self.pending = None;
    }

    fn generate(&mut self, chunk_bytes: usize) -> Result<SnapshotChunk> {
        let mut pieces = Vec::new();
        let mut bytes = 0usize;
        while bytes < chunk_bytes && pieces.len() < MAX_SNAPSHOT_CHUNK_ENTRIES {
            let (key, value, offset) = match self.carry.take() {
                Some(carry) => carry,
                None => match self.snapshot.next() {
                    Some(entry) => {
                        let (key, value) = entry?;
                        (key, value, 0)
                    }
                    None => {
                        self.exhausted = true;
                        break;
                    }
                },
            };
            let room = (chunk_bytes - bytes).saturating_sub(key.len()).max(1);
            let take = (value.len() - offset).min(room);
            pieces.push(SnapshotPiece {
                key: key.clone(),
                value_offset: offset as u64,
                value_len: value.len() as u64,
                data: value[offset..offset + take].to_vec(),
            });
            bytes += key.len() + take;
            if offset + take < value.len() {
                self.carry = Some((key, value, offset + take));
                break;
            }
        }
        let chunk = SnapshotChunk {
            snapshot_lsn: self.lsn,
            seq: self.next_seq,
            pieces,
            last: self.exhausted && self.carry.is_none(),
        };
        self.next_seq += 1;
        Ok(chunk)
    }
}
