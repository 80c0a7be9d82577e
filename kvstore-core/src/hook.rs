//! The commit hook: how a replication layer learns of committed writes without the engine
//! knowing anything about threads, sockets or replicas.

use std::sync::Arc;

use bytes::Bytes;

use crate::error::Result;
use crate::wal::record::{EncodedWalRecord, WalRecord};
use crate::Lsn;

/// Observes every locally committed write. Installed with [`crate::KvStore::set_commit_hook`].
///
/// The engine calls, for each client write (not for `apply_replicated`):
/// 1. [`admit`](CommitHook::admit) before anything is logged; an error refuses the write and
///    nothing is changed;
/// 2. [`committed_bytes`](CommitHook::committed_bytes) once the record is durable per the
///    sync policy and visible to readers, strictly in LSN order, from the thread that led the
///    commit group (by default it makes an [`EncodedWalRecord`] of them for
///    [`committed_encoded`](CommitHook::committed_encoded), which by default decodes it for
///    [`committed`](CommitHook::committed));
/// 3. [`wait_replicated`](CommitHook::wait_replicated) on the writer's own thread before the
///    write returns; an error there is returned to the writer, but the write stays committed.
pub trait CommitHook: Send + Sync + 'static {
    /// Decides whether a write may proceed at all (e.g. too few healthy replicas).
    fn admit(&self) -> Result<()> {
        Ok(())
    }

    /// A record was committed, as owned operations. Must not block: it runs inside the commit
    /// path. Called by the default [`committed_encoded`](CommitHook::committed_encoded).
    fn committed(&self, record: Arc<WalRecord>);

    /// A record was committed: its LSN and its log encoding, borrowed for the call (what the
    /// engine calls). Must not block.
    ///
    /// The default copies the bytes into an [`EncodedWalRecord`] and calls
    /// [`committed_encoded`](CommitHook::committed_encoded). A hook that keeps records
    /// (replication) overrides this and copies them where it keeps them: the commit path then
    /// pays that one copy, and no allocation or shared reference count per record.
    fn committed_bytes(&self, lsn: Lsn, bytes: &[u8]) {
        self.committed_encoded(&EncodedWalRecord::stamped(
            lsn,
            Bytes::copy_from_slice(bytes),
        ));
    }

    /// A record was committed, in its log encoding. Must not block. Called by the default
    /// [`committed_bytes`](CommitHook::committed_bytes).
    ///
    /// The default decodes the record and calls [`committed`](CommitHook::committed). A hook
    /// that ships records elsewhere overrides this (or `committed_bytes`): the bytes travel as
    /// they are, with their checksums, instead of a decode and an allocation per key and value.
    fn committed_encoded(&self, record: &EncodedWalRecord) {
        match record.to_wal_record() {
            Ok(decoded) => self.committed(Arc::new(decoded)),
            // The engine hands over only records it encoded itself, so this cannot fail short
            // of a memory fault; say so rather than pass the hook something else.
            Err(e) => {
                tracing::error!(lsn = record.lsn(), error = %e, "a committed record did not decode for the commit hook")
            }
        }
    }

    /// Blocks until the write at `lsn` is replicated as the hook's policy requires.
    fn wait_replicated(&self, lsn: Lsn) -> Result<()> {
        let _ = lsn;
        Ok(())
    }
}
