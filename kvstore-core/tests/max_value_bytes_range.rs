//! `Options::max_value_bytes` takes what its documentation says: up to 512 MiB (half the
//! largest record), and a larger limit is refused at open with `InvalidOptions`. (The
//! documentation used to say 1 GiB, which open refused.)

mod common;

use common::TestResult;
use kvstore_core::{Error, Options, SyncPolicy, MAX_RECORD_BYTES};

#[test]
fn the_documented_limit_is_the_one_open_takes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let open = |limit: usize| {
        Options::new()
            .sync_policy(SyncPolicy::Never)
            .max_value_bytes(limit)
            .open(dir.path().join(limit.to_string()))
    };
    let most = MAX_RECORD_BYTES / 2;
    assert_eq!(most, 512 << 20);
    assert_eq!(open(most)?.max_value_bytes(), most);
    assert!(matches!(open(most + 1), Err(Error::InvalidOptions(_))));
    Ok(())
}
