//! Tunables of a store: durability, segment size, limits, compaction and recovery.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::io::{OsVfs, Vfs};
use crate::{KvStore, MAX_RECORD_BYTES};

/// When an acknowledged write reaches stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// `fdatasync` before a write returns. Concurrent writers share one sync (group commit).
    /// Nothing acknowledged is lost on power failure. The default.
    Always,
    /// A background thread of its own syncs every `n` milliseconds, compaction or not; at
    /// most about `n` ms of acknowledged writes can be lost on power failure (none on a
    /// process crash).
    EveryMillis(u64),
    /// The operating system decides when to write back; a process crash loses nothing,
    /// a power failure may lose everything since the last `flush`.
    Never,
}

/// How recovery treats records that fail validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryMode {
    /// Truncate a torn or corrupt tail of the newest log segment (logged); corruption anywhere
    /// else is an [`Error::Corrupt`] naming file and offset. The default.
    TruncateTail,
    /// Keep every valid record before the first damaged one in each segment and drop the rest,
    /// logging what was dropped. For getting a damaged store readable again; data may be lost.
    Salvage,
}

/// Default maximum size of a value: 64 MiB.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 64 << 20;
/// Default size at which the active segment is sealed and a new one started: 8 MiB. Small
/// enough that recovery, which scans the active segment (sealed ones have hints), stays quick.
pub const DEFAULT_SEGMENT_BYTES: u64 = 8 << 20;
/// Default WAL kept for registered `wal_since` consumers before they must resync: 1 GiB.
pub const DEFAULT_MAX_RETAINED_WAL_BYTES: u64 = 1 << 30;

/// Options for opening a [`KvStore`]; a consuming builder whose setters document their defaults.
///
/// ```
/// use kvstore_core::{Options, SyncPolicy};
/// # let dir = tempfile::tempdir()?;
/// let store = Options::new()
///     .sync_policy(SyncPolicy::EveryMillis(100))
///     .segment_bytes(8 << 20)
///     .open(dir.path())?;
/// store.put(b"k", b"v")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    pub(crate) sync_policy: SyncPolicy,
    pub(crate) segment_bytes: u64,
    pub(crate) max_value_bytes: usize,
    pub(crate) compaction_dead_ratio: f64,
    pub(crate) compaction_min_dead_bytes: u64,
    pub(crate) auto_compaction: bool,
    pub(crate) recovery_mode: RecoveryMode,
    pub(crate) max_retained_wal_bytes: u64,
    pub(crate) maintenance_interval: Duration,
    pub(crate) vfs: Arc<dyn Vfs>,
    /// `None`: the default, one segment.
    pub(crate) tail_cache_bytes: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sync_policy: SyncPolicy::Always,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            compaction_dead_ratio: 0.4,
            compaction_min_dead_bytes: 1 << 20,
            auto_compaction: true,
            recovery_mode: RecoveryMode::TruncateTail,
            max_retained_wal_bytes: DEFAULT_MAX_RETAINED_WAL_BYTES,
            maintenance_interval: Duration::from_millis(100),
            vfs: Arc::new(OsVfs),
            tail_cache_bytes: None,
        }
    }
}

impl Options {
    /// The defaults: `SyncPolicy::Always`, 8 MiB segments, 64 MiB values, automatic
    /// compaction at 40% dead bytes, `RecoveryMode::TruncateTail`, 1 GiB WAL retention.
    pub fn new() -> Self {
        Self::default()
    }

    /// Durability of acknowledged writes. Default: [`SyncPolicy::Always`].
    pub fn sync_policy(mut self, policy: SyncPolicy) -> Self {
        self.sync_policy = policy;
        self
    }

