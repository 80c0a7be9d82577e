//! The replicator's configuration: a consuming builder, validated before any thread starts.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::retry::Backoff;
use crate::transport::{BoxedTransport, Transport, DEFAULT_ACK_TIMEOUT};

/// When a write returns to its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicationMode {
    /// After the local commit; replicas follow in the background.
    Async,
    /// After `quorum` replicas acknowledged the write, or [`kvstore_core::Error::QuorumNotReached`]
    /// after `timeout` (the write stays durable on the master and still reaches replicas later).
    Sync {
        /// Replicas that must acknowledge (1 ..= number of replicas).
        quorum: usize,
        /// How long a writer waits for them.
        timeout: Duration,
    },
}

impl ReplicationMode {
    /// `Sync` with a majority of `replicas` (more than half of them).
    pub fn majority(replicas: usize, timeout: Duration) -> Self {
        ReplicationMode::Sync {
            quorum: crate::quorum::majority(replicas),
            timeout,
        }
    }
}

/// Default capacity of the replicas' live queue, in records. When it is full, the oldest
/// record makes room for the newest, and a replica that had not taken it reads it from the
/// master's WAL instead.
pub const DEFAULT_QUEUE_CAPACITY: usize = 16 * 1024;
/// Default bound on the bytes of the replicas' live queue: records of large values reach the
/// record bound only with gigabytes held, so the bytes are bounded too; past this, as past
/// [`DEFAULT_QUEUE_CAPACITY`], the oldest records make room and a replica that had not taken
/// them reads them from the master's WAL.
pub const DEFAULT_QUEUE_BYTES: usize = 64 << 20;
/// Default number of records a worker keeps in flight before waiting for acks.
pub const DEFAULT_WINDOW_RECORDS: usize = 1024;
/// Default consecutive failures after which a replica is unhealthy.
pub const DEFAULT_FAILURE_THRESHOLD: u32 = 3;
/// Default interval between probes of an unhealthy replica, and the idle heartbeat.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_millis(500);
/// Default target size of a snapshot chunk (values larger than this are split).
pub const DEFAULT_SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;
/// Most entries one snapshot chunk carries, whatever their size. Bytes alone let a chunk of
/// tiny entries (a few bytes of key, empty values) hold 350,000 of them, four arguments each
/// over TCP: past a replica's 1,048,576-argument limit, so that chunk was refused on every
/// retry and the resync never finished. 65,536 entries keep a chunk within every limit.
pub const MAX_SNAPSHOT_CHUNK_ENTRIES: usize = 1 << 16;
/// Default time an async worker lets a short window of live records fill before sending it.
/// Sending each record as it is committed would cost the replica one commit group (a write
/// call) per record and the master a wake-up of the worker per record; waiting this long adds
/// at most this much to an async replica's lag. Sync modes never wait.
pub const DEFAULT_ASYNC_BATCH_DELAY: Duration = Duration::from_millis(1);
/// Default time `Drop` lets workers deliver what is committed before stopping them.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Tunables shared by every worker (the validated part of the builder).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub master_id: String,
    pub mode: ReplicationMode,
    pub min_replicas_to_write: usize,
    pub queue_capacity: usize,
    pub queue_bytes: usize,
    pub window_records: usize,
    pub async_batch_delay: Duration,
    pub ack_timeout: Duration,
    pub backoff: Backoff,
    pub failure_threshold: u32,
    pub probe_interval: Duration,
    pub snapshot_chunk_bytes: usize,
    pub shutdown_timeout: Duration,
    pub epoch: Option<u64>,
}

/// Builds a [`crate::Replicator`]: `Replicator::builder().replica(t).mode(m).attach(&store)`.
pub struct ReplicatorBuilder {
    pub(crate) settings: Settings,
    pub(crate) transports: Vec<BoxedTransport>,
}

impl std::fmt::Debug for ReplicatorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.transports.iter().map(|t| t.describe()).collect();
        f.debug_struct("ReplicatorBuilder")
            .field("settings", &self.settings)
            .field("replicas", &names)
            .finish()
    }
}

impl Default for ReplicatorBuilder {
    fn default() -> Self {
        ReplicatorBuilder {
            settings: Settings {
                master_id: "master".into(),
                mode: ReplicationMode::Async,
                min_replicas_to_write: 0,
                queue_capacity: DEFAULT_QUEUE_CAPACITY,
                queue_bytes: DEFAULT_QUEUE_BYTES,
                window_records: DEFAULT_WINDOW_RECORDS,
                async_batch_delay: DEFAULT_ASYNC_BATCH_DELAY,
                ack_timeout: DEFAULT_ACK_TIMEOUT,
                backoff: Backoff {
                    base: Duration::from_millis(10),
                    cap: Duration::from_secs(1),
                },
                failure_threshold: DEFAULT_FAILURE_THRESHOLD,
                probe_interval: DEFAULT_PROBE_INTERVAL,
                snapshot_chunk_bytes: DEFAULT_SNAPSHOT_CHUNK_BYTES,
                shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
                epoch: None,
            },
            transports: Vec::new(),
        }
    }
}

impl ReplicatorBuilder {
    /// Adds a replica reached through `transport`; its [`Transport::describe`] names it and
    /// must be unique.
    pub fn replica(mut self, transport: impl Transport + 'static) -> Self {
        self.transports.push(Box::new(transport));
        self
    }

