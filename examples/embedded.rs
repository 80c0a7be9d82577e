//! Embedding kvstore: open a store, write, read, scan, batch, compact, reopen.
//!
//! Run with `cargo run --release --example embedded [DATA_DIR]` (default: `./kvstore-data`).

use std::error::Error;

use kvstore::{KvStore, Options, SyncPolicy, WriteBatch};

fn main() -> Result<(), Box<dyn Error>> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "kvstore-data".to_string());
    println!("opening {dir}");
    {
        let store = Options::new().sync_policy(SyncPolicy::Always).open(&dir)?;
        println!(
            "recovered {} keys, last LSN {}",
            store.len(),
            store.last_lsn()
        );

        let lsn = store.put(b"greeting", b"hello, world")?;
        println!("put greeting at LSN {lsn}");
        println!(
            "get greeting -> {:?}",
            store.get(b"greeting")?.map(String::from_utf8)
        );

        let mut batch = WriteBatch::new();
        for i in 0..10 {
            batch.put(format!("user:{i:03}"), format!("name-{i}"));
        }
        batch.delete(b"user:000");
        println!(
            "batch of {} ops at LSN {}",
            batch.len(),
            store.write_batch(batch)?
        );

        println!("scan_prefix(\"user:\"), newest three first:");
        for entry in store.scan_prefix(b"user:").rev().take(3) {
            let (key, value) = entry?;
            println!(
                "  {} = {}",
                String::from_utf8_lossy(&key),
                String::from_utf8_lossy(&value)
            );
        }
        let report = store.compact()?;
        println!("compaction: {report:?}");
        println!("stats: {:?}", store.stats());
    }
    // Everything acknowledged survives a reopen (and a crash: see the crash tests).
    let store = KvStore::open(&dir)?;
    println!(
        "reopened: {} keys, user:005 = {:?}",
        store.len(),
        store.get(b"user:005")?.map(String::from_utf8)
    );
    Ok(())
}
