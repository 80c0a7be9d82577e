//! The engine's error type.

use std::io;
use std::path::PathBuf;

use crate::Lsn;

/// Result alias used across `kvstore-core`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the storage engine.
///
/// Variants carry the context a caller needs to decide what to do: the file and offset of
/// corruption, the limits that were exceeded, the LSNs involved in a replication gap.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O call failed; `context` says what the engine was doing.
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What the engine was doing, including the path when there is one.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Data on disk failed validation somewhere a torn tail cannot explain.
    #[error("corruption in {} at offset {offset}: {reason}", path.display())]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset of the first invalid byte or record.
        offset: u64,
        /// What check failed.
        reason: String,
    },
    /// Another handle or process holds the directory's lock file.
    #[error("data directory {} is already open by another process or handle (lock file {})", dir.display(), dir.join(crate::LOCK_FILE_NAME).display())]
    Locked {
        /// The data directory.
        dir: PathBuf,
    },
    /// A key longer than [`crate::MAX_KEY_BYTES`].
    #[error("key of {len} bytes exceeds the maximum of {max} bytes")]
    KeyTooLarge {
        /// Length of the rejected key.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A value longer than [`crate::Options::max_value_bytes`].
    #[error("value of {len} bytes exceeds the maximum of {max} bytes")]
    ValueTooLarge {
        /// Length of the rejected value.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Values read together ([`crate::KvStore::get_many`]) add up to more than the caller's
    /// limit; nothing was read.
    #[error("values read together add up to {len} bytes, more than the maximum of {max} bytes")]
    ReadTooLarge {
        /// Bytes the values add up to.
        len: usize,
        /// The caller's limit.
        max: usize,
    },
    /// A write batch whose encoded size exceeds [`crate::MAX_RECORD_BYTES`].
    #[error("write batch of {len} encoded bytes exceeds the maximum of {max} bytes")]
    BatchTooLarge {
        /// Encoded size of the rejected batch.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An earlier write or fsync failed; the store refuses writes until reopened (reads go on).
    #[error("store is poisoned for writes after an earlier I/O failure ({reason}); reopen it to recover from the log")]
    Poisoned {
        /// The failure that poisoned the store.
        reason: String,
    },
    /// `wal_since` asked for records that compaction already removed.
    #[error("WAL records after LSN {requested} are no longer available: the log starts after LSN {oldest_available}")]
    WalCompacted {
        /// The LSN the caller asked to start after.
        requested: Lsn,
        /// The lowest LSN `wal_since` accepts now.
        oldest_available: Lsn,
    },
    /// `apply_replicated` received a record that does not directly follow the applied LSN.
    #[error("replication gap: expected LSN {expected}, got {got}")]
    LsnGap {
        /// The LSN that would have been applied next.
        expected: Lsn,
        /// The LSN that arrived.
        got: Lsn,
    },
    /// A synchronous write is durable locally but fewer than `required` replicas acknowledged it in time.
    #[error("write at LSN {lsn} is durable on the master but only {acked} of {required} required replicas acknowledged it in time")]
    QuorumNotReached {
        /// LSN of the write, which stays committed and will still be replicated.
        lsn: Lsn,
        /// Replicas that acknowledged in time.
        acked: usize,
        /// Replicas the quorum required.
        required: usize,
    },
    /// A write was refused before it was logged because too few replicas are healthy.
    #[error("NOREPLICAS not enough healthy replicas: {healthy} healthy, {required} required")]
    NotEnoughReplicas {
        /// Replicas healthy at the time.
        healthy: usize,
        /// The configured minimum.
        required: usize,
    },
    /// The store refuses client writes (a replica).
    #[error("READONLY this store is a replica and refuses direct writes")]
    ReadOnly,
    /// An option or argument was out of range.
    #[error("invalid option: {0}")]
    InvalidOptions(String),
    /// [`KvStore::claim_writes`](crate::KvStore::claim_writes) found a write its owner's
    /// recorded start does not cover: the log changed in between (a snapshot install lowered
    /// its LSN). Nothing was claimed; the owner records a new start and claims again.
    #[error(
        "writes from LSN {first_write} on are not covered by the recorded start {recorded_start}"
    )]
    WritesNotCovered {
        /// What the owner recorded from `unclaimed_writes_start`.
        recorded_start: crate::Lsn,
        /// The first write (or the next LSN) below it.
        first_write: crate::Lsn,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Attaches context to `io::Result`s.
pub(crate) trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::io(context(), source))
    }
}