    /// Adds an already boxed transport.
    pub fn boxed_replica(mut self, transport: BoxedTransport) -> Self {
        self.transports.push(transport);
        self
    }

    /// Names this master in HELLO (default `"master"`).
    pub fn master_id(mut self, id: impl Into<String>) -> Self {
        self.settings.master_id = id.into();
        self
    }

    /// Async or sync with a quorum (default [`ReplicationMode::Async`]).
    pub fn mode(mut self, mode: ReplicationMode) -> Self {
        self.settings.mode = mode;
        self
    }

    /// Refuse writes up front while fewer replicas are healthy (default 0: never refuse).
    pub fn min_replicas_to_write(mut self, replicas: usize) -> Self {
        self.settings.min_replicas_to_write = replicas;
        self
    }

    /// Records the replicas' shared live queue holds (default [`DEFAULT_QUEUE_CAPACITY`]);
    /// each worker holds up to two windows more.
    pub fn queue_capacity(mut self, records: usize) -> Self {
        self.settings.queue_capacity = records;
        self
    }

    /// Bytes of records the replicas' shared live queue holds (default
    /// [`DEFAULT_QUEUE_BYTES`]; a record larger than this is still queued, alone).
    pub fn queue_bytes(mut self, bytes: usize) -> Self {
        self.settings.queue_bytes = bytes;
        self
    }

    /// Records in flight per replica before waiting for acks (default [`DEFAULT_WINDOW_RECORDS`]).
    pub fn window_records(mut self, records: usize) -> Self {
        self.settings.window_records = records;
        self
    }

    /// In [`ReplicationMode::Async`], how long a worker lets a window of live records fill
    /// before sending it, so a replica applies them as one commit group (default
    /// [`DEFAULT_ASYNC_BATCH_DELAY`]; zero sends each record as soon as it is queued). A full
    /// window is sent at once. Ignored in sync modes, where writers wait for the acks.
    pub fn async_batch_delay(mut self, delay: Duration) -> Self {
        self.settings.async_batch_delay = delay;
        self
    }

    /// Longest wait for one ack before the session is deemed broken (default 5 s).
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.settings.ack_timeout = timeout;
        self
    }

    /// Retry delays: `base` doubling up to `cap` (default 10 ms up to 1 s).
    pub fn backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.settings.backoff = Backoff { base, cap };
        self
    }

    /// Consecutive failures that make a replica unhealthy (default [`DEFAULT_FAILURE_THRESHOLD`]).
    pub fn failure_threshold(mut self, failures: u32) -> Self {
        self.settings.failure_threshold = failures;
        self
    }

    /// Interval between probes of an unhealthy replica, also the idle heartbeat (default
    /// [`DEFAULT_PROBE_INTERVAL`]).
    pub fn probe_interval(mut self, interval: Duration) -> Self {
        self.settings.probe_interval = interval;
        self
    }

    /// Target bytes per snapshot chunk (default [`DEFAULT_SNAPSHOT_CHUNK_BYTES`]).
    pub fn snapshot_chunk_bytes(mut self, bytes: usize) -> Self {
        self.settings.snapshot_chunk_bytes = bytes;
        self
    }

    /// How long `Drop` lets workers deliver committed records (default 5 s). Records not
    /// delivered by then stay in the master's WAL and are sent by the next replicator.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.settings.shutdown_timeout = timeout;
        self
    }

    /// Runs with this epoch (stored durably; must not be lower than the stored one). Default:
    /// the stored epoch, or [`crate::epoch::INITIAL_EPOCH`].
    pub fn epoch(mut self, epoch: u64) -> Self {
        self.settings.epoch = Some(epoch);
        self
    }

    /// Checks the configuration; nothing has started when this fails.
    pub(crate) fn validate(&self) -> Result<()> {
        let s = &self.settings;
        let n = self.transports.len();
        let bad = |msg: String| Err(Error::InvalidConfig(msg));
        if n == 0 {
            return bad("at least one replica is required".into());
        }
        let mut names: Vec<String> = self.transports.iter().map(|t| t.describe()).collect();
        names.sort();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return bad(format!("two replicas are named {:?}", w[0]));
        }
        if let ReplicationMode::Sync { quorum, timeout } = s.mode {
            if quorum == 0 || quorum > n {
                return bad(format!(
                    "quorum {quorum} must be between 1 and {n} replicas"
                ));
            }
            if timeout.is_zero() {
                return bad("sync timeout must be positive".into());
            }
        }
        if s.min_replicas_to_write > n {
            return bad(format!(
                "min_replicas_to_write {} exceeds the {n} replicas",
                s.min_replicas_to_write
            ));
        }
        if s.queue_capacity == 0
            || s.queue_bytes == 0
            || s.window_records == 0
            || s.snapshot_chunk_bytes == 0
        {
            return bad("queue_capacity, queue_bytes, window_records and snapshot_chunk_bytes must be positive".into());
        }
        if s.failure_threshold == 0 {
            return bad("failure_threshold must be at least 1".into());
        }
        if s.ack_timeout.is_zero() || s.probe_interval.is_zero() || s.backoff.base.is_zero() {
            return bad("ack_timeout, probe_interval and backoff base must be positive".into());
        }
        if s.backoff.cap < s.backoff.base {
            return bad("backoff cap must not be below its base".into());
        }
        if s.master_id.is_empty() {
            return bad("master_id must not be empty".into());
        }
        Ok(())
    }
}
