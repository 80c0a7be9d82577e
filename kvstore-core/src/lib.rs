//! `kvstore-core`: the storage engine of kvstore.
//!
//! A log of append-only, CRC-checked segment files plus an in-memory ordered index from
//! each key to where its newest value lies on disk (Bitcask-style: values stay on disk, so
//! data larger than memory works). Writers share fsyncs through group commit, recovery
//! truncates a torn tail and reads hint files instead of values, and compaction reclaims
//! overwritten and deleted values online.
//!
//! ```
//! use kvstore_core::{KvStore, WriteBatch};
//! # let dir = tempfile::tempdir()?;
//! let store = KvStore::open(dir.path())?;
//! store.put(b"fruit:apple", b"red")?;
//! let mut batch = WriteBatch::new();
//! batch.put(b"fruit:kiwi", b"green").put(b"veg:leek", b"green");
//! store.write_batch(batch)?;
//! let fruits: Vec<_> = store.scan_prefix(b"fruit:").collect::<Result<_, _>>()?;
//! assert_eq!(fruits.len(), 2);
//! drop(store);
//! let store = KvStore::open(dir.path())?; // recovered from disk
//! assert_eq!(store.get(b"veg:leek")?, Some(b"green".to_vec()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layout
//! - [`store`](KvStore): the public handle and its shared state
//! - `commit`: the group-commit leader (write, sync, publish, notify the hook)
//! - `wal`: `record` (encoding), `segment` (files and headers), `writer` (commit queue),
//!   `reader` (sequential scan), `hint` (hint files), `recovery` (open), `iter` (`wal_since`),
//!   `compacted` (writing compacted segments), `swap` (crash-atomic segment replacement),
//!   `varint` (the lengths and deltas of records and hints)
//! - `index`: the segment table with dead-byte accounting, and `keymap`, the compact ordered
//!   map from key to value location
//! - `compaction`: online rewriting of sealed segments
//! - `snapshot`: fuzzy snapshots and their atomic installation (replica full resync)
//! - `iter`: ordered range iteration in chunks
//! - `maintenance`: the background threads (hints and automatic compaction; the periodic sync)
//! - `tail_cache`: the active segment's newest writes, kept in memory until it is sealed
//! - [`io`]: the file seam and its fault-injecting double, and the prefetch hint
//! - [`hook`](CommitHook): how replication hears of commits

// Two audited exceptions, both in `io`: `OsFile::seal` maps a sealed segment and `prefetch`
// issues a cache hint (see their SAFETY notes).
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod batch;
mod commit;
mod compaction;
mod error;
mod hook;
mod index;
pub mod io;
mod iter;
mod keymap;
mod maintenance;
mod options;
mod snapshot;
mod spare_cpu;
mod stats;
mod store;
mod tail_cache;
mod wal;

pub use batch::{BatchOps, Op, OpRef, WriteBatch};
pub use compaction::CompactionReport;
pub use error::{Error, Result};
pub use hook::CommitHook;
pub use iter::{prefix_end, Range};
pub use options::{
    Options, RecoveryMode, SyncPolicy, DEFAULT_MAX_RETAINED_WAL_BYTES, DEFAULT_MAX_VALUE_BYTES,
    DEFAULT_SEGMENT_BYTES,
};
pub use snapshot::{Snapshot, SnapshotInstall};
pub use stats::{Stats, WalRetention};
pub use store::{KeyVersion, KvStore, Replicating};
pub use wal::iter::WalIter;
pub use wal::record::{EncodedWalRecord, ReplicatedRecord, WalRecord};

/// Log sequence number: every committed write (a put, a delete or a whole batch) gets the
/// next one, starting at 1.
pub type Lsn = u64;

/// Largest key accepted: 64 KiB. Longer keys get [`Error::KeyTooLarge`].
pub const MAX_KEY_BYTES: usize = 64 << 10;

/// Largest encoded record (a put or a whole batch): 1 GiB. Larger batches get
/// [`Error::BatchTooLarge`]; recovery treats a longer length field as corruption.
pub const MAX_RECORD_BYTES: usize = 1 << 30;

/// Name of the lock file that keeps a second process from opening the same directory.
pub const LOCK_FILE_NAME: &str = "LOCK";
