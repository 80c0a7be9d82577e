//! `DEL key [key …]` (alias `DELETE`): the number of keys that existed and were removed.
//! Several keys are removed atomically, in one batch.

use kvstore_core::WriteBatch;

use super::{store_error, Args, Ctx};
use crate::frame::Frame;

/// Reads one or more keys.
pub(crate) fn parse_keys(args: &mut Args) -> Result<Vec<Vec<u8>>, Frame> {
    let keys = args.take_rest();
    if keys.is_empty() {
        return Err(args.wrong_arity());
    }
    Ok(keys)
}

pub(super) fn run(args: &mut Args, ctx: &mut Ctx<'_>) -> Result<Frame, Frame> {
    let keys = parse_keys(args)?;
    let store = &ctx.node.store;
    if let [key] = keys.as_slice() {
        let removed = store.delete(key).map_err(store_error)?;
        return Ok(Frame::Integer(i64::from(removed)));
    }
    let mut batch = WriteBatch::new();
    let mut seen = std::collections::HashSet::new();
    for key in &keys {
        if seen.insert(key.as_slice()) && store.contains_key(key).map_err(store_error)? {
            batch.delete(key);
        }
    }
    let removed = batch.len() as i64;
    store.write_batch(batch).map_err(store_error)?;
    Ok(Frame::Integer(removed))
}
