//! What the benchmark needs of an engine; one implementation per engine under `engines/`.

use std::path::Path;

/// Errors of any engine, as text: the benchmark only reports them.
pub type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// An open store under test.
pub trait Engine: Send + Sync {
    /// Called (untimed) before a phase whose writes are all durable or all not, for engines
    /// whose durability is chosen at open rather than per write.
    fn prepare(&self, durable: bool) -> BenchResult<()> {
        let _ = durable;
        Ok(())
    }
    /// Writes a batch atomically; `durable` asks for the engine's durable commit.
    fn write_batch(&self, pairs: &[(Vec<u8>, Vec<u8>)], durable: bool) -> BenchResult<()>;
    /// Writes one key; `durable` asks for the engine's durable commit.
    fn put(&self, key: &[u8], value: &[u8], durable: bool) -> BenchResult<()>;
    /// Reads one key.
    fn get(&self, key: &[u8]) -> BenchResult<Option<Vec<u8>>>;
    /// Reads every key and value in key order; returns how many.
    fn scan_all(&self) -> BenchResult<u64>;
    /// Reclaims space if the engine can; returns whether it did anything.
    fn compact(&self) -> BenchResult<bool>;
    /// A reader serving many gets from one snapshot, for engines where that is a distinct,
    /// faster path than one read transaction per get (redb). Its figure is an extra row beside
    /// the fair one-transaction-per-get row; `None` for engines without such a path.
    fn snapshot_reader(&self) -> BenchResult<Option<Box<dyn SnapshotReader + '_>>> {
        Ok(None)
    }
}

/// Gets from one snapshot of the store (see [`Engine::snapshot_reader`]).
pub trait SnapshotReader {
    /// Reads one key as of the snapshot.
    fn get(&self, key: &[u8]) -> BenchResult<Option<Vec<u8>>>;
}

/// How to open an engine, and what its durable commit is.
pub struct EngineKind {
    /// Name in the table.
    pub name: &'static str,
    /// The call that makes a write durable, as printed under the table.
    pub durable_commit: &'static str,
    /// Opens (creating if needed) a store in the directory.
    pub open: fn(&Path) -> BenchResult<Box<dyn Engine>>,
}

/// Every engine compiled in.
pub fn all() -> Vec<EngineKind> {
    #[allow(unused_mut)] // peers are pushed only when their features are on
    let mut kinds = vec![crate::engines::kvstore::KIND];
    #[cfg(feature = "peers")]
    {
        kinds.push(crate::engines::sled::KIND);
        kinds.push(crate::engines::redb::KIND);
        kinds.push(crate::engines::fjall::KIND);
    }
    #[cfg(feature = "rocksdb")]
    kinds.push(crate::engines::rocksdb::KIND);
    kinds
}
