//! Shows where the bytes of a store go after loading, overwriting every key and compacting:
//! `cargo run --release -p kvstore-core --example space -- DIR`

use kvstore_core::{Options, SyncPolicy, WriteBatch};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: space DIR")?;
    let store = Options::new().sync_policy(SyncPolicy::Never).open(&dir)?;
    let key = |i: u64| format!("{:016x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    for round in 0..2u8 {
        for chunk in 0..200u64 {
            let mut batch = WriteBatch::new();
            for i in chunk * 1000..(chunk + 1) * 1000 {
                batch.put(key(i), [b'a' + round; 100]);
            }
            store.write_batch(batch)?;
        }
    }
    println!("before: {:?}", store.stats());
    println!("{:?}", store.compact()?);
    println!("after: {:?}", store.stats());
    let mut total = 0;
    for entry in std::fs::read_dir(&dir)? {
        let entry = entry?;
        let len = entry.metadata()?.len();
        total += len;
        println!("{:>12} {}", len, entry.file_name().to_string_lossy());
    }
    println!(
        "total {total} = {:.2}x of {} live bytes",
        total as f64 / (200_000.0 * 116.0),
        200_000 * 116
    );
    Ok(())
}
