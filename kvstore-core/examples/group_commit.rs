//! Measures group commit: N threads each doing durable puts; prints puts/s and writes per fsync.
//! `cargo run --release -p kvstore-core --example group_commit -- DIR [THREADS] [PUTS_PER_THREAD]`

use std::time::Instant;

use kvstore_core::KvStore;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or("usage: group_commit DIR [THREADS] [PUTS]")?;
    let threads: u64 = args.next().map_or(Ok(4), |a| a.parse())?;
    let puts: u64 = args.next().map_or(Ok(1000), |a| a.parse())?;
    let store = KvStore::open(&dir)?;
    for round in 0..2 {
        for n in [1, threads] {
            let fsyncs = store.stats().fsyncs;
            let start = Instant::now();
            std::thread::scope(|s| {
                for t in 0..n {
                    let store = store.clone();
                    s.spawn(move || {
                        for i in 0..puts {
                            store
                                .put(format!("r{round}-t{t}-{i}"), [7u8; 100])
                                .map(drop)
                                .unwrap_or_else(|e| eprintln!("put failed: {e}"));
                        }
                    });
                }
            });
            let took = start.elapsed().as_secs_f64();
            let syncs = store.stats().fsyncs - fsyncs;
            println!(
                "{n} thread(s): {:.0} puts/s, {:.2} writes per fsync",
                (n * puts) as f64 / took,
                (n * puts) as f64 / syncs.max(1) as f64
            );
        }
    }
    Ok(())
}