    /// Size at which the active segment is sealed (a hint file is then written for it).
    /// Default: 8 MiB. Must be between 4 KiB and 2 GiB.
    pub fn segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes;
        self
    }

    /// Memory that keeps the newest writes of the active segment readable without a system
    /// call (sealed segments are memory-mapped instead). Default: one segment, so the whole
    /// active segment is cached; less keeps only its newest bytes (in 256 KiB steps); 0 turns
    /// the cache off. A process with many stores may want less than 8 MiB each. More than a
    /// segment caches one segment.
    pub fn tail_cache_bytes(mut self, bytes: usize) -> Self {
        self.tail_cache_bytes = Some(bytes);
        self
    }

    /// The effective [`tail_cache_bytes`](Self::tail_cache_bytes).
    pub(crate) fn tail_cache_budget(&self) -> usize {
        // The cache mirrors the active segment only: a budget past it caches nothing more
        // (and, near `usize::MAX`, would overflow rounding up to whole chunks).
        let segment = usize::try_from(self.segment_bytes).unwrap_or(usize::MAX);
        self.tail_cache_bytes.unwrap_or(segment).min(segment)
    }

    /// Largest accepted value; larger ones get [`Error::ValueTooLarge`]. Default: 64 MiB.
    /// At most 512 MiB (half the largest record, [`crate::MAX_RECORD_BYTES`]); more is
    /// refused at open.
    pub fn max_value_bytes(mut self, bytes: usize) -> Self {
        self.max_value_bytes = bytes;
        self
    }

    /// Share of dead bytes in the sealed segments past which compaction starts on its own; it
    /// then takes the segments whose own dead share passes it. Default: 0.4, which keeps the
    /// log under about 1.7 times the live data (0.5: 2 times) for the price of compacting a
    /// little more often. While writes stream in (the log grew by a sixteenth of a segment
    /// or more since the last maintenance check) and the machine has no idle processor to
    /// spare, it waits for a share halfway from this ratio to 1, so that compaction does not
    /// take the processor from a write burst; it catches up once the burst is over. Must be
    /// in (0, 1].
    pub fn compaction_dead_ratio(mut self, ratio: f64) -> Self {
        self.compaction_dead_ratio = ratio;
        self
    }

    /// Dead bytes below which automatic compaction never starts, however high the ratio.
    /// Default: 1 MiB.
    pub fn compaction_min_dead_bytes(mut self, bytes: u64) -> Self {
        self.compaction_min_dead_bytes = bytes;
        self
    }

    /// Whether compaction runs on its own in the background. Default: true.
    /// [`KvStore::compact`] works either way.
    pub fn auto_compaction(mut self, enabled: bool) -> Self {
        self.auto_compaction = enabled;
        self
    }

    /// What recovery does with damaged records. Default: [`RecoveryMode::TruncateTail`].
    pub fn recovery_mode(mut self, mode: RecoveryMode) -> Self {
        self.recovery_mode = mode;
        self
    }

    /// Most bytes of sealed log segments kept only because a registered WAL consumer
    /// (a replica) has not read them yet. Past it compaction proceeds and that consumer must
    /// resync from a snapshot. Default: 1 GiB.
    pub fn max_retained_wal_bytes(mut self, bytes: u64) -> Self {
        self.max_retained_wal_bytes = bytes;
        self
    }

    /// How often the background thread checks for compaction work. Default: 100 ms.
    pub fn maintenance_interval(mut self, interval: Duration) -> Self {
        self.maintenance_interval = interval;
        self
    }

    /// The file-system seam segment files go through; tests pass a fault-injecting one.
    /// Default: [`OsVfs`].
    pub fn vfs(mut self, vfs: Arc<dyn Vfs>) -> Self {
        self.vfs = vfs;
        self
    }

    /// Opens (creating if needed) the store in `dir` with these options.
    pub fn open(self, dir: impl AsRef<Path>) -> Result<KvStore> {
        KvStore::open_with(dir, self)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if !(4096..=(2u64 << 30)).contains(&self.segment_bytes) {
            return Err(Error::InvalidOptions(format!(
                "segment_bytes must be between 4096 and 2 GiB, got {}",
                self.segment_bytes
            )));
        }
        if self.max_value_bytes > MAX_RECORD_BYTES / 2 {
            return Err(Error::InvalidOptions(format!(
                "max_value_bytes must be at most {} bytes, got {}",
                MAX_RECORD_BYTES / 2,
                self.max_value_bytes
            )));
        }
        if !(self.compaction_dead_ratio > 0.0 && self.compaction_dead_ratio <= 1.0) {
            return Err(Error::InvalidOptions(format!(
                "compaction_dead_ratio must be in (0, 1], got {}",
                self.compaction_dead_ratio
            )));
        }
        if let SyncPolicy::EveryMillis(0) = self.sync_policy {
            return Err(Error::InvalidOptions(
                "SyncPolicy::EveryMillis needs a period of at least 1 ms".into(),
            ));
        }
        if self.maintenance_interval.is_zero() {
            return Err(Error::InvalidOptions(
                "maintenance_interval must be positive".into(),
            ));
        }
        Ok(())
    }
}
