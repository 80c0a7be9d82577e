//! kvstore itself.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use kvstore_core::{KvStore, Options, SyncPolicy, WriteBatch};

use crate::engine::{BenchResult, Engine, EngineKind};

/// The engine entry for kvstore.
pub const KIND: EngineKind = EngineKind {
    name: "kvstore",
    durable_commit: "SyncPolicy::Always (group commit, fdatasync)",
    open,
};

/// kvstore chooses durability per store (`SyncPolicy`), so `prepare` reopens the store with
/// `Always` for durable phases and `Never` for the others.
struct Kv {
    dir: PathBuf,
    store: RwLock<Option<KvStore>>,
}

fn open(dir: &Path) -> BenchResult<Box<dyn Engine>> {
    let store = Options::new().sync_policy(SyncPolicy::Always).open(dir)?;
    Ok(Box::new(Kv {
        dir: dir.to_path_buf(),
        store: RwLock::new(Some(store)),
    }))
}

impl Kv {
    fn with<T>(&self, f: impl FnOnce(&KvStore) -> BenchResult<T>) -> BenchResult<T> {
        let guard = self.store.read().map_err(|_| "lock poisoned")?;
        let store = guard.as_ref().ok_or("store closed")?;
        f(store)
    }
}

impl Engine for Kv {
    fn prepare(&self, durable: bool) -> BenchResult<()> {
        let want = if durable {
            SyncPolicy::Always
        } else {
            SyncPolicy::Never
        };
        let mut guard = self.store.write().map_err(|_| "lock poisoned")?;
        if guard.as_ref().map(|s| s.stats().sync_policy) == Some(want) {
            return Ok(());
        }
        guard.take();
        *guard = Some(Options::new().sync_policy(want).open(&self.dir)?);
        Ok(())
    }

    fn write_batch(&self, pairs: &[(Vec<u8>, Vec<u8>)], _durable: bool) -> BenchResult<()> {
        let mut batch = WriteBatch::new();
        for (k, v) in pairs {
            batch.put(k, v);
        }
        self.with(|s| Ok(s.write_batch(batch).map(drop)?))
    }

    fn put(&self, key: &[u8], value: &[u8], _durable: bool) -> BenchResult<()> {
        self.with(|s| Ok(s.put(key, value).map(drop)?))
    }

    fn get(&self, key: &[u8]) -> BenchResult<Option<Vec<u8>>> {
        self.with(|s| Ok(s.get(key)?))
    }

    fn scan_all(&self) -> BenchResult<u64> {
        // Zero-copy visiting, as the peers' scans borrow their values too.
        self.with(|s| {
            let mut n = 0u64;
            s.for_each::<&[u8], _>(.., |_key, value| {
                n += u64::from(!value.is_empty());
                true
            })?;
            Ok(n)
        })
    }

    fn compact(&self) -> BenchResult<bool> {
        self.with(|s| {
            s.flush()?;
            s.compact()?;
            Ok(true)
        })
    }
}
