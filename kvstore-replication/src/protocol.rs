//! The messages exchanged between a master's worker and a replica, independent of how they
//! travel (in-process calls, or RESP commands over TCP in `kvstore-net`).
//!
//! A session is: [`Hello`] → [`HelloReply`]; then either a stream of records ([`SharedRecord`]), each
//! answered by one [`Ack`], or (full resync) a sequence of [`SnapshotChunk`]s, each answered by
//! a [`SnapshotAck`], followed by the WAL stream from the snapshot's LSN.

use kvstore_core::{EncodedWalRecord, Lsn};

use crate::timeline::Timeline;

/// Opens a replication session. Sent by the master's worker on every (re)connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Stable name of the master (for logs and the replica's status).
    pub master_id: String,
    /// The master's epoch. A replica that durably accepted a higher epoch refuses with
    /// [`crate::Error::StaleEpoch`]; a higher one is persisted by the replica before it replies.
    pub epoch: u64,
    /// The master's last committed LSN. A replica whose applied LSN is beyond it refuses with
    /// [`crate::Error::Diverged`] unless `force_resync` is set.
    pub master_last_lsn: Lsn,
    /// Operator-forced resync: the replica accepts the session even if diverged, and the master
    /// will replace its contents with a snapshot.
    pub force_resync: bool,
    /// The master's incarnations: a replica whose applied LSN reaches the first LSN where its
    /// own timeline and this one differ refuses with [`crate::Error::Diverged`] unless
    /// `force_resync` is set (see [`crate::timeline`]). Empty from a master that keeps none.
    pub timeline: Timeline,
}

/// The replica's answer to [`Hello`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HelloReply {
    /// The replica's applied LSN: the master streams from `applied_lsn + 1`.
    pub applied_lsn: Lsn,
    /// The epoch the replica now follows (the master's, once accepted).
    pub epoch: u64,
    /// A snapshot install in progress on the replica, which the master may continue instead
    /// of starting over. Its progress is kept while the replica runs, until a chunk 0 starts
    /// an install again or a record is applied instead (the master gave the snapshot up).
    pub snapshot_in_progress: Option<SnapshotProgress>,
    /// Who answered: an id the replica drew when it started (`None` from a peer that sends
    /// none). A master that reaches one replica under two addresses sees the same id twice
    /// and counts it once.
    pub replica_id: Option<u64>,
}

/// How far a snapshot install has come on the replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotProgress {
    /// LSN of the snapshot being installed (identifies it).
    pub snapshot_lsn: Lsn,
    /// The chunk the replica expects next.
    pub next_seq: u64,
}

/// A cumulative acknowledgement: the answer to one record.
///
/// Exactly one `Ack` comes back per record sent, in the order the replica processed them.
/// Records applied together as one window (see [`crate::ReplicaEndpoint::apply_many`]) are all
/// answered with the applied LSN after the window, which may be beyond their own `lsn`.
/// `applied_lsn < lsn` means the replica could not apply `lsn` because an earlier record is
/// missing (a gap): the master must resend from `applied_lsn + 1`. `lsn <= applied_lsn` on
/// arrival (a duplicate) is ignored by the replica and acknowledged normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// The record this acknowledgement answers.
    pub lsn: Lsn,
    /// Everything up to and including this LSN is durably applied on the replica.
    pub applied_lsn: Lsn,
}

impl Ack {
    /// Whether the replica reported a gap before `lsn`.
    pub fn is_gap(&self) -> bool {
        self.applied_lsn < self.lsn
    }
}

/// One piece of a snapshot: a fragment of one key's value. Values larger than a chunk are
/// split into several pieces with increasing `value_offset`, so no single message has to hold
/// a whole large value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotPiece {
    /// The key.
    pub key: Vec<u8>,
    /// Offset of `data` inside the value.
    pub value_offset: u64,
    /// Length of the whole value.
    pub value_len: u64,
    /// The fragment `value[value_offset .. value_offset + data.len()]`.
    pub data: Vec<u8>,
}

impl SnapshotPiece {
    /// Whether this piece completes its value.
    pub fn completes_value(&self) -> bool {
        self.value_offset + self.data.len() as u64 == self.value_len
    }

    /// Bytes this piece carries (key plus data), for chunk sizing.
    pub fn payload_bytes(&self) -> usize {
        self.key.len() + self.data.len()
    }
}

/// A numbered chunk of a snapshot. Chunk `seq == 0` starts an install, discarding any
/// unfinished one, even of the same snapshot: a master with nothing to resume sends it, and
/// a snapshot taken anew with no writes since has the same LSN. Chunks must arrive in order;
/// `last` finishes the install, after which the replica's applied LSN is `snapshot_lsn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotChunk {
    /// LSN of the snapshot (every write up to it is reflected).
    pub snapshot_lsn: Lsn,
    /// Position of this chunk, from 0.
    pub seq: u64,
    /// Value fragments, in key order.
    pub pieces: Vec<SnapshotPiece>,
    /// Whether this is the final chunk.
    pub last: bool,
}

/// The replica's answer to a [`SnapshotChunk`].
///
/// A chunk with `0 < seq < next_seq` of the same snapshot is a duplicate and changes nothing
/// (chunk 0 starts over, see [`SnapshotChunk`]); one with `seq > next_seq` is refused without
/// effect (the reply still says which `next_seq` is
/// expected, 0 when the replica has no install of that snapshot in progress).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotAck {
    /// The chunk the replica expects next.
    pub next_seq: u64,
    /// The replica's applied LSN (the snapshot's LSN once the last chunk is installed).
    pub applied_lsn: Lsn,
    /// Whether the install finished.
    pub finished: bool,
}

/// Records as the master sends them: the master's log bytes with their checksums, shared,
/// never copied per replica (a clone bumps a reference count). A replica verifies them when it
/// applies them; a transport that carries operations instead decodes them with
/// [`EncodedWalRecord::to_wal_record`].
pub type SharedRecord = EncodedWalRecord;
