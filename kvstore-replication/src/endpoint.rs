//! The replica side of a session, shared by every transport: the in-process one calls it
//! directly, `kvstore-net`'s server calls it from its `REPLICATE ...` command handlers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use kvstore_core::{KvStore, Lsn, ReplicatedRecord, SnapshotInstall, WalRecord};
use parking_lot::Mutex;

use crate::epoch;
use crate::error::{Error, Result};
use crate::protocol::{Ack, Hello, HelloReply, SnapshotAck, SnapshotChunk, SnapshotProgress};
use crate::timeline::Timeline;

/// Wraps a replica's [`KvStore`]: checks epochs, applies records in LSN order, ignores
/// duplicates, reports gaps and installs snapshots. Cheap to clone; clones share state.
///
/// Every method but [`hello`](Self::hello) takes the [`Session`] the caller's HELLO opened.
/// Only the newest session is served: a master that lost its role mid-stream is refused
/// record by record, and so is a connection of a master that has since restarted and said
/// HELLO again (its records, still on their way, may be ones the restarted master lost).
/// Connections of one master incarnation share its session.
///
/// ```
/// use kvstore_replication::{Hello, ReplicaEndpoint};
/// # let dir = tempfile::tempdir()?;
/// let replica = ReplicaEndpoint::open(kvstore_core::KvStore::open(dir.path())?)?;
/// let hello = Hello {
///     master_id: "m".into(),
///     epoch: 1,
///     master_last_lsn: 0,
///     force_resync: false,
///     timeline: Default::default(),
/// };
/// let opened = replica.hello(&hello)?;
/// assert_eq!(opened.reply.applied_lsn, 0);
/// assert_eq!(opened.session.epoch(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ReplicaEndpoint {
    store: KvStore,
    /// Drawn at open, sent in every HELLO reply (see [`HelloReply::replica_id`]).
    id: u64,
    state: Arc<Mutex<EndpointState>>,
    counters: Arc<EndpointCounters>,
}

impl std::fmt::Debug for ReplicaEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaEndpoint")
            .field("store", &self.store)
            .field("epoch", &self.epoch())
            .finish()
    }
}

struct EndpointState {
    /// Highest epoch accepted, durably stored in the data directory.
    epoch: u64,
    /// Set by a forced HELLO: the next snapshot may replace newer contents.
    rewind_allowed: bool,
    /// The timeline of the master whose records this store holds, durably stored.
    timeline: Timeline,
    /// A forced session's master timeline: adopted once its snapshot is installed, since
    /// until then the store still holds its own, diverged records.
    pending_timeline: Option<Timeline>,
    /// Refusing every call: the node is being promoted to master.
    closed: bool,
    /// The id of the current session (0: none since this endpoint opened). Only that session
    /// is served: until a HELLO, every record is refused (`NoSession`), since only a HELLO
    /// checks the master's timeline against this store's and a restarted replica may hold
    /// another master's log; after one, so is every record of an older session, even of the
    /// same epoch (a master that restarted, losing its unsynced tail, says HELLO again while
    /// its old connection may still deliver that tail).
    session: u64,
    /// The master (its id and timeline) whose HELLO opened that session. Another HELLO of the
    /// same master incarnation (a worker reconnecting, or one replica listed twice on the
    /// master) joins the session instead of ending it: its records mean what the session's
    /// do, and ending it would cut the connection the master streams on.
    session_master: Option<(String, Timeline)>,
    install: Option<InstallInProgress>,
}

struct InstallInProgress {
    snapshot_lsn: Lsn,
    next_seq: u64,
    install: SnapshotInstall,
    /// A value whose pieces are still arriving: its key and the bytes so far.
    partial: Option<(Vec<u8>, Vec<u8>)>,
}

#[derive(Default)]
struct EndpointCounters {
    applied: AtomicU64,
    duplicates: AtomicU64,
    gaps: AtomicU64,
    snapshots_installed: AtomicU64,
}

/// What a replica endpoint has done since it was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct EndpointStats {
    /// Records applied.
    pub applied: u64,
    /// Records ignored because they were already applied.
    pub duplicates: u64,
    /// Records refused because an earlier one was missing.
    pub gaps: u64,
    /// Snapshots installed (full resyncs).
    pub snapshots_installed: u64,
}

/// A replication session opened by an accepted HELLO: what every later call of its
/// connection presents to the [`ReplicaEndpoint`]. An accepted HELLO of another master or
/// master incarnation, or a forced one, ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    epoch: u64,
    id: u64,
}

impl Session {
    /// The epoch the replica follows in this session (the master's, once accepted).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
}

/// What an accepted HELLO gives: the reply for the master, and the session the connection's
/// later calls present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The answer to send the master.
    pub reply: HelloReply,
    /// The session opened.
    pub session: Session,
}

