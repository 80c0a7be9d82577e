//! redb: a copy-on-write B-tree in one file.

use std::hint::black_box;
use std::path::Path;
use std::sync::RwLock;

use redb::{
    Database, Durability, ReadOnlyTable, ReadableDatabase, ReadableTable, TableDefinition,
    WriteTransaction,
};

use crate::engine::{BenchResult, Engine, EngineKind, SnapshotReader};

/// The engine entry for redb.
pub const KIND: EngineKind = EngineKind {
    name: "redb",
    durable_commit: "one write transaction per put or batch, `Durability::Immediate` \
                     (non-durable rows: `Durability::None`); one read transaction per get",
    open,
};

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bench");

/// Upper bound on `Database::compact` rounds: each round returns whether it moved anything, and
/// redb's own docs say to repeat until it reports nothing left to do.
const MAX_COMPACTION_ROUNDS: usize = 64;

/// `Database::compact` needs `&mut Database`, so the database sits behind a lock; every other
/// call takes it shared (kvstore's engine pays the same uncontended shared lock per call).
struct Redb {
    db: RwLock<Database>,
}

fn open(dir: &Path) -> BenchResult<Box<dyn Engine>> {
    let db = Database::create(dir.join("bench.redb"))?;
    // Create the table up front so that reads on an empty store do not fail.
    let txn = db.begin_write()?;
    txn.open_table(TABLE)?;
    txn.commit()?;
    Ok(Box::new(Redb {
        db: RwLock::new(db),
    }))
}

fn begin_write(db: &Database, durable: bool) -> BenchResult<WriteTransaction> {
    let mut txn = db.begin_write()?;
    txn.set_durability(if durable {
        Durability::Immediate
    } else {
        Durability::None
    })?;
    Ok(txn)
}

impl Redb {
    fn with<T>(&self, f: impl FnOnce(&Database) -> BenchResult<T>) -> BenchResult<T> {
        let db = self.db.read().map_err(|_| "lock poisoned")?;
        f(&db)
    }
}

impl Engine for Redb {
    fn write_batch(&self, pairs: &[(Vec<u8>, Vec<u8>)], durable: bool) -> BenchResult<()> {
        self.with(|db| {
            let txn = begin_write(db, durable)?;
            {
                let mut table = txn.open_table(TABLE)?;
                for (k, v) in pairs {
                    table.insert(k.as_slice(), v.as_slice())?;
                }
            }
            txn.commit()?;
            Ok(())
        })
    }

    fn put(&self, key: &[u8], value: &[u8], durable: bool) -> BenchResult<()> {
        self.with(|db| {
            let txn = begin_write(db, durable)?;
            txn.open_table(TABLE)?.insert(key, value)?;
            txn.commit()?;
            Ok(())
        })
    }

    fn get(&self, key: &[u8]) -> BenchResult<Option<Vec<u8>>> {
        self.with(|db| {
            let table = db.begin_read()?.open_table(TABLE)?;
            Ok(table.get(key)?.map(|v| v.value().to_vec()))
        })
    }

    fn snapshot_reader(&self) -> BenchResult<Option<Box<dyn SnapshotReader + '_>>> {
        self.with(|db| {
            let table = db.begin_read()?.open_table(TABLE)?;
            Ok(Some(
                Box::new(OneReadTxn { table }) as Box<dyn SnapshotReader>
            ))
        })
    }

    fn scan_all(&self) -> BenchResult<u64> {
        self.with(|db| {
            let table = db.begin_read()?.open_table(TABLE)?;
            let mut n = 0;
            for entry in table.iter()? {
                let (k, v) = entry?;
                black_box((k.value(), v.value()));
                n += 1;
            }
            Ok(n)
        })
    }

    fn compact(&self) -> BenchResult<bool> {
        let mut db = self.db.write().map_err(|_| "lock poisoned")?;
        for _ in 0..MAX_COMPACTION_ROUNDS {
            if !db.compact()? {
                break;
            }
        }
        Ok(true)
    }
}

/// redb's fast read path: many gets in one read transaction (one snapshot).
struct OneReadTxn {
    table: ReadOnlyTable<&'static [u8], &'static [u8]>,
}

impl SnapshotReader for OneReadTxn {
    fn get(&self, key: &[u8]) -> BenchResult<Option<Vec<u8>>> {
        Ok(self.table.get(key)?.map(|v| v.value().to_vec()))
    }
}
