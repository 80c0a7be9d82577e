//! fjall: an LSM-tree with a shared journal.

use std::hint::black_box;
use std::path::Path;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use crate::engine::{BenchResult, Engine, EngineKind};

/// The engine entry for fjall.
pub const KIND: EngineKind = EngineKind {
    name: "fjall",
    durable_commit: "`Database::persist(PersistMode::SyncAll)` after each put; batches commit \
                     with `durability(Some(PersistMode::SyncAll))` (non-durable rows: fjall's \
                     default, journal written to the OS, no sync)",
    open,
};

struct Fjall {
    db: Database,
    keyspace: Keyspace,
}

fn open(dir: &Path) -> BenchResult<Box<dyn Engine>> {
    let db = Database::builder(dir).open()?;
    let keyspace = db.keyspace("bench", KeyspaceCreateOptions::default)?;
    Ok(Box::new(Fjall { db, keyspace }))
}

impl Engine for Fjall {
    fn write_batch(&self, pairs: &[(Vec<u8>, Vec<u8>)], durable: bool) -> BenchResult<()> {
        let mut batch = self.db.batch();
        if durable {
            // Persisted inside the commit, under the journal lock: the batch and its fsync are
            // one step, as `batch.commit()` followed by `db.persist(SyncAll)` would be.
            batch = batch.durability(Some(PersistMode::SyncAll));
        }
        for (k, v) in pairs {
            batch.insert(&self.keyspace, k.as_slice(), v.as_slice());
        }
        batch.commit()?;
        Ok(())
    }

    fn put(&self, key: &[u8], value: &[u8], durable: bool) -> BenchResult<()> {
        self.keyspace.insert(key, value)?;
        if durable {
            self.db.persist(PersistMode::SyncAll)?;
        }
        Ok(())
    }

    fn get(&self, key: &[u8]) -> BenchResult<Option<Vec<u8>>> {
        Ok(self.keyspace.get(key)?.map(|v| v.to_vec()))
    }

    fn scan_all(&self) -> BenchResult<u64> {
        let mut n = 0;
        for guard in self.keyspace.iter() {
            let (k, v) = guard.into_inner()?;
            black_box((&*k, &*v));
            n += 1;
        }
        Ok(n)
    }

    /// Flushes the memtable to a table (so the journal can be dropped), then runs a major
    /// compaction. Both calls are public but `#[doc(hidden)]` in fjall 3: fjall otherwise
    /// compacts only in the background, on its own schedule.
    fn compact(&self) -> BenchResult<bool> {
        self.keyspace.rotate_memtable_and_wait()?;
        self.keyspace.major_compact()?;
        Ok(true)
    }
}