impl ReplicaEndpoint {
    /// Wraps `store`, reading the epoch it has accepted (0 if none) and the timeline of the
    /// master it follows from its data directory. Releases the WAL the store kept for replicas
    /// of its own, from an earlier life as a master ([`crate::release_replica_retention`]).
    pub fn open(store: KvStore) -> Result<Self> {
        // A replica keeps no WAL for replicas of its own (from an earlier life as a master).
        crate::replicator::release_replica_retention(&store);
        let epoch = epoch::read_epoch(store.path())?.unwrap_or(0);
        let timeline = Timeline::read(store.path())?;
        Ok(ReplicaEndpoint {
            store,
            // 63 bits: the wire carries it as a RESP integer.
            id: rand::random::<u64>() >> 1,
            state: Arc::new(Mutex::new(EndpointState {
                epoch,
                rewind_allowed: false,
                timeline,
                pending_timeline: None,
                closed: false,
                session: 0,
                session_master: None,
                install: None,
            })),
            counters: Arc::new(EndpointCounters::default()),
        })
    }

    /// The replica's store (for reads; writes should come through replication).
    pub fn store(&self) -> &KvStore {
        &self.store
    }

    /// This endpoint's id, drawn when it was opened: what its HELLO replies carry, so that a
    /// master can tell one replica reached under two addresses.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Highest epoch accepted.
    pub fn epoch(&self) -> u64 {
        self.state.lock().epoch
    }

    /// The replica's applied LSN (survives restarts).
    pub fn applied_lsn(&self) -> Lsn {
        self.store.applied_lsn()
    }

    /// Counters since open.
    pub fn stats(&self) -> EndpointStats {
        EndpointStats {
            applied: self.counters.applied.load(Ordering::Relaxed),
            duplicates: self.counters.duplicates.load(Ordering::Relaxed),
            gaps: self.counters.gaps.load(Ordering::Relaxed),
            snapshots_installed: self.counters.snapshots_installed.load(Ordering::Relaxed),
        }
    }

    /// Opens a session. Refuses a lower epoch ([`Error::StaleEpoch`]), and a master whose log
    /// does not hold what this replica applied ([`Error::Diverged`], unless `force_resync`): one
    /// whose log ends before the applied LSN, or whose timeline parts from this replica's at or
    /// before it (see [`crate::timeline`]). A higher epoch is stored durably first, even when
    /// the master is then refused as diverged (so that this node, if promoted, takes an epoch
    /// above it); a refusal changes nothing else. The master's timeline is stored durably
    /// before the reply (that of a forced session only once its snapshot is installed). An accepted HELLO of another master or master
    /// incarnation (another id or timeline), or a forced one, opens a new session and ends
    /// the previous one; one of the same incarnation joins the current session.
    pub fn hello(&self, hello: &Hello) -> Result<Opened> {
        let mut state = self.state.lock();
        Self::check_open(&state)?;
        if hello.epoch < state.epoch {
            return Err(Error::StaleEpoch {
                master_epoch: hello.epoch,
                replica_epoch: state.epoch,
            });
        }
        // Stored even if the master is then refused as diverged, as Raft keeps the highest
        // term it heard of: this node, promoted later, must take an epoch above that master's,
        // or the two would share one and neither be fenced.
        if hello.epoch > state.epoch {
            epoch::write_epoch(self.store.path(), hello.epoch)?;
            state.epoch = hello.epoch;
        }
        let applied = self.store.applied_lsn();
        if !hello.force_resync {
            let parting = state.timeline.first_difference(&hello.timeline);
            let agreed_up_to = parting.map_or(hello.master_last_lsn, |lsn| {
                hello.master_last_lsn.min(lsn.saturating_sub(1))
            });
            if applied > agreed_up_to {
                return Err(Error::Diverged {
                    replica_lsn: applied,
                    master_lsn: agreed_up_to,
                });
            }
        }
        state.pending_timeline = hello.force_resync.then(|| hello.timeline.clone());
        if !hello.force_resync && !hello.timeline.is_empty() && hello.timeline != state.timeline {
            hello.timeline.write(self.store.path())?;
            state.timeline = hello.timeline.clone();
        }
        state.rewind_allowed = hello.force_resync;
        let same_master = state
            .session_master
            .as_ref()
            .is_some_and(|(id, timeline)| *id == hello.master_id && *timeline == hello.timeline);
        if hello.force_resync || !same_master {
            state.session += 1;
            state.session_master = Some((hello.master_id.clone(), hello.timeline.clone()));
        }
        tracing::debug!(master = %hello.master_id, epoch = hello.epoch, applied, session = state.session, "replication session opened");
        Ok(Opened {
            reply: HelloReply {
                applied_lsn: applied,
                epoch: state.epoch,
                snapshot_in_progress: state.install.as_ref().map(|i| SnapshotProgress {
                    snapshot_lsn: i.snapshot_lsn,
                    next_seq: i.next_seq,
                }),
                replica_id: Some(self.id),
            },
            session: Session {
                epoch: state.epoch,
                id: state.session,
            },
        })
    }

