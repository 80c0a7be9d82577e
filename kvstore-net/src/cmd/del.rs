//! `DEL key [key …]` (aliases `DELETE`, and `UNLINK`, which Redis frees in the background
//! and here is the same delete): the number of keys that existed and were removed.
//! Several keys are removed atomically, in one batch.
//!
//! [`plan`] decides, from the keys that exist now, both the batch and the reply; the event
//! loop commits that batch in its round's group (see `event_loop::group`), a thread commits
//! it at once ([`run`]).

use std::collections::HashSet;

use kvstore_core::{KvStore, WriteBatch, MAX_KEY_BYTES};

use super::{store_error, Args, Ctx};
use crate::frame::Frame;

/// Reads one or more keys.
pub(crate) fn parse_keys<'a>(args: &mut Args<'a>) -> Result<Vec<&'a [u8]>, Frame> {
    let keys = args.take_rest();
    if keys.is_empty() {
        return Err(args.wrong_arity());
    }
    Ok(keys)
}

/// The deletes of `keys` (each existing key once) and the reply once they commit: the
/// number of keys removed. Exact as long as no other writer changes these keys before the
/// batch commits (the caller sees to that for its own pending writes). A single key over
/// the engine's key limit is refused ([`check_lone_key`]).
pub(crate) fn plan(keys: &[&[u8]], store: &KvStore) -> Result<(WriteBatch, Frame), Frame> {
    check_lone_key(keys)?;
    let mut batch = WriteBatch::new();
    let mut seen = HashSet::new();
    for key in keys {
        if seen.insert(*key) && store.contains_key(key).map_err(store_error)? {
            batch.delete(key);
        }
    }
    let removed = Frame::Integer(batch.len() as i64);
    Ok((batch, removed))
}

/// A `DEL` of a single key over the engine's key limit is refused, as `KvStore::delete`
/// refuses it (among several keys, such a key is simply not there).
pub(crate) fn check_lone_key(keys: &[&[u8]]) -> Result<(), Frame> {
    match keys {
        [key] if key.len() > MAX_KEY_BYTES => Err(store_error(kvstore_core::Error::KeyTooLarge {
            len: key.len(),
            max: MAX_KEY_BYTES,
        })),
        _ => Ok(()),
    }
}

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let keys = parse_keys(args)?;
    // Held exclusively from the count to the commit: a write in between (an EXEC, another
    // DEL of these keys) would make the count stale. Not while replicas are waited for.
    let (replicating, removed) = {
        let _counted_alone = ctx.node.write_gate.write();
        let (batch, removed) = plan(&keys, &ctx.node.store)?;
        let replicating = ctx
            .node
            .store
            .write_batch_then_wait(batch)
            .map_err(store_error)?;
        (replicating, removed)
    };
    replicating.wait().map_err(store_error)?;
    Ok(removed)
}
