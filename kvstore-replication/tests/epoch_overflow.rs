//! The epoch a replica stores comes from the network (a master's HELLO) and from a file;
//! promoting that replica computed `stored + 1` unchecked. With the largest epoch this
//! panicked (debug) or wrapped to epoch 0 (release), the reserved epoch of folded timeline
//! entries, which every replica then refuses as stale. Now promotion is refused with an error.

mod common;

use common::{fast, hello, TestResult};
use kvstore_replication::{epoch, ReplicaEndpoint};

#[test]
fn promoting_a_replica_that_accepted_the_largest_epoch_does_not_panic_or_wrap() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let endpoint = ReplicaEndpoint::open(fast().open(dir.path())?)?;
        // A master's HELLO with the largest epoch is accepted and stored durably.
        endpoint.hello(&hello(u64::MAX, 0))?;
        assert_eq!(endpoint.epoch(), u64::MAX);
    }
    let path = dir.path().to_path_buf();
    let outcome = std::thread::spawn(move || epoch::promote(&path)).join();
    match outcome {
        Err(_) => panic!("epoch::promote panicked on an epoch read from the replica's file"),
        // No epoch above u64::MAX exists: any epoch returned here went backwards (wrapped).
        Ok(Ok(next)) => panic!("promotion after epoch u64::MAX returned epoch {next}"),
        Ok(Err(_)) => {} // refusing is fine
    }
    Ok(())
}
