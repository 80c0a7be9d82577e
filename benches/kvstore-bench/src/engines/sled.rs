//! sled: a lock-free B-tree over a log-structured page store.

use std::fs::File;
use std::hint::black_box;
use std::path::Path;

use crate::engine::{BenchResult, Engine, EngineKind};

/// The engine entry for sled.
pub const KIND: EngineKind = EngineKind {
    name: "sled",
    durable_commit: "`Db::flush()` after each put or `apply_batch`, then `fdatasync` of sled's \
                     `db` file: on Linux sled's flush is only `sync_file_range`, which neither \
                     flushes the drive's cache nor makes the write durable (non-durable rows: no \
                     flush; sled's default background flush every 500 ms)",
    open,
};

struct Sled {
    db: sled::Db,
    /// sled's one data file, opened again only to `fdatasync` it after `flush()`.
    data_file: File,
}

fn open(dir: &Path) -> BenchResult<Box<dyn Engine>> {
    let db = sled::open(dir)?;
    let data_file = File::open(dir.join("db"))?;
    Ok(Box::new(Sled { db, data_file }))
}

impl Sled {
    /// sled's `flush()` writes its buffers and waits for `sync_file_range`; the `fdatasync`
    /// that follows is what makes them survive a power loss, as every other engine's commit does.
    fn commit(&self) -> BenchResult<()> {
        self.db.flush()?;
        self.data_file.sync_data()?;
        Ok(())
    }
}

impl Engine for Sled {
    fn write_batch(&self, pairs: &[(Vec<u8>, Vec<u8>)], durable: bool) -> BenchResult<()> {
        let mut batch = sled::Batch::default();
        for (k, v) in pairs {
            batch.insert(k.as_slice(), v.as_slice());
        }
        self.db.apply_batch(batch)?;
        if durable {
            self.commit()?;
        }
        Ok(())
    }

    fn put(&self, key: &[u8], value: &[u8], durable: bool) -> BenchResult<()> {
        self.db.insert(key, value)?;
        if durable {
            self.commit()?;
        }
        Ok(())
    }

    fn get(&self, key: &[u8]) -> BenchResult<Option<Vec<u8>>> {
        Ok(self.db.get(key)?.map(|v| v.to_vec()))
    }

    fn scan_all(&self) -> BenchResult<u64> {
        let mut n = 0;
        for entry in self.db.iter() {
            let (k, v) = entry?;
            black_box((&*k, &*v));
            n += 1;
        }
        Ok(n)
    }

    /// sled 0.34 has no compaction call: its page store reclaims segments in the background.
    fn compact(&self) -> BenchResult<bool> {
        Ok(false)
    }
}
