//! RocksDB: the reference LSM-tree (C++, through the `rocksdb` crate).

use std::path::Path;

use rocksdb::{Options, WriteBatch, WriteOptions, DB};

use crate::engine::{BenchResult, Engine, EngineKind};

/// The engine entry for RocksDB.
pub const KIND: EngineKind = EngineKind {
    name: "rocksdb",
    durable_commit: "`WriteOptions::set_sync(true)` on each put or `WriteBatch` (WAL fsync; \
                     non-durable rows: `set_sync(false)`, WAL written to the OS)",
    open,
};

struct Rocks {
    db: DB,
    sync: WriteOptions,
    no_sync: WriteOptions,
}

fn open(dir: &Path) -> BenchResult<Box<dyn Engine>> {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    let mut sync = WriteOptions::default();
    sync.set_sync(true);
    let mut no_sync = WriteOptions::default();
    no_sync.set_sync(false);
    Ok(Box::new(Rocks {
        db: DB::open(&opts, dir)?,
        sync,
        no_sync,
    }))
}

impl Rocks {
    fn write_options(&self, durable: bool) -> &WriteOptions {
        if durable {
            &self.sync
        } else {
            &self.no_sync
        }
    }
}

impl Engine for Rocks {
    fn write_batch(&self, pairs: &[(Vec<u8>, Vec<u8>)], durable: bool) -> BenchResult<()> {
        let mut batch = WriteBatch::default();
        for (k, v) in pairs {
            batch.put(k, v);
        }
        self.db.write_opt(batch, self.write_options(durable))?;
        Ok(())
    }

    fn put(&self, key: &[u8], value: &[u8], durable: bool) -> BenchResult<()> {
        self.db.put_opt(key, value, self.write_options(durable))?;
        Ok(())
    }

    fn get(&self, key: &[u8]) -> BenchResult<Option<Vec<u8>>> {
        Ok(self.db.get_pinned(key)?.map(|v| v.to_vec()))
    }

    fn scan_all(&self) -> BenchResult<u64> {
        let mut iter = self.db.raw_iterator();
        iter.seek_to_first();
        let mut n = 0;
        while let (Some(k), Some(v)) = (iter.key(), iter.value()) {
            std::hint::black_box((k, v));
            n += 1;
            iter.next();
        }
        iter.status()?;
        Ok(n)
    }

    /// Flushes the memtable to an SST (so the WAL can go), then compacts the whole key range.
    fn compact(&self) -> BenchResult<bool> {
        self.db.flush()?;
        self.db.compact_range(None::<&[u8]>, None::<&[u8]>);
        Ok(true)
    }
}