    /// The timeline of the master whose records this store holds (empty before the first
    /// session with a master that keeps one).
    pub fn timeline(&self) -> Timeline {
        self.state.lock().timeline.clone()
    }

    /// Opens or closes the endpoint. A node being promoted closes it first: a HELLO, record or
    /// snapshot chunk of the old master still on its way then fails instead of landing (and
    /// storing the old master's timeline) after the promotion began. Reopened if the
    /// promotion fails.
    pub fn set_open(&self, open: bool) {
        self.state.lock().closed = !open;
    }

    fn check_open(state: &EndpointState) -> Result<()> {
        if state.closed {
            return Err(Error::Protocol(
                "this node is becoming a master and takes no more replication".into(),
            ));
        }
        Ok(())
    }

    fn check_session(state: &EndpointState, session: Session) -> Result<()> {
        Self::check_open(state)?;
        if session.epoch < state.epoch {
            return Err(Error::StaleEpoch {
                master_epoch: session.epoch,
                replica_epoch: state.epoch,
            });
        }
        if session.id != state.session || session.epoch != state.epoch {
            return Err(Error::NoSession);
        }
        Ok(())
    }

    /// Applies one record of `session`. A duplicate (at or below the applied
    /// LSN) is ignored; a record after a gap changes nothing and is answered with an
    /// [`Ack`] whose `applied_lsn` is below its `lsn`, so the master resends from there.
    /// A record abandons any unfinished snapshot install (which leaves the store untouched).
    pub fn apply(&self, session: Session, record: &WalRecord) -> Result<Ack> {
        let mut state = self.state.lock();
        Self::check_session(&state, session)?;
        state.install = None;
        match self.store.apply_replicated(record) {
            Ok(true) => {
                self.counters.applied.fetch_add(1, Ordering::Relaxed);
            }
            Ok(false) => {
                self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
            }
            Err(kvstore_core::Error::LsnGap { expected, got }) => {
                self.counters.gaps.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    expected,
                    got,
                    "replication gap: asking the master to resend"
                );
            }
            Err(e) => return Err(e.into()),
        }
        Ok(Ack {
            lsn: record.lsn,
            applied_lsn: self.store.applied_lsn(),
        })
    }

    /// Applies a window of records of `session` in one commit group (one write
    /// and at most one sync on the replica, instead of one per record), with the rules of
    /// [`apply`](Self::apply) for each record: duplicates are ignored; a record after a gap
    /// changes nothing. Returns one [`Ack`] per record, in order, each carrying the applied LSN
    /// after the whole window: a record the window applied or already held is acknowledged
    /// (`applied_lsn >= lsn`), one refused after a gap is answered with `applied_lsn < lsn`, so
    /// the master resends from there. Any other error (an epoch refusal, an I/O failure) is
    /// returned instead of acks; records before the failure may be applied, as with a sequence
    /// of `apply` calls that stops at the failing one.
    ///
    /// Records may be [`WalRecord`]s (parsed off the wire) or the master's encoded bytes
    /// ([`crate::SharedRecord`]), written as they are once their checksums are verified: a
    /// window holding a damaged record is refused whole and changes nothing.
    pub fn apply_many<R: ReplicatedRecord>(
        &self,
        session: Session,
        records: &[R],
    ) -> Result<Vec<Ack>> {
        let mut state = self.state.lock();
        Self::check_session(&state, session)?;
        if records.is_empty() {
            return Ok(Vec::new());
        }
        state.install = None;
        let before = self.store.applied_lsn();
        match self.store.apply_replicated_batch(records) {
            Ok(_) => {}
            Err(kvstore_core::Error::LsnGap { expected, got }) => {
                tracing::debug!(
                    expected,
                    got,
                    "replication gap in a window: asking the master to resend"
                );
            }
            Err(e) => return Err(e.into()),
        }
        let applied_lsn = self.store.applied_lsn();
        // LSNs are contiguous, so the count applied is the distance moved; whatever lies beyond
        // the final applied LSN was refused; the rest were copies of applied records.
        let applied = applied_lsn.saturating_sub(before);
        let refused = records.iter().filter(|r| r.lsn() > applied_lsn).count() as u64;
        let duplicates = (records.len() as u64).saturating_sub(applied + refused);
        self.counters.applied.fetch_add(applied, Ordering::Relaxed);
        self.counters
            .duplicates
            .fetch_add(duplicates, Ordering::Relaxed);
        self.counters.gaps.fetch_add(refused, Ordering::Relaxed);
        Ok(records
            .iter()
            .map(|r| Ack {
                lsn: r.lsn(),
                applied_lsn,
            })
            .collect())
    }

    /// Takes one chunk of a full resync (see [`SnapshotChunk`] for the ordering rules). The
    /// store keeps its old contents until the last chunk, then atomically holds the snapshot.
    /// A snapshot older than the applied LSN is refused as [`Error::Diverged`] unless the
    /// session was forced.
    pub fn install_chunk(&self, session: Session, chunk: &SnapshotChunk) -> Result<SnapshotAck> {
        let mut state = self.state.lock();
        Self::check_session(&state, session)?;
        let applied = self.store.applied_lsn();
        if chunk.seq == 0 {
            state.install = None;
            if chunk.snapshot_lsn < applied && !state.rewind_allowed {
                return Err(Error::Diverged {
                    replica_lsn: applied,
                    master_lsn: chunk.snapshot_lsn,
                });
            }
            state.install = Some(InstallInProgress {
                snapshot_lsn: chunk.snapshot_lsn,
                next_seq: 0,
                install: self.store.begin_snapshot_install(chunk.snapshot_lsn)?,
                partial: None,
            });
        }
        let Some(install) = state
            .install
            .as_mut()
            .filter(|i| i.snapshot_lsn == chunk.snapshot_lsn)
        else {
            return Ok(SnapshotAck {
                next_seq: 0,
                applied_lsn: applied,
                finished: false,
            });
        };
        if chunk.seq != install.next_seq {
            // A duplicate (already taken) or an early chunk (refused): nothing changes.
            return Ok(SnapshotAck {
                next_seq: install.next_seq,
                applied_lsn: applied,
                finished: false,
            });
        }
        if let Err(e) = take_pieces(install, chunk) {
            state.install = None;
            return Err(e);
        }
        install.next_seq += 1;
        if !chunk.last {
            return Ok(SnapshotAck {
                next_seq: install.next_seq,
                applied_lsn: applied,
                finished: false,
            });
        }
        let Some(done) = state.install.take() else {
            return Err(Error::Protocol("snapshot install vanished".into()));
        };
        let next_seq = done.next_seq;
        done.install.finish()?;
        state.rewind_allowed = false;
        if let Some(timeline) = state.pending_timeline.take() {
            // The store now holds the master's records only: its timeline is the master's.
            timeline.write(self.store.path())?;
            state.timeline = timeline;
        }
        self.counters
            .snapshots_installed
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(lsn = chunk.snapshot_lsn, "snapshot installed");
        Ok(SnapshotAck {
            next_seq,
            applied_lsn: self.store.applied_lsn(),
            finished: true,
        })
    }
}

