//! The commit hook: how a replication layer learns of committed writes without the engine
//! knowing anything about threads, sockets or replicas.

use std::sync::Arc;

use crate::error::Result;
use crate::wal::record::WalRecord;
use crate::Lsn;

/// Observes every locally committed write. Installed with [`crate::KvStore::set_commit_hook`].
///
/// The engine calls, for each client write (not for `apply_replicated`):
/// 1. [`admit`](CommitHook::admit) before anything is logged; an error refuses the write and
///    nothing is changed;
/// 2. [`committed`](CommitHook::committed) once the record is durable per the sync policy and
///    visible to readers, strictly in LSN order, from the thread that led the commit group;
/// 3. [`wait_replicated`](CommitHook::wait_replicated) on the writer's own thread before the
///    write returns; an error there is returned to the writer, but the write stays committed.
pub trait CommitHook: Send + Sync + 'static {
    /// Decides whether a write may proceed at all (e.g. too few healthy replicas).
    fn admit(&self) -> Result<()> {
        Ok(())
    }

    /// A record was committed. Must not block: it runs inside the commit path.
    fn committed(&self, record: Arc<WalRecord>);

    /// Blocks until the write at `lsn` is replicated as the hook's policy requires.
    fn wait_replicated(&self, lsn: Lsn) -> Result<()> {
        let _ = lsn;
        Ok(())
    }
}
