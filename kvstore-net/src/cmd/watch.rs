//! `WATCH key [key …]` and `UNWATCH`: optimistic locking for transactions, as Redis clients
//! use it for check-and-set (redis-py's `Redis.transaction`, `pipeline.watch`).
//!
//! `WATCH` notes each key's [`KeyVersion`], and the next `EXEC` compares them again while it
//! holds the write gate exclusively: it runs its queue only if every watched key is as it
//! was, else it answers a null array and writes nothing. Any write of a watched key counts,
//! by anyone, this connection included, even of the same bytes; so does a replica's full
//! resync (a snapshot install replaces every value, as Redis's full sync touches every
//! watched key). Spurious aborts are possible, never missed changes: a compaction that moved
//! a watched value, or, while a watched key has no value, a delete of any key (which is how a
//! key created and deleted again in between is told from one left alone). The client
//! retries, as after any abort. `EXEC`, `DISCARD` and `UNWATCH` forget the watched keys.

use std::collections::{BTreeMap, BTreeSet};

use kvstore_core::{KeyVersion, KvStore};

use super::{del, Args, Ctx};
use crate::frame::Frame;

/// The keys a connection watches and the state each had when it was first watched.
#[derive(Debug, Default)]
pub(crate) struct Watched {
    keys: BTreeMap<Vec<u8>, KeyVersion>,
    /// Bytes held (keys and their per-key cost), bounded by the server's request limit.
    bytes: usize,
}

/// What a watched key costs against the limit besides its bytes.
const PER_KEY_BYTES: usize = 64;

impl Watched {
    /// Whether any watched key has been written (or appeared, or disappeared) since.
    pub(crate) fn changed(&self, store: &KvStore) -> bool {
        self.keys
            .iter()
            .any(|(key, version)| store.key_version(key) != *version)
    }
}

/// `WATCH key [key …]`.
pub(super) fn run_watch(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let keys = del::parse_keys(args)?;
    if ctx.session.transaction.is_some() {
        // Refused without aborting the transaction, as Redis does.
        return Err(Frame::error("ERR WATCH inside MULTI is not allowed"));
    }
    let limit = ctx.node.config.limits.max_request_bytes;
    let watched = &mut ctx.session.watched;
    // A key watched again keeps the state it was first watched in.
    let new: BTreeSet<&[u8]> = keys
        .into_iter()
        .filter(|key| !watched.keys.contains_key(*key))
        .collect();
    let added: usize = new.iter().map(|key| key.len() + PER_KEY_BYTES).sum();
    if watched.bytes + added > limit {
        return Err(Frame::error(format!(
            "ERR a connection watches at most {limit} bytes of keys; UNWATCH first"
        )));
    }
    for key in new {
        watched
            .keys
            .insert(key.to_vec(), ctx.node.store.key_version(key));
    }
    watched.bytes += added;
    Ok(Frame::ok())
}

/// `UNWATCH`.
pub(super) fn run_unwatch(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    args.finish()?;
    ctx.session.watched = Watched::default();
    Ok(Frame::ok())
}