/// Reassembles value pieces and adds complete values to the install.
fn take_pieces(install: &mut InstallInProgress, chunk: &SnapshotChunk) -> Result<()> {
    for piece in &chunk.pieces {
        let (key, mut value) = match install.partial.take() {
            Some((key, value)) => {
                if key != piece.key || value.len() as u64 != piece.value_offset {
                    return Err(Error::Protocol(format!(
                        "snapshot chunk {}: value piece at offset {} does not continue the previous one",
                        chunk.seq, piece.value_offset
                    )));
                }
                (key, value)
            }
            None if piece.value_offset == 0 => (piece.key.clone(), Vec::new()),
            None => {
                return Err(Error::Protocol(format!(
                    "snapshot chunk {}: value piece starts at offset {} without its beginning",
                    chunk.seq, piece.value_offset
                )))
            }
        };
        // A value is assembled in memory before it is installed: bound it by what the store
        // accepts, before growing it (the master is trusted with data, not with our memory).
        let max = install.install.max_value_bytes() as u64;
        if piece.value_len > max {
            return Err(Error::Protocol(format!(
                "snapshot chunk {}: value of {} bytes exceeds this store's maximum of {max}",
                chunk.seq, piece.value_len
            )));
        }
        if piece.value_offset + piece.data.len() as u64 > piece.value_len {
            return Err(Error::Protocol(format!(
                "snapshot chunk {}: value piece overruns its value length {}",
                chunk.seq, piece.value_len
            )));
        }
        value.extend_from_slice(&piece.data);
        if piece.completes_value() {
            install.install.put(&key, &value)?;
        } else {
            install.partial = Some((key, value));
        }
    }
    if chunk.last && install.partial.is_some() {
        return Err(Error::Protocol(
            "last snapshot chunk ends inside a value".into(),
        ));
    }
    Ok(())
}
